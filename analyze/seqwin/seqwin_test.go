package seqwin

import "testing"

func TestWindow(t *testing.T) {
	tests := []struct {
		name                  string
		seqs                  []uint64
		lost, reord, dup, old uint64
		received              uint64
	}{
		{"in order", []uint64{5, 6, 7, 8}, 0, 0, 0, 0, 4},
		{"one gap", []uint64{1, 2, 4, 5}, 1, 0, 0, 0, 4},
		{"reordered inside window", []uint64{1, 3, 2, 4}, 0, 1, 0, 0, 4},
		{"duplicate", []uint64{1, 2, 2, 3}, 0, 0, 1, 0, 3},
		{"big jump", []uint64{1, 5000}, 4998, 0, 0, 0, 2},
		{"too old after big jump", []uint64{1, 5000, 2}, 4998, 0, 0, 1, 2},
		{"gap then late arrival inside window", []uint64{10, 20, 15}, 8, 1, 0, 0, 3},
		{"start mid stream", []uint64{1000, 1001, 1003}, 1, 0, 0, 0, 3},
		{"before first is too old", []uint64{1000, 999}, 0, 0, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			for _, s := range tt.seqs {
				w.Add(s)
			}
			if w.Lost() != tt.lost || w.Reordered != tt.reord || w.Duplicates != tt.dup || w.TooOld != tt.old || w.Received != tt.received {
				t.Errorf("lost %d reordered %d dup %d old %d received %d, want %d %d %d %d %d",
					w.Lost(), w.Reordered, w.Duplicates, w.TooOld, w.Received, tt.lost, tt.reord, tt.dup, tt.old, tt.received)
			}
		})
	}
}

func TestWindowSlides(t *testing.T) {
	// 10000 numbers, every 10th missing: the window slides many times.
	var w Window
	for s := uint64(0); s < 10000; s++ {
		if s%10 != 3 {
			w.Add(s)
		}
	}
	if w.Lost() != 1000 || w.Expected() != 10000 {
		t.Fatalf("lost %d of %d, want 1000 of 10000", w.Lost(), w.Expected())
	}
}

func TestUnwrap32(t *testing.T) {
	tests := []struct {
		top  uint64
		low  uint32
		want uint64
	}{
		{0xfffffff0, 0xfffffff1, 0xfffffff1},
		{0xfffffff0, 2, 0x100000002},          // wrap of the low half
		{0x100000002, 0xfffffffe, 0xfffffffe}, // late from before the wrap
		{0x100000002, 3, 0x100000003},
		{10, 5, 5},
	}
	for _, tt := range tests {
		if got := Unwrap32(tt.top, true, tt.low); got != tt.want {
			t.Errorf("Unwrap32(%#x, %#x) = %#x, want %#x", tt.top, tt.low, got, tt.want)
		}
	}
	// Across a wrap the window keeps counting.
	var w Window
	for s := uint64(0xfffffff0); s < 0x100000010; s++ {
		if s == 0x100000001 {
			continue
		}
		w.Add(Unwrap32(w.Top(), w.Started(), uint32(s)))
	}
	if w.Lost() != 1 || w.Expected() != 0x20 {
		t.Fatalf("across the wrap: lost %d of %d, want 1 of 32", w.Lost(), w.Expected())
	}
}

func TestAddAllocs(t *testing.T) {
	var w Window
	s := uint64(0)
	if n := testing.AllocsPerRun(1000, func() { s += 2; w.Add(s) }); n != 0 {
		t.Fatalf("Add allocates %v per call", n)
	}
}

func TestStartAt(t *testing.T) {
	for _, tc := range []struct {
		seqs        []uint64
		lost, reord uint64
	}{
		{[]uint64{0, 1, 2}, 0, 0},
		{[]uint64{1, 2}, 1, 0},
		{[]uint64{2, 0, 1}, 0, 2},
		{[]uint64{}, 1, 0},
	} {
		var w Window
		w.StartAt(0)
		for _, s := range tc.seqs {
			w.Add(s)
		}
		if w.Lost() != tc.lost || w.Reordered != tc.reord {
			t.Errorf("%v: lost %d reordered %d, want %d %d", tc.seqs, w.Lost(), w.Reordered, tc.lost, tc.reord)
		}
	}
}
