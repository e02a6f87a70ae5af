// Command ikeflood is the flood lab's bounded generator: it sends
// IKE_SA_INIT-shaped UDP datagrams (a valid 28-byte IKEv2 header with a
// random initiator SPI, then padding) to -to from -sources consecutive
// source addresses starting at -base (which must be local, e.g. through an
// AnyIP route "ip route add local 198.19.0.0/24 dev lo"), at -rate per
// second, -count in all, and prints {"sent":N,"sources":S} when done.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"
)

func main() {
	to := flag.String("to", "", "target ADDR:PORT")
	base := flag.String("base", "198.19.0.1", "first source address")
	sources := flag.Int("sources", 100, "source addresses (1..1024)")
	count := flag.Int("count", 500, "datagrams (1..100000)")
	rate := flag.Float64("rate", 100, "datagrams per second (1..100000)")
	flag.Parse()
	if err := run(*to, *base, *sources, *count, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "ikeflood:", err)
		os.Exit(1)
	}
}

func run(to, base string, sources, count int, rate float64) error {
	if sources < 1 || sources > 1024 || count < 1 || count > 100000 || rate < 1 || rate > 100000 {
		return fmt.Errorf("need -sources 1..1024, -count 1..100000, -rate 1..100000")
	}
	dst, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		return err
	}
	b, err := netip.ParseAddr(base)
	if err != nil || !b.Is4() {
		return fmt.Errorf("bad -base %q", base)
	}
	conns := make([]*net.UDPConn, sources)
	a := b
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: a.AsSlice(), Port: 500})
		if err != nil {
			return fmt.Errorf("bind %s:500: %w", a, err)
		}
		defer c.Close()
		conns[i] = c
		a = a.Next()
	}
	msg := make([]byte, 256)
	msg[16] = 33   // next payload: SA
	msg[17] = 0x20 // version 2.0
	msg[18] = 34   // IKE_SA_INIT
	msg[19] = 0x08 // initiator
	binary.BigEndian.PutUint32(msg[24:], uint32(len(msg)))
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	sent := 0
	for i := 0; i < count && time.Now().Before(deadline); i++ {
		if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		binary.BigEndian.PutUint64(msg, rand.Uint64()|1)
		if _, err := conns[i%sources].WriteToUDP(msg, dst); err != nil {
			return err
		}
		sent++
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int{"sent": sent, "sources": sources})
}
