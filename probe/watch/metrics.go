package watch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpndiag/vpndiag/probe/metrics"
)

// TextfileName is the file Metrics.WriteTextfile writes in its directory.
const TextfileName = "vpndiag_probe.prom"

var (
	targetLabel   = []string{"target"}
	descSent      = prometheus.NewDesc("vpndiag_probe_sent_total", "Probes sent and decided (answered or timed out).", targetLabel, nil)
	descLost      = prometheus.NewDesc("vpndiag_probe_lost_total", "Probes without a reply within the timeout.", targetLabel, nil)
	descOutages   = prometheus.NewDesc("vpndiag_probe_outages_total", "Outages (runs of lost probes) started.", targetLabel, nil)
	descDowntime  = prometheus.NewDesc("vpndiag_probe_downtime_seconds_total", "Length of finished outages.", targetLabel, nil)
	descUp        = prometheus.NewDesc("vpndiag_probe_up", "1 if the last decided probe was answered, 0 if it was lost.", targetLabel, nil)
	descLongest   = prometheus.NewDesc("vpndiag_probe_longest_outage_seconds", "Longest finished outage.", targetLabel, nil)
	descLastRTT   = prometheus.NewDesc("vpndiag_probe_last_rtt_seconds", "Round trip of the last answered probe.", targetLabel, nil)
	descDownSince = prometheus.NewDesc("vpndiag_probe_down_since_timestamp_seconds", "Start of the ongoing outage (Unix time); absent when up.", targetLabel, nil)
)

// Metrics exports a watch as Prometheus metrics (prefix vpndiag_probe_,
// base units, counters ending in _total), per target: probes sent and
// lost, outages and downtime, whether it is up now, the last RTT and an RTT
// histogram. Feed it every event with Observe.
type Metrics struct {
	live *Live
	rtt  *prometheus.HistogramVec
	reg  *prometheus.Registry
}

// NewMetrics returns Metrics for the targets, in a fresh registry.
func NewMetrics(targets ...string) *Metrics {
	m := &Metrics{
		live: NewLive(targets...),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpndiag_probe_rtt_seconds",
			Help:    "Round trip of answered probes.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100 µs .. 3.3 s
		}, targetLabel),
		reg: prometheus.NewRegistry(),
	}
	m.reg.MustRegister(m, m.rtt)
	return m
}

// Observe applies one watch event.
func (m *Metrics) Observe(e Event) {
	m.live.Observe(e)
	if e.Kind == Tick && !e.Lost {
		m.rtt.WithLabelValues(e.Target).Observe(e.RTT.Seconds())
	}
}

// Live returns the counters the metrics are built from.
func (m *Metrics) Live() *Live { return m.live }

// Registry returns the registry to serve or gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WriteTextfile writes dir/vpndiag_probe.prom atomically.
func (m *Metrics) WriteTextfile(dir string) error {
	return metrics.WriteTextfile(dir, TextfileName, m.reg)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSent, descLost, descOutages, descDowntime, descUp, descLongest, descLastRTT, descDownSince} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.live.Snapshot() {
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, c.Target)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, c.Target)
		}
		counter(descSent, float64(c.Sent))
		counter(descLost, float64(c.Lost))
		counter(descOutages, float64(c.Outages))
		counter(descDowntime, c.Downtime.Seconds())
		gauge(descLongest, c.Longest.Seconds())
		if c.Known {
			up := 0.0
			if c.Up {
				up = 1
			}
			gauge(descUp, up)
		}
		if c.LastRTT > 0 {
			gauge(descLastRTT, c.LastRTT.Seconds())
		}
		if !c.DownSince.IsZero() {
			gauge(descDownSince, float64(c.DownSince.UnixNano())/float64(time.Second))
		}
	}
}
