package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type dnsResult struct {
	Sent     int     `json:"sent"`
	Answered int     `json:"answered"`
	Timeouts int     `json:"timeouts"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
}

// dnsQuery builds an A query for name with the given id (RD set).
func dnsQuery(id uint16, name string) []byte {
	b := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(b[0:], id)
	b[2] = 0x01                          // RD
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0, 0, 1, 0, 1) // root, QTYPE A, QCLASS IN
}

// dnsAnswered reports whether resp answers query id with RCODE 0 and at
// least one answer record.
func dnsAnswered(resp []byte, id uint16) bool {
	return len(resp) >= 12 && binary.BigEndian.Uint16(resp) == id && resp[2]&0x80 != 0 &&
		resp[3]&0x0f == 0 && binary.BigEndian.Uint16(resp[6:]) > 0
}

// dnsFlood sends count queries qN.ZONE at rate per second, each from a new
// socket (fresh source port) by default, and counts answers within -timeout.
func dnsFlood(args []string) (any, error) {
	fs := flags("dns")
	to := fs.String("to", "", "server ADDR:PORT")
	count := fs.Int("count", 100, "queries (max 1000000)")
	rate := fs.Float64("rate", 100, "queries per second (0 = as fast as possible)")
	zone := fs.String("name", "lab.test", "zone: query names are q<N>.<zone>")
	timeout := fs.Duration("timeout", 2*time.Second, "wait this long for each answer")
	fresh := fs.Bool("fresh", true, "new socket (source port) per query")
	dur := fs.Duration("duration", time.Minute, "stop sending after this long")
	_ = fs.Parse(args)
	if *to == "" || *count < 1 || *count > 1_000_000 || *timeout <= 0 || *timeout > time.Minute {
		return nil, errors.New("need -to, -count 1..1000000, -timeout up to 1m")
	}
	raddr, err := net.ResolveUDPAddr("udp", *to)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(bound(*dur))
	var answered, timeouts, errs atomic.Int64
	var wg sync.WaitGroup
	await := func(conn *net.UDPConn, id uint16) {
		defer wg.Done()
		defer conn.Close()
		buf := make([]byte, 1500)
		_ = conn.SetReadDeadline(time.Now().Add(*timeout))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					timeouts.Add(1)
				} else {
					errs.Add(1)
				}
				return
			}
			if dnsAnswered(buf[:n], id) {
				answered.Add(1)
				return
			}
		}
	}
	var shared *net.UDPConn
	pending := map[uint16]bool{}
	var pmu sync.Mutex
	if !*fresh {
		if shared, err = net.DialUDP("udp", nil, raddr); err != nil {
			return nil, err
		}
		go func() { // one reader matches answers to ids
			buf := make([]byte, 1500)
			for {
				n, err := shared.Read(buf)
				if err != nil {
					return
				}
				if n >= 12 {
					id := binary.BigEndian.Uint16(buf)
					pmu.Lock()
					if pending[id] && dnsAnswered(buf[:n], id) {
						delete(pending, id)
						answered.Add(1)
					}
					pmu.Unlock()
				}
			}
		}()
	}
	res := dnsResult{}
	p := newPacer(*rate)
	base := rand.Uint32()
	for i := 0; i < *count && time.Now().Before(deadline); i++ {
		p.wait(i)
		id := uint16(base + uint32(i))
		q := dnsQuery(id, fmt.Sprintf("q%d.%s", i, *zone))
		if *fresh {
			conn, err := net.DialUDP("udp", nil, raddr)
			if err != nil {
				errs.Add(1)
				continue
			}
			if _, err := conn.Write(q); err != nil {
				conn.Close()
				errs.Add(1)
				continue
			}
			res.Sent++
			wg.Add(1)
			go await(conn, id)
			continue
		}
		pmu.Lock()
		pending[id] = true
		pmu.Unlock()
		if _, err := shared.Write(q); err != nil {
			errs.Add(1)
			continue
		}
		res.Sent++
	}
	wg.Wait()
	if shared != nil {
		time.Sleep(*timeout)
		shared.Close()
		pmu.Lock()
		timeouts.Add(int64(len(pending)))
		pmu.Unlock()
	}
	res.Answered, res.Timeouts, res.Errors = int(answered.Load()), int(timeouts.Load()), int(errs.Load())
	res.Seconds = time.Since(p.start).Seconds()
	return res, nil
}
