package iperf

import (
	"fmt"
	"strconv"
)

// params is the JSON parameter document the client sends after
// PARAM_EXCHANGE. Booleans are sent only when true: iperf3 tests for the
// presence of "tcp", "udp", "reverse" and the others, not their value.
type params struct {
	TCP              bool   `json:"tcp,omitempty"`
	UDP              bool   `json:"udp,omitempty"`
	Omit             int    `json:"omit"`
	Time             int    `json:"time"`
	Num              uint64 `json:"num,omitempty"`
	BlockCount       uint64 `json:"blockcount,omitempty"`
	MSS              int    `json:"MSS,omitempty"`
	NoDelay          bool   `json:"nodelay,omitempty"`
	Parallel         int    `json:"parallel"`
	Reverse          bool   `json:"reverse,omitempty"`
	Bidirectional    bool   `json:"bidirectional,omitempty"`
	Window           int    `json:"window,omitempty"`
	Len              int    `json:"len,omitempty"`
	Bandwidth        uint64 `json:"bandwidth,omitempty"`
	FQRate           uint64 `json:"fqrate,omitempty"`
	PacingTimer      int    `json:"pacing_timer,omitempty"`
	Burst            int    `json:"burst,omitempty"`
	TOS              int    `json:"TOS,omitempty"`
	Title            string `json:"title,omitempty"`
	ExtraData        string `json:"extra_data,omitempty"`
	GetServerOutput  int    `json:"get_server_output,omitempty"`
	UDPCounters64Bit int    `json:"udp_counters_64bit,omitempty"`
	DontFragment     int    `json:"dont_fragment,omitempty"`
	ClientVersion    string `json:"client_version,omitempty"`
}

// wireResults is the JSON results document both sides send after
// EXCHANGE_RESULTS. iperf3 rejects a document without the cpu_util_* and
// sender_has_retransmits members, or a stream without id, bytes,
// retransmits, jitter, errors and packets.
type wireResults struct {
	CPUUtilTotal         float64      `json:"cpu_util_total"`
	CPUUtilUser          float64      `json:"cpu_util_user"`
	CPUUtilSystem        float64      `json:"cpu_util_system"`
	SenderHasRetransmits wireInt      `json:"sender_has_retransmits"`
	CongestionUsed       string       `json:"congestion_used,omitempty"`
	Streams              []wireStream `json:"streams"`
}

// wireStream is one stream in wireResults.
type wireStream struct {
	ID          int     `json:"id"`
	Bytes       uint64  `json:"bytes"`
	Retransmits wireInt `json:"retransmits"`
	Jitter      float64 `json:"jitter"`
	Errors      wireInt `json:"errors"`
	Packets     wireInt `json:"packets"`
	StartTime   float64 `json:"start_time"`
	EndTime     float64 `json:"end_time"`
}

// wireInt is an integer as iperf3 writes it: -1 may arrive as
// 18446744073709551615 (printed unsigned), and whole numbers as floats.
type wireInt int64

// UnmarshalJSON accepts signed, unsigned (wrapped) and float numbers.
func (w *wireInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*w = wireInt(v)
		return nil
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		*w = wireInt(int64(v))
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %.40q", s)
	}
	*w = wireInt(v)
	return nil
}
