package iperf

// Result is one finished (or partially finished) test, as seen from this
// side, merged with the numbers the peer reported at the end.
type Result struct {
	Protocol      string  `json:"protocol"` // "tcp" or "udp"
	Reverse       bool    `json:"reverse"`  // the server sent, the client received
	Parallel      int     `json:"parallel"`
	Length        int     `json:"length"`                   // bytes per write / datagram
	TargetBitrate uint64  `json:"target_bitrate,omitempty"` // bits/s per stream, 0 unlimited
	LocalSends    bool    `json:"local_sends"`              // this side was the sender
	Remote        string  `json:"remote"`                   // peer address
	Seconds       float64 `json:"seconds"`                  // measured duration on this side
	// Complete is false when the test stopped before results were exchanged
	// (the numbers then come from this side only).
	Complete  bool           `json:"complete"`
	Streams   []StreamResult `json:"streams"`
	Sum       StreamResult   `json:"sum"` // all streams; ID 0
	Intervals []Interval     `json:"intervals"`
}

// StreamResult is the end result of one stream (or their sum).
type StreamResult struct {
	ID                    int     `json:"id"`
	SentBytes             uint64  `json:"sent_bytes"`
	ReceivedBytes         uint64  `json:"received_bytes"`
	SentBitsPerSecond     float64 `json:"sent_bits_per_second"`
	ReceivedBitsPerSecond float64 `json:"received_bits_per_second"`
	// UDP only: datagrams sent, lost and out of order as the receiver
	// counted them, loss in percent of sent, and jitter in milliseconds.
	Packets     int64   `json:"packets,omitempty"`
	Lost        int64   `json:"lost,omitempty"`
	OutOfOrder  int64   `json:"out_of_order,omitempty"`
	LossPercent float64 `json:"loss_percent,omitempty"`
	JitterMs    float64 `json:"jitter_ms,omitempty"`
}

// Interval is one reporting interval measured on this side.
type Interval struct {
	Start   float64          `json:"start"` // seconds since the test started
	End     float64          `json:"end"`
	Streams []IntervalStream `json:"streams"`
	Sum     IntervalStream   `json:"sum"`
}

// IntervalStream is one stream's (or the sum's) numbers in an interval:
// bytes this side sent or received, and for UDP the datagrams and, on the
// receiving side, losses and current jitter.
type IntervalStream struct {
	ID            int     `json:"id"`
	Bytes         uint64  `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Packets       int64   `json:"packets,omitempty"`
	Lost          int64   `json:"lost,omitempty"`
	JitterMs      float64 `json:"jitter_ms,omitempty"`
}
