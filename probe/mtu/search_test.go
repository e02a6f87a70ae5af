package mtu

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakePath answers probes like a path whose hop "router" has a smaller MTU.
type fakePath struct {
	local     int  // interface MTU (larger probes: LocalTooBig)
	pathMTU   int  // larger probes are refused by the router
	icmp      bool // the router sends frag-needed (else a black hole)
	advertise int  // MTU in the frag-needed (0: router does not say)
	lossEvery int  // every n-th probe vanishes (0: none)
	dead      bool // nothing answers
	n         int
}

func (f *fakePath) probe(ctx context.Context, size int, timeout time.Duration) Probe {
	f.n++
	switch {
	case size > f.local:
		return Probe{Outcome: LocalTooBig, MTU: f.local}
	case f.dead, f.lossEvery > 0 && f.n%f.lossEvery == 0:
		return Probe{Outcome: Timeout}
	case size > f.pathMTU && f.icmp:
		return Probe{Outcome: FragNeeded, From: "198.18.1.1", MTU: f.advertise}
	case size > f.pathMTU:
		return Probe{Outcome: Timeout}
	}
	return Probe{Outcome: Reply, RTT: time.Millisecond}
}

func TestSearch(t *testing.T) {
	for _, tc := range []struct {
		name                string
		path                fakePath
		max                 int
		wantMTU, wantRefuse int
		wantBy              Outcome
		blackHole           bool
		wantFrag            int // FragNeeded entries
		maxProbes           int
	}{
		{"frag-needed with MTU", fakePath{local: 1500, pathMTU: 1400, icmp: true, advertise: 1400}, 1500, 1400, 1401, FragNeeded, false, 1, 8},
		{"frag-needed without MTU", fakePath{local: 1500, pathMTU: 1400, icmp: true}, 1500, 1400, 1401, FragNeeded, false, 1, 16},
		{"black hole", fakePath{local: 1500, pathMTU: 1400}, 1500, 1400, 1401, Timeout, true, 0, 40},
		{"whole path passes", fakePath{local: 1500, pathMTU: 9000}, 1500, 1500, 0, "", false, 0, 2},
		{"loss every 3rd probe", fakePath{local: 1500, pathMTU: 1280, icmp: true, advertise: 1280, lossEvery: 3}, 1500, 1280, 1281, FragNeeded, false, 1, 20},
		{"loss every 2nd probe, black hole", fakePath{local: 1500, pathMTU: 1350, lossEvery: 2}, 1500, 1350, 1351, Timeout, true, 0, 60},
		{"local interface smaller than max", fakePath{local: 1450, pathMTU: 9000}, 1500, 1450, 1451, LocalTooBig, false, 0, 16},
		{"below the floor", fakePath{local: 1500, pathMTU: 500, icmp: true, advertise: 500}, 1500, 500, 501, FragNeeded, false, 1, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &Result{}
			cfg := Config{Target: "x", Min: DefaultMin, Max: tc.max, Retries: 3, Timeout: time.Millisecond}
			if err := search(context.Background(), cfg, &tc.path, res); err != nil {
				t.Fatal(err)
			}
			if res.PathMTU != tc.wantMTU || res.Refused != tc.wantRefuse || res.RefusedBy != tc.wantBy || res.BlackHole != tc.blackHole || len(res.FragNeeded) != tc.wantFrag {
				t.Errorf("mtu %d refused %d by %q black hole %v frag %v; want %d %d %q %v %d",
					res.PathMTU, res.Refused, res.RefusedBy, res.BlackHole, res.FragNeeded, tc.wantMTU, tc.wantRefuse, tc.wantBy, tc.blackHole, tc.wantFrag)
			}
			if len(res.Probes) > tc.maxProbes {
				t.Errorf("%d probes, want at most %d", len(res.Probes), tc.maxProbes)
			}
			if tc.wantFrag > 0 && (res.FragNeeded[0].From != "198.18.1.1" || res.FragNeeded[0].MTU != tc.path.advertise) {
				t.Errorf("frag-needed %+v", res.FragNeeded)
			}
			if tc.path.lossEvery > 0 && res.Lost == 0 {
				t.Errorf("lost probes at passing sizes not counted: %+v", res)
			}
		})
	}
}

func TestSearchUnreachable(t *testing.T) {
	res := &Result{}
	err := search(context.Background(), Config{Target: "x", Min: DefaultMin, Max: 1500, Retries: 2, Timeout: time.Millisecond}, &fakePath{local: 1500, dead: true}, res)
	if !errors.Is(err, ErrUnreachable) || res.PathMTU != 0 || len(res.Probes) != 4 || res.BlackHole {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

func TestSearchCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := &Result{}
	err := search(ctx, Config{Target: "x", Min: DefaultMin, Max: 1500, Retries: 3, Timeout: time.Millisecond}, &fakePath{local: 1500, pathMTU: 1400}, res)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{}, {Target: "x", Min: 10}, {Target: "x", Max: 50}, {Target: "x", Min: 1000, Max: 900}, {Target: "x", Retries: 50}, {Target: "x", Source: "nonsense"}} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
