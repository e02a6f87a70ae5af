package nat

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpndiag/vpndiag/probe/metrics"
)

// MaxPoolSeries bounds how many pools (the busiest) are exported as labelled
// series, so a gateway talking to many destinations does not explode the
// metric cardinality.
const MaxPoolSeries = 50

// TextfileName is the file Metrics.WriteTextfile writes in its directory.
const TextfileName = "vpndiag_nat.prom"

// Metrics exports the latest snapshot as Prometheus metrics (prefix
// vpndiag_nat_, base units, counters ending in _total). It is a
// prometheus.Collector; Update replaces what it exports.
type Metrics struct {
	mu   sync.Mutex
	snap *Snapshot
	an   *Analysis
	reg  *prometheus.Registry
}

// NewMetrics returns Metrics registered in a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(m)
	return m
}

// Registry returns the registry to serve (promhttp.HandlerFor) or gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Update makes s and its analysis the exported state.
func (m *Metrics) Update(s *Snapshot, a *Analysis) {
	m.mu.Lock()
	m.snap, m.an = s, a
	m.mu.Unlock()
}

// WriteTextfile writes the metrics for node_exporter's textfile collector to
// dir/vpndiag_nat.prom atomically (the shared probe/metrics mechanism).
func (m *Metrics) WriteTextfile(dir string) error {
	return metrics.WriteTextfile(dir, TextfileName, m.reg)
}

var (
	poolLabels = []string{"nat_address", "protocol", "destination"}
	cpuLabel   = []string{"cpu"}

	descEntries     = prometheus.NewDesc("vpndiag_nat_conntrack_entries", "Conntrack entries in use.", nil, nil)
	descMax         = prometheus.NewDesc("vpndiag_nat_conntrack_max_entries", "Conntrack table limit (nf_conntrack_max).", nil, nil)
	descInsert      = prometheus.NewDesc("vpndiag_nat_conntrack_insert_total", "Conntrack entries inserted, per CPU.", cpuLabel, nil)
	descInsertFail  = prometheus.NewDesc("vpndiag_nat_conntrack_insert_failed_total", "New connections whose conntrack entry (or NAT mapping) could not be inserted, per CPU.", cpuLabel, nil)
	descDrop        = prometheus.NewDesc("vpndiag_nat_conntrack_drop_total", "Packets dropped by conntrack, per CPU.", cpuLabel, nil)
	descEarlyDrop   = prometheus.NewDesc("vpndiag_nat_conntrack_early_drop_total", "Entries evicted because the table was full, per CPU.", cpuLabel, nil)
	descInvalid     = prometheus.NewDesc("vpndiag_nat_conntrack_invalid_total", "Packets conntrack could not track, per CPU.", cpuLabel, nil)
	descMappings    = prometheus.NewDesc("vpndiag_nat_snat_mappings", "Conntrack entries with a source NAT.", nil, nil)
	descAddrMap     = prometheus.NewDesc("vpndiag_nat_address_mappings", "Source-NAT mappings per NAT address and protocol.", []string{"nat_address", "protocol"}, nil)
	descAddrPorts   = prometheus.NewDesc("vpndiag_nat_address_ports_in_use", "Distinct NAT ports in use per NAT address and protocol (over all destinations).", []string{"nat_address", "protocol"}, nil)
	descPoolInUse   = prometheus.NewDesc("vpndiag_nat_pool_ports_in_use", "NAT ports in use towards one destination (the busiest pools).", poolLabels, nil)
	descPoolSize    = prometheus.NewDesc("vpndiag_nat_pool_ports", "Ports in the NAT range of the pool.", poolLabels, nil)
	descPoolRatio   = prometheus.NewDesc("vpndiag_nat_pool_utilization_ratio", "Ports in use / ports in the range, per pool.", poolLabels, nil)
	descRulePorts   = prometheus.NewDesc("vpndiag_nat_rule_ports", "Ports in the range of a source-NAT rule.", []string{"source", "rule", "kind"}, nil)
	descUDPTimeout  = prometheus.NewDesc("vpndiag_nat_udp_timeout_seconds", "nf_conntrack_udp_timeout.", nil, nil)
	descLocalPorts  = prometheus.NewDesc("vpndiag_nat_local_port_range_ports", "Ports in net.ipv4.ip_local_port_range.", nil, nil)
	descSnapshotAge = prometheus.NewDesc("vpndiag_nat_snapshot_timestamp_seconds", "When the exported snapshot was taken (Unix time).", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descMax, descInsert, descInsertFail, descDrop, descEarlyDrop, descInvalid,
		descMappings, descAddrMap, descAddrPorts, descPoolInUse, descPoolSize, descPoolRatio, descRulePorts, descUDPTimeout,
		descLocalPorts, descSnapshotAge} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	s, a := m.snap, m.an
	m.mu.Unlock()
	if s == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(descSnapshotAge, float64(s.Time.UnixNano())/1e9)
	gauge(descEntries, float64(s.Conntrack.Entries))
	gauge(descMax, float64(s.Conntrack.Max))
	for _, c := range s.Conntrack.PerCPU {
		cpu := strconv.Itoa(c.CPU)
		counter(descInsert, c.Insert, cpu)
		counter(descInsertFail, c.InsertFailed, cpu)
		counter(descDrop, c.Drop, cpu)
		counter(descEarlyDrop, c.EarlyDrop, cpu)
		counter(descInvalid, c.Invalid, cpu)
	}
	if s.Sysctls.UDPTimeout > 0 {
		gauge(descUDPTimeout, float64(s.Sysctls.UDPTimeout))
	}
	if s.Sysctls.LocalPortMax > 0 {
		gauge(descLocalPorts, float64(s.Sysctls.LocalPortMax-s.Sysctls.LocalPortMin+1))
	}
	seen := map[[2]string]bool{}
	for _, r := range s.Rules {
		k := [2]string{r.Source, r.Where}
		if seen[k] {
			continue
		}
		seen[k] = true
		gauge(descRulePorts, float64(r.RangeSize()), r.Source, r.Where, r.Kind)
	}
	if a == nil {
		return
	}
	gauge(descMappings, float64(a.SNATMappings))
	for _, u := range a.Addresses {
		gauge(descAddrMap, float64(u.Mappings), u.NAT.String(), ProtoName(u.Proto))
		gauge(descAddrPorts, float64(u.DistinctPorts), u.NAT.String(), ProtoName(u.Proto))
	}
	for i, p := range a.Pools {
		if i == MaxPoolSeries {
			break
		}
		l := []string{p.NAT.String(), ProtoName(p.Proto), p.Dst.String()}
		gauge(descPoolInUse, float64(p.InUse), l...)
		gauge(descPoolSize, float64(p.RangeSize()), l...)
		gauge(descPoolRatio, p.Utilization(), l...)
	}
}
