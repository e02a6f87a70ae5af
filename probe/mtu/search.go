package mtu

import (
	"context"
	"fmt"
	"time"
)

// prober sends one echo of an IP packet size and reports its outcome.
type prober interface {
	probe(ctx context.Context, size int, timeout time.Duration) Probe
}

// verdict is the outcome of one size after its attempts.
type verdict struct {
	passed bool
	how    Outcome // for a size that did not pass: how the last attempt failed
	silent bool    // every attempt timed out
}

// searcher runs the binary search and records what it saw.
type searcher struct {
	cfg    Config
	p      prober
	res    *Result
	tested map[int]verdict
	hints  []int // advertised MTUs not yet tried
}

// search fills res.PathMTU, Refused, RefusedBy, BlackHole, FragNeeded and
// Probes. It returns ErrUnreachable (wrapped) when nothing passes and the
// context's error when interrupted (res holds what was found so far).
func search(ctx context.Context, cfg Config, p prober, res *Result) error {
	if cfg.small == 0 {
		cfg.small = SmallSize
	}
	s := &searcher{cfg: cfg, p: p, res: res, tested: map[int]verdict{}}
	good, bad := 0, cfg.Max+1
	floor := s.try(ctx, cfg.Min)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case floor.passed:
		good = cfg.Min
	default:
		bad = cfg.Min
		small := s.try(ctx, cfg.small)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !small.passed {
			s.finish(0, cfg.small)
			return fmt.Errorf("no answer to %d- or %d-byte echoes (%s): %w", cfg.small, cfg.Min, small.how, ErrUnreachable)
		}
		good = cfg.small
	}
	if good < cfg.Max && bad > cfg.Max {
		top := s.try(ctx, cfg.Max)
		if ctx.Err() != nil {
			s.finish(good, 0)
			return ctx.Err()
		}
		if top.passed {
			good = cfg.Max
		} else {
			bad = cfg.Max
		}
	}
	for bad-good > 1 {
		size, hinted := s.next(good, bad)
		v := s.try(ctx, size)
		if ctx.Err() != nil {
			s.finish(good, bad)
			return ctx.Err()
		}
		if v.passed {
			good = size
			if hinted {
				// The advertised MTU passed: confirm one byte more fails.
				s.hints = append([]int{size + 1}, s.hints...)
			}
		} else {
			bad = size
		}
	}
	s.finish(good, bad)
	return nil
}

// next picks the size to try between good and bad (exclusive): an
// advertised MTU inside the interval if there is one (hinted), else the
// middle.
func (s *searcher) next(good, bad int) (size int, hinted bool) {
	for len(s.hints) > 0 {
		h := s.hints[0]
		s.hints = s.hints[1:]
		if h > good && h < bad {
			return h, true
		}
	}
	return good + (bad-good)/2, false
}

// try probes size up to Retries times; it stops at the first reply or
// definite error.
func (s *searcher) try(ctx context.Context, size int) verdict {
	if v, ok := s.tested[size]; ok {
		return v
	}
	v := verdict{silent: true}
	for attempt := 1; attempt <= s.cfg.Retries && ctx.Err() == nil; attempt++ {
		pr := s.p.probe(ctx, size, s.cfg.Timeout)
		if ctx.Err() != nil && pr.Outcome == Timeout {
			break // interrupted, not lost
		}
		pr.Size, pr.Attempt = size, attempt
		s.res.Probes = append(s.res.Probes, pr)
		if s.cfg.OnProbe != nil {
			s.cfg.OnProbe(pr)
		}
		v.how = pr.Outcome
		switch pr.Outcome {
		case Reply:
			v.passed, v.silent = true, false
			s.tested[size] = v
			return v
		case Timeout:
			continue
		case FragNeeded:
			s.noteFrag(pr)
		}
		v.silent = false
		s.tested[size] = v
		return v
	}
	if ctx.Err() == nil {
		s.tested[size] = v
	}
	return v
}

// noteFrag records a "fragmentation needed" and queues its MTU as a hint.
func (s *searcher) noteFrag(pr Probe) {
	for i := range s.res.FragNeeded {
		f := &s.res.FragNeeded[i]
		if f.From == pr.From && f.MTU == pr.MTU {
			f.Count++
			f.Smallest = min(f.Smallest, pr.Size)
			return
		}
	}
	s.res.FragNeeded = append(s.res.FragNeeded, FragSource{From: pr.From, MTU: pr.MTU, Count: 1, Smallest: pr.Size})
	if pr.MTU > 0 {
		s.hints = append(s.hints, pr.MTU)
	}
}

// finish sets the summary fields from the final interval.
func (s *searcher) finish(good, bad int) {
	s.res.PathMTU = good
	if bad > 0 && bad <= s.cfg.Max && good > 0 {
		v := s.tested[bad]
		s.res.Refused, s.res.RefusedBy = bad, v.how
		s.res.BlackHole = v.silent && v.how == Timeout
	}
	// Probes that vanished at sizes that finally passed were loss, not a
	// size limit; those above the path MTU were the limit.
	s.res.Vanished, s.res.Lost = 0, 0
	for _, p := range s.res.Probes {
		if p.Outcome != Timeout {
			continue
		}
		if good > 0 && p.Size <= good {
			s.res.Lost++
		} else {
			s.res.Vanished++
		}
	}
}
