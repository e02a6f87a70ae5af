package nat

import (
	"net/netip"
	"time"
)

// Mapping is one source-NAT'd conntrack entry.
type Mapping struct {
	Proto  uint8
	Inside netip.AddrPort // the client's original source
	Dst    netip.AddrPort // the peer (reply source, after any DNAT)
	NAT    netip.AddrPort // the translated source (reply destination)
	// Unreplied is true until the peer answered (no IPS_SEEN_REPLY).
	Unreplied bool
}

// CPUStats are the conntrack counters of one CPU (or their sum).
type CPUStats struct {
	CPU           int    `json:"cpu"`
	Found         uint64 `json:"found"`
	Invalid       uint64 `json:"invalid"`
	Insert        uint64 `json:"insert"`
	InsertFailed  uint64 `json:"insert_failed"`
	Drop          uint64 `json:"drop"`
	EarlyDrop     uint64 `json:"early_drop"`
	Error         uint64 `json:"error"`
	SearchRestart uint64 `json:"search_restart"`
}

func (s *CPUStats) add(o CPUStats) {
	s.Found += o.Found
	s.Invalid += o.Invalid
	s.Insert += o.Insert
	s.InsertFailed += o.InsertFailed
	s.Drop += o.Drop
	s.EarlyDrop += o.EarlyDrop
	s.Error += o.Error
	s.SearchRestart += o.SearchRestart
}

// Conntrack is the table's size and statistics.
type Conntrack struct {
	Entries uint64     `json:"entries"` // current entries (nf_conntrack_count)
	Max     uint64     `json:"max"`     // nf_conntrack_max
	PerCPU  []CPUStats `json:"per_cpu"`
	Total   CPUStats   `json:"total"` // sum over CPUs
}

// Sysctls are the kernel settings that size a NAT gateway. Zero means the
// setting could not be read (its key is then in Snapshot.Warnings).
type Sysctls struct {
	LocalPortMin       int `json:"ip_local_port_range_min"`
	LocalPortMax       int `json:"ip_local_port_range_max"`
	ConntrackMax       int `json:"nf_conntrack_max"`
	ConntrackCount     int `json:"nf_conntrack_count"`
	ConntrackBuckets   int `json:"nf_conntrack_buckets"`
	UDPTimeout         int `json:"nf_conntrack_udp_timeout"`
	UDPTimeoutStream   int `json:"nf_conntrack_udp_timeout_stream"`
	TCPTimeoutEst      int `json:"nf_conntrack_tcp_timeout_established"`
	TCPTimeoutTimeWait int `json:"nf_conntrack_tcp_timeout_time_wait"`
}

// Snapshot is one reading of a gateway's NAT state.
type Snapshot struct {
	Time      time.Time
	Conntrack Conntrack
	Mappings  []Mapping
	Rules     []Rule
	Sysctls   Sysctls
	// Warnings are things that could not be read (a missing nft binary, an
	// unreadable sysctl); the rest of the snapshot is still valid.
	Warnings []string
}
