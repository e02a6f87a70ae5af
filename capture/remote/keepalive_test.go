package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpndiag/vpndiag/capture"
)

// fakeServer is an in-process SSH server on 127.0.0.1 whose sessions act
// like the remote capture script: an exec request streams a pcap header
// and `frames` frames, then nothing until stdin ends (the capture
// stopped), when the session exits 0. It answers keepalives (global
// requests), and forwards direct-tcpip channels (a ProxyJump host). Its
// connections go through a proxy that freeze stops in both directions
// without closing anything: a path that died silently.
type fakeServer struct {
	addr   string // the proxy's HOST:PORT, to connect to
	key    ssh.PublicKey
	frames int
	frozen atomic.Bool
}

func pcapStream(frames int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1) // Ethernet
	now := time.Now()
	for i := range frames {
		pkt := make([]byte, 60)
		copy(pkt, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, byte(i), 0x88, 0xb5})
		b = binary.LittleEndian.AppendUint32(b, uint32(now.Unix()))
		b = binary.LittleEndian.AppendUint32(b, uint32(now.Nanosecond()/1000))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(pkt)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(pkt)))
		b = append(b, pkt...)
	}
	return b
}

// startFakeServer serves until the test ends, accepting the public key of
// client.
func startFakeServer(t *testing.T, client ssh.PublicKey, frames int) *fakeServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(client.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(signer)
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{addr: proxy.Addr().String(), key: signer.PublicKey(), frames: frames}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		srv.Close()
		proxy.Close()
		fs.frozen.Store(false)
		conns.Wait()
	})
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				fs.serve(c, cfg)
			}()
		}
	}()
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			pipe := func(dst, src net.Conn) {
				defer conns.Done()
				defer dst.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					for fs.frozen.Load() { // hold the bytes: nothing gets through, nothing is closed
						time.Sleep(10 * time.Millisecond)
					}
					if n > 0 {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return fs
}

func (fs *fakeServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // keepalives get a (negative) reply
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go fs.session(ch, creqs)
		case "direct-tcpip":
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			dst, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				dst.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			go func() { io.Copy(ch, dst); ch.CloseWrite() }()
			go func() { io.Copy(dst, ch); dst.Close() }()
		default:
			nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

func (fs *fakeServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for r := range reqs {
		if r.Type != "exec" {
			r.Reply(false, nil)
			continue
		}
		r.Reply(true, nil)
		fmt.Fprintf(ch.Stderr(), "%stcpdump\n", markTool)
		ch.Write(pcapStream(fs.frames))
		io.Copy(io.Discard, ch) // until the capture is stopped
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
		return
	}
}

// clientKey writes a client key file and returns its path and public key.
func clientKey(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

func knownHostsFile(t *testing.T, servers ...*fakeServer) string {
	t.Helper()
	var lines []string
	for _, s := range servers {
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, s.key))
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openFake(t *testing.T, ctx context.Context, o Options, target string) (capture.Source, error) {
	t.Helper()
	op, err := NewOpener(o)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := capture.ParseSpec("ssh://" + target + "/eth0")
	if err != nil {
		t.Fatal(err)
	}
	return op.Open(ctx, spec, capture.SpecOptions{Hop: "h"})
}

// nextResult is Next's error (nil: a frame) in a goroutine.
func nextAsync(src capture.Source) <-chan error {
	ch := make(chan error, 1)
	go func() {
		var f capture.Frame
		ch <- src.Next(&f)
	}()
	return ch
}

// TestKeepalive: with a 100 ms keepalive and a count of 3, a capture that
// streams nothing for a second but whose host answers keepalives goes on;
// after the path freezes (nothing passes, nothing is closed) Next returns
// an error wrapping ErrConnectionLost, naming the host and "no reply to
// keepalives for 300ms", within 2 s but not before 150 ms (silence counts
// from the last reply, at most 125 ms before the freeze); the frames
// streamed before were all read. With keepalives off (negative interval)
// the frozen capture is still waiting after a second, and stopping it
// ends it.
func TestKeepalive(t *testing.T) {
	id, pub := clientKey(t)
	fs := startFakeServer(t, pub, 5)
	o := Options{KnownHosts: []string{knownHostsFile(t, fs)}, Identities: []string{id}, NoAgent: true,
		ConnectTimeout: 5 * time.Second, StopTimeout: time.Second, KeepaliveInterval: 100 * time.Millisecond, KeepaliveCount: 3}
	src, err := openFake(t, t.Context(), o, "u@"+fs.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var f capture.Frame
	for i := range fs.frames {
		if err := src.Next(&f); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
	}
	next := nextAsync(src)
	select {
	case err := <-next:
		t.Fatalf("a silent capture whose host answers keepalives ended: %v", err)
	case <-time.After(time.Second):
	}
	fs.frozen.Store(true)
	start := time.Now()
	select {
	case err := <-next:
		host, _, _ := net.SplitHostPort(fs.addr)
		want := "lost the SSH connection to " + host + " (" + fs.addr + "): no reply to keepalives for 300ms"
		if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), want) {
			t.Errorf("frozen path: %v, want %q", err, want)
		}
		// Silence counts from the last byte: the last keepalive reply came
		// at most an interval (and a check period, 25 ms) before the freeze.
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("given up %v after the freeze, before 3 intervals of silence could pass", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("frozen path not given up within 2 s")
	}
	fs.frozen.Store(false)

	t.Run("off", func(t *testing.T) {
		o := o
		o.KeepaliveInterval = -1
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src, err := openFake(t, ctx, o, "u@"+fs.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for range fs.frames {
			if err := src.Next(&f); err != nil {
				t.Fatal(err)
			}
		}
		next := nextAsync(src)
		fs.frozen.Store(true)
		select {
		case err := <-next:
			t.Fatalf("keepalives off, frozen path: ended with %v", err)
		case <-time.After(time.Second):
		}
		fs.frozen.Store(false)
		cancel()
		select {
		case err := <-next:
			if err != io.EOF {
				t.Errorf("stopped: %v, want io.EOF", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stopped capture did not end within 5 s")
		}
	})
}

// TestProxyJumpHostKey: a target reached through a jump host (ProxyJump
// in the ssh config, both in-process servers) streams its frames when
// both keys are known; with the jump host's key missing from known_hosts
// the error names the jump host, wraps ErrUnknownHostKey and gives its
// fingerprint; with the jump host's key changed it wraps
// ErrChangedHostKey.
func TestProxyJumpHostKey(t *testing.T) {
	id, pub := clientKey(t)
	jump := startFakeServer(t, pub, 0)
	target := startFakeServer(t, pub, 3)
	other := startFakeServer(t, pub, 0)
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("Host tgt\n\tHostName 127.0.0.1\n\tPort "+portOf(target.addr)+"\n\tProxyJump j@"+jump.addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{ConfigFile: cfg, Identities: []string{id}, NoAgent: true, ConnectTimeout: 5 * time.Second, StopTimeout: time.Second}

	o.KnownHosts = []string{knownHostsFile(t, jump, target)}
	src, err := openFake(t, t.Context(), o, "u@tgt")
	if err != nil {
		t.Fatalf("through the jump host: %v", err)
	}
	var f capture.Frame
	for i := range target.frames {
		if err := src.Next(&f); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
	}
	src.Close()

	o.KnownHosts = []string{knownHostsFile(t, target)}
	_, err = openFake(t, t.Context(), o, "u@tgt")
	want := "jump host j@" + jump.addr + " for tgt: unknown host key: 127.0.0.1 (" + jump.addr + ") offers ssh-ed25519 key " + ssh.FingerprintSHA256(jump.key)
	if !errors.Is(err, ErrUnknownHostKey) || err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("unknown jump host key: %v, want %q", err, want)
	}

	changed := &fakeServer{addr: jump.addr, key: other.key} // the jump host's address with another server's key
	o.KnownHosts = []string{knownHostsFile(t, changed, target)}
	_, err = openFake(t, t.Context(), o, "u@tgt")
	if !errors.Is(err, ErrChangedHostKey) || !strings.HasPrefix(err.Error(), "jump host j@"+jump.addr+" for tgt: host key changed: 127.0.0.1") {
		t.Errorf("changed jump host key: %v", err)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
