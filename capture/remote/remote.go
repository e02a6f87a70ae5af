// Package remote captures on remote hosts over SSH: it logs in the way an
// engineer would (SSH agent and keys from ~/.ssh, ~/.ssh/config with User,
// Port, HostName, IdentityFile, ProxyJump and UserKnownHostsFile, host keys
// checked against known_hosts), runs vpndiag capture or tcpdump there with
// every argument quoted for the remote shell, and streams the capture back
// as a capture.Source. The remote capture stops when the source's context
// ends, and also when the local process dies: the remote side watches the
// SSH channel and kills the capture when it closes.
//
// capture.SpecOptions.OpenRemote is the hook: set it to an Opener's Open.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/vpndiag/vpndiag/capture"
)

// Options configure remote captures.
type Options struct {
	// ConfigFile is the ssh_config file; "" means ~/.ssh/config (which
	// may be missing).
	ConfigFile string
	// KnownHosts are the known_hosts files; nil means ~/.ssh/known_hosts
	// and the UserKnownHostsFile of the host's configuration. The first
	// one is where AcceptNew adds keys.
	KnownHosts []string
	// AcceptNew adds the key of a host never seen before to known_hosts
	// (OpenSSH's StrictHostKeyChecking=accept-new). A changed key is
	// always an error.
	AcceptNew bool
	// Identities are private key files tried (after the SSH agent) before
	// the host's IdentityFile entries and ~/.ssh/id_ed25519, id_ecdsa,
	// id_rsa.
	Identities []string
	// NoAgent skips the SSH agent (SSH_AUTH_SOCK).
	NoAgent bool
	// Sudo runs the capture with sudo -n (never prompting: a sudo that
	// wants a password fails at once).
	Sudo bool
	// Tool is the remote capture program (default ToolAuto).
	Tool Tool
	// ConnectTimeout bounds connecting, logging in and starting the
	// capture, per host (default 15s).
	ConnectTimeout time.Duration
	// StopTimeout bounds how long a stopped capture may take to flush and
	// exit before the connection is closed (default 10s).
	StopTimeout time.Duration
	// KeepaliveInterval is how often a running capture's connection is
	// checked: after each interval in which nothing came from the host, a
	// keepalive@openssh.com request (which every server answers) is sent,
	// like OpenSSH's ServerAliveInterval. 0 means DefaultKeepaliveInterval;
	// negative turns keepalives off (a silently dead path then goes
	// unnoticed until the capture is stopped).
	KeepaliveInterval time.Duration
	// KeepaliveCount is how many intervals may pass with nothing at all
	// from the host (no capture data, no keepalive reply) before the
	// connection is given up, like ServerAliveCountMax: the capture then
	// ends with an error wrapping ErrConnectionLost, keeping what it
	// streamed until then. 0 means DefaultKeepaliveCount.
	KeepaliveCount int
}

// Keepalive defaults: a path that died silently (no RST, no FIN: a
// firewall or route change, a host frozen or powered off) ends its hop
// after 15 s without a byte from the host.
const (
	DefaultKeepaliveInterval = 5 * time.Second
	DefaultKeepaliveCount    = 3
)

// ErrConnectionLost is wrapped by the error that ends a capture whose host
// stopped answering keepalives.
var ErrConnectionLost = errors.New("lost the SSH connection")

// HopInfo describes an opened remote hop, for the report.
type HopInfo struct {
	Hop   string        // hop name
	Host  string        // as given in the source
	Addr  string        // HOST:PORT connected to (after ~/.ssh/config)
	User  string        // remote user
	Jumps []string      // ProxyJump hosts, in order
	Tool  string        // "tcpdump" or "vpndiag"
	RTT   time.Duration // SSH round trip (shortest of a few keepalives)
}

// Opener opens remote captures; it is safe for concurrent use.
type Opener struct {
	opts Options
	cfg  *sshConfig
	mu   sync.Mutex
	info map[string]HopInfo
	keys map[string]*hostKeys // by known_hosts file list
}

// NewOpener reads the SSH configuration (not the keys: those are read per
// connection) and returns an Opener.
func NewOpener(o Options) (*Opener, error) {
	if o.Tool == "" {
		o.Tool = ToolAuto
	}
	switch o.Tool {
	case ToolAuto, ToolTcpdump, ToolVpndiag:
	default:
		return nil, fmt.Errorf("remote capture tool %q: want auto, vpndiag or tcpdump", o.Tool)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 15 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if o.KeepaliveCount < 0 {
		return nil, fmt.Errorf("remote capture keepalive count %d: must not be negative", o.KeepaliveCount)
	}
	if o.KeepaliveCount == 0 {
		o.KeepaliveCount = DefaultKeepaliveCount
	}
	path, explicit := o.ConfigFile, true
	if path == "" {
		path, explicit = filepath.Join(homeDir(), ".ssh", "config"), false
	}
	cfg, err := loadConfig(path, explicit)
	if err != nil {
		return nil, err
	}
	return &Opener{opts: o, cfg: cfg, info: map[string]HopInfo{}, keys: map[string]*hostKeys{}}, nil
}

// Info returns what Open learned about a hop (its RTT, the tool used).
func (op *Opener) Info(hop string) (HopInfo, bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	i, ok := op.info[hop]
	return i, ok
}

func (op *Opener) hostKeys(t target) *hostKeys {
	files := op.opts.KnownHosts
	if files == nil {
		files = append([]string{filepath.Join(homeDir(), ".ssh", "known_hosts")}, t.KnownHosts...)
	}
	k := strings.Join(files, "\x00")
	op.mu.Lock()
	defer op.mu.Unlock()
	h := op.keys[k]
	if h == nil {
		h = &hostKeys{files: files, acceptNew: op.opts.AcceptNew}
		op.keys[k] = h
	}
	return h
}

// auth returns the public-key authentication: agent keys, then the key
// files that exist and are not passphrase-protected. It also describes
// what it offers, for the error when the server refuses them all.
func (op *Opener) auth(t target) (ssh.AuthMethod, string, func()) {
	var signers []ssh.Signer
	var what []string
	closeAgent := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !op.opts.NoAgent {
		if c, err := net.Dial("unix", sock); err == nil {
			if s, err := agent.NewClient(c).Signers(); err == nil && len(s) > 0 {
				signers = append(signers, s...)
				what = append(what, fmt.Sprintf("%d agent keys", len(s)))
			}
			closeAgent = func() { c.Close() }
		}
	}
	files := slices.Clone(op.opts.Identities)
	files = append(files, t.Identities...)
	home := homeDir()
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		files = append(files, filepath.Join(home, ".ssh", n))
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		var pm *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pm):
			what = append(what, f+" (skipped: passphrase-protected; load it into ssh-agent)")
			continue
		case err != nil:
			what = append(what, f+" (skipped: "+err.Error()+")")
			continue
		}
		signers = append(signers, s)
		what = append(what, f)
	}
	desc := "no keys (no SSH agent, no key files)"
	if len(what) > 0 {
		desc = strings.Join(what, ", ")
	}
	return ssh.PublicKeys(signers...), desc, closeAgent
}

// connect logs in to t (through its ProxyJump hosts) and returns the
// client, a function closing it and every jump connection, and t's
// connection, which records when the host last sent anything. An error at
// a jump host names it as such.
func (op *Opener) connect(ctx context.Context, t target) (*ssh.Client, func(), *aliveConn, error) {
	c, closeAll, alive, i, err := op.dialChain(ctx, t)
	if err != nil && i < len(t.ProxyJump) {
		err = fmt.Errorf("jump host %s for %s: %w", t.ProxyJump[i], t.Alias, err)
	}
	return c, closeAll, alive, err
}

// dialChain logs in to each host of t's chain (its ProxyJump hosts, then
// t) through the one before; on error it also returns the index of the
// host that failed.
func (op *Opener) dialChain(ctx context.Context, t target) (*ssh.Client, func(), *aliveConn, int, error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	chain := make([]target, 0, len(t.ProxyJump)+1)
	for _, j := range t.ProxyJump {
		host, user, port, err := parseJump(j)
		if err != nil {
			return nil, nil, nil, len(chain), err
		}
		jt, err := op.cfg.resolve(host, user, port)
		if err != nil {
			return nil, nil, nil, len(chain), err
		}
		chain = append(chain, jt)
	}
	chain = append(chain, t)
	var client *ssh.Client
	var alive *aliveConn
	for i, h := range chain {
		var conn net.Conn
		var err error
		if client == nil {
			d := net.Dialer{Timeout: op.opts.ConnectTimeout}
			conn, err = d.DialContext(ctx, "tcp", h.Addr())
		} else {
			conn, err = client.DialContext(ctx, "tcp", h.Addr())
		}
		if err != nil {
			closeAll()
			via := ""
			if i > 0 {
				via = " through jump host " + chain[i-1].Alias
			}
			return nil, nil, nil, i, fmt.Errorf("%s (%s): cannot connect%s: %w", h.Alias, h.Addr(), via, unwrapOp(err))
		}
		alive = &aliveConn{Conn: conn}
		alive.touch()
		conn = alive
		am, desc, closeAgent := op.auth(h)
		hk := op.hostKeys(h)
		cc := &ssh.ClientConfig{User: h.User, Auth: []ssh.AuthMethod{am}, HostKeyCallback: hk.verifier(h.Alias),
			HostKeyAlgorithms: hk.algorithms(h.Addr()), Timeout: op.opts.ConnectTimeout}
		_ = conn.SetDeadline(time.Now().Add(op.opts.ConnectTimeout))
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		c, chans, reqs, err := ssh.NewClientConn(conn, h.Addr(), cc)
		stop()
		closeAgent()
		if err != nil {
			conn.Close()
			closeAll()
			switch {
			case errors.Is(err, ErrUnknownHostKey), errors.Is(err, ErrChangedHostKey):
				return nil, nil, nil, i, unwrapHandshake(err)
			case strings.Contains(err.Error(), "unable to authenticate"):
				return nil, nil, nil, i, fmt.Errorf("%s (%s): authentication refused for user %s: tried %s", h.Alias, h.Addr(), h.User, desc)
			case ctx.Err() != nil:
				return nil, nil, nil, i, fmt.Errorf("%s (%s): %w", h.Alias, h.Addr(), ctx.Err())
			}
			return nil, nil, nil, i, fmt.Errorf("%s (%s): SSH handshake: %w", h.Alias, h.Addr(), err)
		}
		_ = conn.SetDeadline(time.Time{})
		client = ssh.NewClient(c, chans, reqs)
		cl := client
		closers = append(closers, func() { cl.Close() })
	}
	return client, closeAll, alive, 0, nil
}

// aliveConn is a connection that records when data last arrived: any
// byte from the host (capture data, a keepalive reply) shows the path is
// alive.
type aliveConn struct {
	net.Conn
	last atomic.Int64 // time.Now().UnixNano() of the last read with data
}

func (c *aliveConn) touch() { c.last.Store(time.Now().UnixNano()) }

// silence returns how long nothing has arrived.
func (c *aliveConn) silence() time.Duration {
	return time.Duration(time.Now().UnixNano() - c.last.Load())
}

// Read reads from the connection, noting when data arrives.
func (c *aliveConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// unwrapHandshake drops x/crypto's "ssh: handshake failed: " prefix from
// our own host key errors, which say everything already.
func unwrapHandshake(err error) error {
	for _, e := range []error{ErrUnknownHostKey, ErrChangedHostKey} {
		if errors.Is(err, e) {
			msg := err.Error()
			if i := strings.Index(msg, e.Error()); i > 0 {
				return &hostKeyError{msg: msg[i:], err: e}
			}
		}
	}
	return err
}

type hostKeyError struct {
	msg string
	err error
}

func (e *hostKeyError) Error() string { return e.msg }
func (e *hostKeyError) Unwrap() error { return e.err }

// unwrapOp drops net.OpError's repetition of the address.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// rtt times a few SSH keepalive requests (answered by the server, even
// when it does not know the request) and returns the shortest, or -1 when
// none was answered within limit (a path that died right after the
// capture started: the keepalives of the running capture deal with it).
func rtt(c *ssh.Client, limit time.Duration) time.Duration {
	done := make(chan time.Duration, 1)
	go func() {
		best := time.Duration(-1)
		for range 3 {
			start := time.Now()
			if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
				break
			}
			if d := time.Since(start); best < 0 || d < best {
				best = d
			}
		}
		done <- best
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(limit):
		return -1
	}
}

// Open starts a capture on the remote host of s (a capture.SpecSSH spec)
// and returns it as a Source once the capture has started (its file header
// has arrived), so that capture is on when Open returns. ctx ends the
// capture: Next then returns io.EOF after the remote side has flushed.
// opts.Hop, Filter and SnapLen apply.
func (op *Opener) Open(ctx context.Context, s capture.Spec, opts capture.SpecOptions) (capture.Source, error) {
	if s.Kind != capture.SpecSSH {
		return nil, fmt.Errorf("remote: %s is not an ssh source", s.Raw)
	}
	for _, v := range append([]string{opts.Filter, opts.Hop}, s.Interfaces...) {
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%s: a NUL byte cannot be passed to a remote command", s.Raw)
		}
	}
	tool := op.opts.Tool
	if len(s.Interfaces) > 1 {
		if tool == ToolTcpdump {
			return nil, fmt.Errorf("%s: tcpdump captures one interface: give each interface its own source (or use vpndiag on the remote host)", s.Raw)
		}
		tool = ToolVpndiag
	}
	t, err := op.cfg.resolve(s.Host, s.User, s.Port)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, op.opts.ConnectTimeout)
	defer cancel()
	client, closeAll, alive, err := op.connect(octx, t)
	if err != nil {
		return nil, err
	}
	snap := opts.SnapLen
	if snap <= 0 {
		snap = capture.DefaultSnapLen
	}
	src, err := start(octx, ctx, client, closeAll, t, s, opts, Command(s.Interfaces, opts.Filter, opts.Hop, snap, tool, op.opts.Sudo), op.opts.StopTimeout)
	if err != nil {
		closeAll()
		return nil, err
	}
	info := HopInfo{Hop: opts.Hop, Host: s.Host, Addr: t.Addr(), User: t.User, Jumps: t.ProxyJump, Tool: src.tool, RTT: rtt(client, op.opts.ConnectTimeout)}
	if op.opts.KeepaliveInterval > 0 {
		go src.keepalive(client, alive, t.Addr(), op.opts.KeepaliveInterval, op.opts.KeepaliveCount)
	}
	op.mu.Lock()
	op.info[opts.Hop] = info
	op.mu.Unlock()
	return src, nil
}

// source is a remote capture streamed over an SSH session.
type source struct {
	capture.Source // the stream's reader
	name           string
	host           string
	tool           string
	ifaces         []string
	hop, filter    string
	sess           *ssh.Session
	stdin          io.WriteCloser
	stderr         *tailBuffer
	closeAll       func()
	stopTimeout    time.Duration

	mu        sync.Mutex
	stopping  bool
	lost      error         // ErrConnectionLost: the keepalives went unanswered
	closed    chan struct{} // closed by Close: ends the keepalives
	closeOnce sync.Once
	stopOnce  sync.Once
	exited    chan struct{} // closed when the session's exit status is in
	exitErr   error
	done      bool
	stats     *capture.Interface // from tcpdump's closing counts
	cancel    func() bool
}

// start runs the capture command on client and waits (within octx) for
// the capture's file header.
func start(octx, ctx context.Context, client *ssh.Client, closeAll func(), t target, s capture.Spec, opts capture.SpecOptions, cmd string, stopTimeout time.Duration) (*source, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: open SSH session: %w", t.Alias, err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Alias, err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Alias, err)
	}
	src := &source{name: s.Raw, host: t.Alias, ifaces: s.Interfaces, hop: opts.Hop, filter: opts.Filter,
		sess: sess, stdin: stdin, stderr: &tailBuffer{max: 64 << 10}, closeAll: closeAll,
		stopTimeout: stopTimeout, exited: make(chan struct{}), closed: make(chan struct{})}
	sess.Stderr = src.stderr
	if err := sess.Start(cmd); err != nil {
		return nil, fmt.Errorf("%s: start the remote capture: %w", t.Alias, err)
	}
	go func() {
		src.exitErr = sess.Wait()
		close(src.exited)
	}()
	type opened struct {
		r   capture.Source
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		r, err := capture.NewReader(s.Raw, stdout, 0)
		ch <- opened{r, err}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-octx.Done():
		closeAll() // unblocks the reader
		<-ch
		return nil, fmt.Errorf("%s: the remote capture did not start: %w", t.Alias, octx.Err())
	}
	if o.err != nil {
		// The capture ended before writing a header: its stderr says why.
		select {
		case <-src.exited:
		case <-time.After(5 * time.Second):
		}
		return nil, src.startError(o.err)
	}
	src.Source = o.r
	src.tool = src.usedTool()
	src.cancel = context.AfterFunc(ctx, src.stop)
	return src, nil
}

var (
	reNoDevice = regexp.MustCompile(`(?i)no such device|doesn't exist|does not exist|no such network interface|unknown interface`)
	rePerm     = regexp.MustCompile(`(?i)permission|not permitted|operation not permitted|cap_net_raw`)
	reSudo     = regexp.MustCompile(`(?im)^sudo: .*`)
)

// startError explains a capture that ended before it started.
func (s *source) startError(readErr error) error {
	msg := s.stderr.String()
	lines := strings.TrimSpace(removeMarks(msg))
	code := -1
	var ee *ssh.ExitError
	if errors.As(s.exitErr, &ee) {
		code = ee.ExitStatus()
	}
	iface := strings.Join(s.ifaces, ",")
	switch {
	case strings.Contains(msg, markNoTool):
		return fmt.Errorf("tcpdump not found on %s (nor vpndiag): install tcpdump there (e.g. apt-get install tcpdump), or put vpndiag on its PATH", s.host)
	case reSudo.MatchString(msg):
		return fmt.Errorf("sudo on %s failed (%s): allow the capture without a password (NOPASSWD in sudoers) or log in as root",
			s.host, strings.TrimSpace(reSudo.FindString(msg)))
	case reNoDevice.MatchString(msg):
		return fmt.Errorf("interface %q does not exist on %s (%s): see ip link there", iface, s.host, oneLine(lines))
	case rePerm.MatchString(msg):
		return fmt.Errorf("permission denied capturing on %s of %s (%s): log in as root, grant tcpdump CAP_NET_RAW, or use --ssh-sudo", iface, s.host, oneLine(lines))
	case lines != "":
		return fmt.Errorf("the remote capture on %s failed (exit %d): %s", s.host, code, oneLine(lines))
	}
	return fmt.Errorf("the remote capture on %s ended before it started (exit %d): %v", s.host, code, readErr)
}

func removeMarks(s string) string {
	var keep []string
	for l := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(l, "vpndiag-remote: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

func (s *source) usedTool() string {
	msg := s.stderr.String()
	if i := strings.Index(msg, markTool); i >= 0 {
		t, _, _ := strings.Cut(msg[i+len(markTool):], "\n")
		return strings.TrimSpace(t)
	}
	return ""
}

// stop asks the remote side to end the capture: closing stdin is EOF for
// the remote watcher, which kills the capture; it flushes and exits, and
// the stream ends. If that takes longer than stopTimeout the connection is
// closed.
func (s *source) stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.stdin.Close()
		go func() {
			select {
			case <-s.exited:
			case <-time.After(s.stopTimeout):
				s.closeAll()
			}
		}()
	})
}

// Name returns the source as given (ssh://...).
func (s *source) Name() string { return s.name }

// Format returns "live".
func (s *source) Format() string { return "live" }

// Next reads the next frame. The stream ending after stop is io.EOF; the
// stream ending otherwise (the connection lost, the capture killed on the
// remote host) is an error saying so, with the remote stderr.
func (s *source) Next(f *capture.Frame) error {
	err := s.Source.Next(f)
	if err == nil {
		return nil
	}
	if !s.done {
		s.done = true
		select {
		case <-s.exited:
		case <-time.After(s.stopTimeout):
		}
		s.parseStats()
	}
	s.mu.Lock()
	stopping, lost := s.stopping, s.lost
	s.mu.Unlock()
	if lost != nil {
		return lost
	}
	var ce *capture.Error
	if stopping && (errors.Is(err, io.EOF) || errors.As(err, &ce)) {
		return io.EOF
	}
	if errors.Is(err, io.EOF) {
		why := oneLine(removeMarks(s.stderr.String()))
		if why == "" && s.exitErr != nil {
			why = s.exitErr.Error()
		}
		if why == "" {
			why = "the capture ended"
		}
		return fmt.Errorf("remote capture on %s ended before it was stopped: %s", s.host, why)
	}
	return err
}

var reStat = regexp.MustCompile(`(?m)^(\d+) packets? (received by filter|dropped by kernel)`)

// parseStats reads tcpdump's closing counts ("N packets received by
// filter", "N packets dropped by kernel").
func (s *source) parseStats() {
	if s.tool != string(ToolTcpdump) {
		return
	}
	var it capture.Interface
	n := 0
	for _, m := range reStat.FindAllStringSubmatch(s.stderr.String(), -1) {
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m[2], "received") {
			it.Received = v
		} else {
			it.Dropped = v
		}
		n++
	}
	if n == 2 {
		it.HasStats = true
		s.stats = &it
	}
}

// Interfaces returns the stream's interfaces. A tcpdump stream (pcap)
// carries no names: the interface gets its name, the hop name as its
// description and the filter here, and tcpdump's counts at the end.
func (s *source) Interfaces() []capture.Interface {
	its := s.Source.Interfaces()
	if s.tool != string(ToolTcpdump) {
		return its
	}
	for i := range its {
		its[i].Name = strings.Join(s.ifaces, ",")
		its[i].Description = s.hop
		its[i].Filter = s.filter
		if s.stats != nil {
			its[i].HasStats, its[i].Received, its[i].Dropped = true, s.stats.Received, s.stats.Dropped
		}
	}
	return its
}

// Close stops the capture (if still running), waits for it within the
// stop timeout and closes the connection.
func (s *source) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.closeOnce.Do(func() { close(s.closed) })
	s.stop()
	select {
	case <-s.exited:
	case <-time.After(s.stopTimeout):
	}
	err := s.Source.Close()
	s.closeAll()
	return err
}

// keepalive watches a running capture's connection until the capture
// exits or the source is closed: after every interval in which nothing
// came from the host it sends a keepalive request (one at a time: a
// request to a dead host never returns), and after count intervals of
// silence it gives the connection up: it records ErrConnectionLost and
// closes the connection, so that Next returns that error at once instead
// of waiting for a stream that will never come. What was streamed until
// then stays with the caller. The host's sshd ends the remote capture
// when its own ClientAliveInterval notices, or when the path comes back
// and the connection's close reaches it.
func (s *source) keepalive(client *ssh.Client, conn *aliveConn, addr string, interval time.Duration, count int) {
	tick := time.NewTicker(max(interval/4, 10*time.Millisecond))
	defer tick.Stop()
	var pending atomic.Bool
	var lastSent time.Time
	limit := interval * time.Duration(count)
	for {
		select {
		case <-s.exited:
			return
		case <-s.closed:
			return
		case <-tick.C:
		}
		quiet := conn.silence()
		if quiet >= limit {
			err := fmt.Errorf("%w to %s (%s): no reply to keepalives for %s (one sent every %s of silence)",
				ErrConnectionLost, s.host, addr, limit, interval)
			s.mu.Lock()
			s.lost = err
			s.mu.Unlock()
			s.closeAll()
			return
		}
		if quiet >= interval && time.Since(lastSent) >= interval && pending.CompareAndSwap(false, true) {
			lastSent = time.Now()
			go func() {
				defer pending.Store(false)
				_, _, _ = client.SendRequest("keepalive@openssh.com", true, nil)
			}()
		}
	}
}

// tailBuffer keeps the first max bytes written (the messages that matter
// come first: why the capture failed) and counts the rest. It also keeps
// the last max bytes, where tcpdump prints its closing counts.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	head bytes.Buffer
	tail []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.head.Len(); room > 0 {
		b.head.Write(p[:min(room, len(p))])
	}
	b.tail = append(b.tail, p...)
	if len(b.tail) > b.max {
		b.tail = b.tail[len(b.tail)-b.max:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.head.Len() < b.max {
		return b.head.String()
	}
	return b.head.String() + "\n...\n" + string(b.tail)
}
