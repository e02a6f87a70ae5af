package nat

import "time"

// Pool usage over time: the most mappings live at once in each interval,
// kept while streaming (an outside capture alone keeps no flow after its
// mapping expires, so Pool.Live cannot answer afterwards). A pool gets a
// series when usageMin of its mappings are first live at once, and only
// maxUsagePools pools of an input get one, so memory is bounded whatever the capture:
// intervals are one second until a series would pass maxUsageBuckets, then
// neighbours merge in pairs (the width doubles).

const (
	usageMin        = 8
	maxUsagePools   = 64
	maxUsageBuckets = 3600
	usageCap        = 64
)

// usage is one pool's series: peak[i] is the most mappings live at once in
// [start + i*width, start + (i+1)*width).
type usage struct {
	start, width int64
	cur          int32 // mappings live now
	peak         []int32
}

// noteLive records pool p's live mappings after a change at time t (a new
// flow's first packet, or the end of an expired mapping). It allocates only
// when a series starts or grows past its capacity.
func (s *side) noteLive(p *poolAgg, t int64) {
	if p.use == nil {
		if p.live < usageMin || s.usagePools >= maxUsagePools {
			return
		}
		s.usagePools++
		sec := int64(time.Second)
		p.use = &usage{start: t - ((t%sec)+sec)%sec, width: sec, peak: make([]int32, 0, usageCap)}
	}
	p.use.note(t, int32(p.live))
}

func (u *usage) note(t int64, live int32) {
	d := max(t-u.start, 0)
	for d/u.width >= maxUsageBuckets {
		u.double()
	}
	// Times come from packets and from mapping expiries, a little out of
	// order: a change before the current interval lands in it.
	i := max(int(d/u.width), len(u.peak)-1)
	for len(u.peak) <= i {
		u.peak = append(u.peak, u.cur) // intervals without a change
	}
	u.peak[i] = max(u.peak[i], live)
	u.cur = live
}

func (u *usage) double() {
	u.width *= 2
	n := (len(u.peak) + 1) / 2
	for i := 0; i < n; i++ {
		v := u.peak[2*i]
		if 2*i+1 < len(u.peak) {
			v = max(v, u.peak[2*i+1])
		}
		u.peak[i] = v
	}
	clear(u.peak[n:])
	u.peak = u.peak[:n]
}

// LiveSeries is a pool's most live mappings per interval of Width
// nanoseconds from Start (Unix ns), up to the end of the capture.
type LiveSeries struct {
	Start int64 `json:"start_unix_ns"`
	Width int64 `json:"width_ns"`
	Peak  []int `json:"peak_live"`
}

// series returns the pool's series extended to end (the capture's last
// packet), nil when the pool never had usageMin mappings live at once.
func (u *usage) series(end int64) *LiveSeries {
	if u == nil {
		return nil
	}
	s := &LiveSeries{Start: u.start, Width: u.width}
	for _, v := range u.peak {
		s.Peak = append(s.Peak, int(v))
	}
	for n := (end - u.start) / u.width; int64(len(s.Peak)) <= n && len(s.Peak) < maxUsageBuckets; {
		s.Peak = append(s.Peak, int(u.cur))
	}
	return s
}

// maxUsageData bounds the pools whose series the report data carries.
const maxUsageData = 4

// usageData lists the series of the busiest pools for the report data
// ("usage"): protocol, NAT address, destination, the ports seen and the
// series.
func usageData(res *Result, name func(int) string) []map[string]any {
	var out []map[string]any
	for _, p := range res.Pools {
		if p.Usage == nil {
			continue
		}
		if len(out) == maxUsageData {
			break
		}
		out = append(out, map[string]any{"input": name(p.Input), "protocol": protoName(p.Proto), "nat": p.NAT.String(),
			"destination": p.Dst.String(), "port_min": p.PortMin, "port_max": p.PortMax, "distinct_ports": p.DistinctPorts,
			"dense": p.Dense, "peak_mappings": p.PeakMappings, "series": p.Usage})
	}
	return out
}
