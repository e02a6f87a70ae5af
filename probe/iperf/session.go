package iperf

import (
	"net"
	"sync"
	"time"
)

// session is the data side of one test: its streams, their loops and the
// interval sampler. Client and server both use it.
type session struct {
	udp        bool
	sending    bool // this side sends
	reverse    bool
	length     int
	rate       uint64
	counters64 bool
	interval   time.Duration
	remote     string
	onInterval func(Interval)

	streams []*stream
	errCh   chan error // first stream failures

	mu        sync.Mutex
	start     time.Time
	end       time.Time
	intervals []Interval
	last      []sampleState
	lastAt    time.Time
	frozen    bool
	stopTick  chan struct{}
	tickDone  chan struct{}
}

// sampleState is a stream's cumulative counters at the last sample.
type sampleState struct {
	bytes   uint64
	packets int64
	lost    int64
}

func (se *session) addStream(s *stream) {
	se.streams = append(se.streams, s)
}

// run starts every stream's loop and the sampler.
func (se *session) run() {
	se.errCh = make(chan error, len(se.streams))
	se.start = time.Now()
	se.lastAt = se.start
	se.last = make([]sampleState, len(se.streams))
	for _, s := range se.streams {
		s := s
		go func() {
			switch {
			case !s.udp:
				s.runTCP(se.length, se.rateFor())
			case s.sender:
				s.runUDPSend(se.length, se.rateFor(), se.counters64)
			case s.conn != nil:
				s.runUDPRecv(se.length, se.counters64)
			default:
				// Received through the server's shared socket.
				close(s.done)
				return
			}
			if err := s.Err(); err != nil {
				se.errCh <- err
			}
		}()
	}
	se.stopTick = make(chan struct{})
	se.tickDone = make(chan struct{})
	go se.tick()
}

func (se *session) rateFor() uint64 {
	if se.sending {
		return se.rate
	}
	return 0
}

func (se *session) tick() {
	defer close(se.tickDone)
	if se.interval <= 0 {
		<-se.stopTick
		return
	}
	t := time.NewTicker(se.interval)
	defer t.Stop()
	for {
		select {
		case <-se.stopTick:
			return
		case now := <-t.C:
			se.sample(now)
		}
	}
}

// sample records the interval since the previous sample.
func (se *session) sample(now time.Time) {
	se.mu.Lock()
	defer se.mu.Unlock()
	dur := now.Sub(se.lastAt).Seconds()
	if dur <= 0 {
		return
	}
	iv := Interval{Start: se.lastAt.Sub(se.start).Seconds(), End: now.Sub(se.start).Seconds()}
	for i, s := range se.streams {
		cur := sampleState{bytes: s.bytes.Load()}
		var jitter float64
		if s.udp {
			if s.sender {
				cur.packets = s.packets.Load()
			} else {
				var j float64
				cur.packets, cur.lost, _, j = s.rx.snapshot()
				jitter = j * 1000
			}
		}
		d := IntervalStream{
			ID:       s.id,
			Bytes:    cur.bytes - se.last[i].bytes,
			Packets:  cur.packets - se.last[i].packets,
			Lost:     cur.lost - se.last[i].lost,
			JitterMs: jitter,
		}
		d.BitsPerSecond = float64(d.Bytes) * 8 / dur
		se.last[i] = cur
		iv.Streams = append(iv.Streams, d)
		iv.Sum.Bytes += d.Bytes
		iv.Sum.Packets += d.Packets
		iv.Sum.Lost += d.Lost
		iv.Sum.JitterMs += d.JitterMs / float64(len(se.streams))
	}
	iv.Sum.BitsPerSecond = float64(iv.Sum.Bytes) * 8 / dur
	se.lastAt = now
	if n := len(se.intervals); dur < 0.05 && n > 0 {
		// A sliver at the end joins the previous interval.
		prev := &se.intervals[n-1]
		span := iv.End - prev.Start
		prev.End = iv.End
		for i := range prev.Streams {
			ps, d := &prev.Streams[i], iv.Streams[i]
			ps.Bytes += d.Bytes
			ps.Packets += d.Packets
			ps.Lost += d.Lost
			ps.JitterMs = d.JitterMs
			ps.BitsPerSecond = float64(ps.Bytes) * 8 / span
		}
		prev.Sum.Bytes += iv.Sum.Bytes
		prev.Sum.Packets += iv.Sum.Packets
		prev.Sum.Lost += iv.Sum.Lost
		prev.Sum.JitterMs = iv.Sum.JitterMs
		prev.Sum.BitsPerSecond = float64(prev.Sum.Bytes) * 8 / span
		return
	}
	se.intervals = append(se.intervals, iv)
	if se.onInterval != nil {
		se.onInterval(iv)
	}
}

// halt freezes the counters (the final partial interval is sampled) and
// stops the stream loops; receivers given drain keep reading until the
// peer closes. It does not wait.
func (se *session) halt(drain time.Duration) {
	if se.stopTick == nil {
		return
	}
	for _, s := range se.streams {
		s.beginHalt(drain)
	}
	// Senders stop at once; wait so their last write is counted.
	for _, s := range se.streams {
		if s.sender {
			s.waitDone(2 * time.Second)
		}
	}
	now := time.Now()
	se.mu.Lock()
	if se.end.IsZero() {
		se.end = now
	}
	se.mu.Unlock()
	select {
	case <-se.stopTick:
	default:
		close(se.stopTick)
	}
	<-se.tickDone
	se.sample(now)
	se.mu.Lock()
	se.frozen = true
	se.mu.Unlock()
}

// totals returns a stream's cumulative counters: live while the test
// runs, and as of the last sample once it has been halted, so the
// intervals always add up to the totals.
func (se *session) totals(i int) sampleState {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.frozen {
		return se.last[i]
	}
	s := se.streams[i]
	st := sampleState{bytes: s.bytes.Load(), packets: s.packets.Load()}
	if s.udp && !s.sender {
		st.packets, st.lost, _, _ = s.rx.snapshot()
	}
	return st
}

// wait waits for every stream loop to end, at most timeout each.
func (se *session) wait(timeout time.Duration) {
	for _, s := range se.streams {
		s.waitDone(timeout)
	}
}

// close closes every stream connection.
func (se *session) close() {
	for _, s := range se.streams {
		if s.conn != nil {
			s.conn.Close()
		}
	}
}

// elapsed is the measured test duration in seconds.
func (se *session) elapsed() float64 {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.start.IsZero() {
		return 0
	}
	end := se.end
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(se.start).Seconds()
}

// localResults builds this side's results document.
func (se *session) localResults() wireResults {
	secs := se.elapsed()
	w := wireResults{SenderHasRetransmits: 0, Streams: []wireStream{}}
	if !se.sending {
		w.SenderHasRetransmits = -1
	}
	for i, s := range se.streams {
		tot := se.totals(i)
		ws := wireStream{ID: s.id, Bytes: tot.bytes, Retransmits: -1, EndTime: secs}
		if s.udp {
			ws.Packets = wireInt(tot.packets)
			if !s.sender {
				_, _, _, j := s.rx.snapshot()
				ws.Errors, ws.Jitter = wireInt(tot.lost), j
			}
		}
		w.Streams = append(w.Streams, ws)
	}
	return w
}

// result merges this side's counters with the peer's results (nil when
// the test did not get that far).
func (se *session) result(remote *wireResults) *Result {
	secs := se.elapsed()
	r := &Result{
		Protocol:      "tcp",
		Reverse:       se.reverse,
		Parallel:      len(se.streams),
		Length:        se.length,
		TargetBitrate: se.rate,
		LocalSends:    se.sending,
		Remote:        se.remote,
		Seconds:       secs,
		Complete:      remote != nil,
		Streams:       []StreamResult{},
	}
	if se.udp {
		r.Protocol = "udp"
	}
	se.mu.Lock()
	r.Intervals = append([]Interval{}, se.intervals...)
	se.mu.Unlock()
	byID := map[int]wireStream{}
	if remote != nil {
		for _, ws := range remote.Streams {
			byID[ws.ID] = ws
		}
	}
	var sendSecs, recvSecs float64
	var jitterSum float64
	for i, s := range se.streams {
		tot := se.totals(i)
		sr := StreamResult{ID: s.id}
		ws, ok := byID[s.id]
		remoteSecs := secs
		if ok && ws.EndTime-ws.StartTime > 0 {
			remoteSecs = ws.EndTime - ws.StartTime
		}
		local := tot.bytes
		var sSecs, rSecs float64
		if s.sender {
			sr.SentBytes, sSecs = local, secs
			sr.ReceivedBytes, rSecs = ws.Bytes, remoteSecs
			if s.udp {
				sr.Packets = tot.packets
				sr.Lost = int64(ws.Errors)
				sr.JitterMs = ws.Jitter * 1000
			}
		} else {
			sr.ReceivedBytes, rSecs = local, secs
			sr.SentBytes, sSecs = ws.Bytes, remoteSecs
			if s.udp {
				_, _, ooo, j := s.rx.snapshot()
				sr.Packets = int64(ws.Packets)
				if !ok {
					sr.Packets = tot.packets
				}
				sr.Lost, sr.OutOfOrder, sr.JitterMs = tot.lost, ooo, j*1000
			}
		}
		if sSecs > 0 {
			sr.SentBitsPerSecond = float64(sr.SentBytes) * 8 / sSecs
		}
		if rSecs > 0 {
			sr.ReceivedBitsPerSecond = float64(sr.ReceivedBytes) * 8 / rSecs
		}
		if sr.Packets > 0 {
			sr.LossPercent = 100 * float64(sr.Lost) / float64(sr.Packets)
		}
		sendSecs = max(sendSecs, sSecs)
		recvSecs = max(recvSecs, rSecs)
		jitterSum += sr.JitterMs
		r.Sum.SentBytes += sr.SentBytes
		r.Sum.ReceivedBytes += sr.ReceivedBytes
		r.Sum.Packets += sr.Packets
		r.Sum.Lost += sr.Lost
		r.Sum.OutOfOrder += sr.OutOfOrder
		r.Streams = append(r.Streams, sr)
	}
	if sendSecs > 0 {
		r.Sum.SentBitsPerSecond = float64(r.Sum.SentBytes) * 8 / sendSecs
	}
	if recvSecs > 0 {
		r.Sum.ReceivedBitsPerSecond = float64(r.Sum.ReceivedBytes) * 8 / recvSecs
	}
	if r.Sum.Packets > 0 {
		r.Sum.LossPercent = 100 * float64(r.Sum.Lost) / float64(r.Sum.Packets)
	}
	if n := len(r.Streams); n > 0 {
		r.Sum.JitterMs = jitterSum / float64(n)
	}
	return r
}

// remoteAddr names a connection's peer.
func remoteAddr(c net.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	return c.RemoteAddr().String()
}
