package capture

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestExpand checks that directories are listed (not recursively) by
// sniffing content, whatever the names, that files are kept as given, and
// that the result is sorted and de-duplicated; a missing path or a
// directory without captures is a *Error naming it.
func TestExpand(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pc := makePcap(t, 2, 60, false)
	ng := makePcapng(t, 2, 60)
	b := write("b.pcap", pc)
	a := write("a-really-pcapng.pcap", ng)
	c := write("c.cap.gz", gz(t, pc))
	d := write("d.noext", ng)
	write("notes.txt", []byte("not a capture"))
	write("mrt.gz", gz(t, []byte{0x3d, 0x3c, 0x89, 0x6a, 0, 0}))
	write("sub/deep.pcap", pc) // not listed: the walk is not recursive
	empty := filepath.Join(dir, "sub2")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	write("sub2/readme.txt", []byte("nothing here"))

	got, err := Expand([]string{dir, b, dir + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a, b, c, d}; !reflect.DeepEqual(got, want) {
		t.Errorf("Expand = %q\n want %q", got, want)
	}

	// A file is kept as given, even when it is not a capture: Open says why.
	txt := filepath.Join(dir, "notes.txt")
	if got, err := Expand([]string{txt}); err != nil || !reflect.DeepEqual(got, []string{txt}) {
		t.Errorf("Expand(file) = %q, %v", got, err)
	}

	for _, tc := range []struct {
		arg, msg string
	}{
		{filepath.Join(dir, "missing"), "cannot read: no such file or directory"},
		{empty, "directory holds no pcap or pcapng files"},
	} {
		_, err := Expand([]string{b, tc.arg})
		var e *Error
		if !errors.As(err, &e) || e.File != tc.arg || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Expand(%s) error = %v, want a *Error naming it with %q", tc.arg, err, tc.msg)
		}
	}
}
