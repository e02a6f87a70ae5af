// Package ping measures ICMP echo round trips with pro-bing: loss,
// min/avg/percentiles/max, mdev (as iputils computes it), duplicates and
// reordering. With a raw socket on Linux, replies are timed by the kernel's
// receive timestamp as iputils times them (see rxStamps).
package ping

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// Mode selects the kind of ICMP socket.
type Mode int

// Socket modes.
const (
	// Auto uses a raw socket when running as root and an unprivileged ICMP
	// datagram socket otherwise.
	Auto Mode = iota
	// Privileged uses a raw ICMP socket (root or CAP_NET_RAW).
	Privileged
	// Unprivileged uses an ICMP datagram socket, allowed for the groups in
	// sysctl net.ipv4.ping_group_range.
	Unprivileged
)

// MinSize is the smallest payload: pro-bing carries an 8-byte timestamp
// and a 16-byte tracker in every echo.
const MinSize = 24

// Config describes one ping run. Zero values take the defaults.
type Config struct {
	Target   string        // host name or address
	Count    int           // echoes to send; default 10
	Interval time.Duration // between echoes; default 1 s, at least 1 ms
	Size     int           // ICMP payload bytes (ping -s); default 56, at least MinSize
	Mode     Mode
	Source   string // source address (ping -I ADDR)
	// Interface binds to an interface by name (ping -I IFACE).
	Interface string
	// DontFragment sets DF on IPv4 echoes (ping -M do), so a path MTU below
	// the packet size shows as loss or an ICMP error instead of fragments.
	DontFragment bool
	TTL          int           // default 64
	Wait         time.Duration // how long to wait for the last reply; default 1 s
	// OnReply, if set, is called for every reply (duplicates included).
	OnReply func(Reply)
}

// Reply is one echo reply.
type Reply struct {
	Seq       int           `json:"seq"`
	RTT       time.Duration `json:"rtt_ns"`
	TTL       int           `json:"ttl"`
	Bytes     int           `json:"bytes"`
	From      string        `json:"from"`
	Duplicate bool          `json:"duplicate,omitempty"`
	Reordered bool          `json:"reordered,omitempty"` // arrived after a later sequence number
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Target == "" {
		return cfg, errors.New("no target given")
	}
	if cfg.Count == 0 {
		cfg.Count = 10
	}
	if cfg.Count < 0 || cfg.Count > 10_000_000 {
		return cfg, fmt.Errorf("count %d out of range", cfg.Count)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Interval < time.Millisecond {
		return cfg, fmt.Errorf("interval %v below 1ms", cfg.Interval)
	}
	if cfg.Size == 0 {
		cfg.Size = 56
	}
	if cfg.Size < MinSize || cfg.Size > 65507 {
		return cfg, fmt.Errorf("size %d out of range %d..65507 (pro-bing needs %d payload bytes for its timestamp and tracker)", cfg.Size, MinSize, MinSize)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 64
	}
	if cfg.Wait <= 0 {
		cfg.Wait = time.Second
	}
	if cfg.Source != "" && net.ParseIP(cfg.Source) == nil {
		return cfg, fmt.Errorf("bad source address %q", cfg.Source)
	}
	return cfg, nil
}

// stampWait bounds how long a reply waits for its kernel timestamp before
// it is timed in user space instead.
const stampWait = 5 * time.Millisecond

// ErrPermission is wrapped by Run's error when the ICMP socket may not be
// opened; the message says what to grant.
var ErrPermission = errors.New("not permitted to open an ICMP socket")

// Run sends cfg.Count echoes and returns the statistics. It ends early,
// returning what was measured, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	p := probing.New(cfg.Target)
	p.ResolveTimeout = 5 * time.Second
	if err := p.Resolve(); err != nil {
		return nil, fmt.Errorf("ping %s: resolve: %w", cfg.Target, err)
	}
	p.Count = cfg.Count
	p.Interval = cfg.Interval
	p.Size = cfg.Size
	p.TTL = cfg.TTL
	p.Source = cfg.Source
	p.InterfaceName = cfg.Interface
	p.RecordRtts = false
	p.RecordTTLs = false
	p.Timeout = time.Duration(cfg.Count)*cfg.Interval + cfg.Wait
	p.SetLogger(probing.NoopLogger{})
	p.SetDoNotFragment(cfg.DontFragment)
	privileged := cfg.Mode == Privileged || (cfg.Mode == Auto && os.Geteuid() == 0)
	p.SetPrivileged(privileged)

	// Raw sockets: time replies by the kernel's receive timestamp (as
	// iputils does) where the second socket can be opened; otherwise, and
	// for unprivileged ICMP sockets, pro-bing's user-space time.
	var stamps *rxStamps
	if privileged {
		if s, err := openRxStamps(p.IPAddr().IP, p.ID()); err == nil {
			stamps = s
			defer stamps.Close()
		}
	}
	acc := newAccumulator(cfg.Count)
	var mu sync.Mutex
	kernelTimed := 0
	p.OnRecv = func(pk *probing.Packet) {
		rtt, kernel := pk.Rtt, false
		if stamps != nil {
			if k, ok := stamps.take(pk.Seq, pk.Rtt, stampWait); ok {
				rtt, kernel = k, true
			}
		}
		mu.Lock()
		if kernel {
			kernelTimed++
		}
		r := acc.reply(pk.Seq, rtt)
		mu.Unlock()
		if cfg.OnReply != nil {
			cfg.OnReply(Reply{Seq: pk.Seq, RTT: rtt, TTL: pk.TTL, Bytes: pk.Nbytes, From: pk.Addr, Reordered: r})
		}
	}
	p.OnDuplicateRecv = func(pk *probing.Packet) {
		if cfg.OnReply != nil {
			cfg.OnReply(Reply{Seq: pk.Seq, RTT: pk.Rtt, TTL: pk.TTL, Bytes: pk.Nbytes, From: pk.Addr, Duplicate: true})
		}
	}
	runErr := p.RunWithContext(ctx)
	ps := p.Statistics()
	mu.Lock()
	st := acc.stats(ps.PacketsSent, ps.PacketsRecvDuplicates)
	st.KernelTimed = kernelTimed
	mu.Unlock()
	st.Target, st.Addr, st.Size, st.Privileged = cfg.Target, ps.IPAddr.String(), cfg.Size, privileged
	if runErr != nil {
		if errors.Is(runErr, syscall.EPERM) || errors.Is(runErr, syscall.EACCES) || errors.Is(runErr, syscall.EPROTONOSUPPORT) {
			return nil, fmt.Errorf("ping %s: %w: %v; %s", cfg.Target, ErrPermission, runErr, permissionHint(privileged))
		}
		if errors.Is(runErr, syscall.EMSGSIZE) {
			return st, fmt.Errorf("ping %s: %d-byte payload with DF exceeds the local MTU: %w", cfg.Target, cfg.Size, runErr)
		}
		if ctx.Err() == nil {
			return st, fmt.Errorf("ping %s: %w", cfg.Target, runErr)
		}
	}
	if ctx.Err() != nil {
		return st, fmt.Errorf("ping %s interrupted after %d echoes: %w", cfg.Target, st.Sent, ctx.Err())
	}
	return st, nil
}

func permissionHint(privileged bool) string {
	if privileged {
		return "raw ICMP needs root or CAP_NET_RAW (setcap cap_net_raw+ep $(which vpndiag)); or use unprivileged mode"
	}
	return "unprivileged ICMP needs your group in sysctl net.ipv4.ping_group_range (e.g. sysctl -w net.ipv4.ping_group_range='0 2147483647'); or run privileged as root"
}
