package capture

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Spec is a parsed source specification: where a hop's packets come from.
//
//	path/to/file.pcapng                   a capture file (pcap, pcapng, gzip)
//	file:path                             the same, for paths that contain ':' or look like another kind
//	iface:NAME                            live capture on a local interface
//	iface:NAME,NAME2                      live capture on several local interfaces (one source)
//	ssh://[USER@]HOST[:PORT]/IFACE[,IFACE2]  live capture on a remote host over SSH
//	ssh:[USER@]HOST:IFACE[,IFACE2]        the same, short form (no port)
//
// In the URL form HOST may be an IPv6 literal in brackets
// (ssh://root@[2001:2::1]:2222/eth0); everything after the first '/' is
// the interface list, taken literally (no percent-decoding): the remote
// side quotes it for its shell, so any byte is safe there. User and port
// left out here come from ~/.ssh/config (or the defaults) when the source
// is opened. ParseSpec does not resolve or contact the host.
type Spec struct {
	Kind       SpecKind
	Path       string   // SpecFile
	Interfaces []string // SpecInterface, SpecSSH
	User, Host string   // SpecSSH; User may be empty
	Port       int      // SpecSSH; 0 = not given
	Raw        string   // as given
}

// SpecKind is the kind of a Spec.
type SpecKind int

// Spec kinds.
const (
	SpecFile SpecKind = iota
	SpecInterface
	SpecSSH
)

// String returns "file", "iface" or "ssh".
func (k SpecKind) String() string {
	switch k {
	case SpecInterface:
		return "iface"
	case SpecSSH:
		return "ssh"
	}
	return "file"
}

// Live reports whether the spec captures (rather than reads a file).
func (s Spec) Live() bool { return s.Kind != SpecFile }

// SpecOptions are the live-capture settings that apply to every live spec
// opened with OpenSpec; files ignore them.
type SpecOptions struct {
	Hop          string // recorded as the interfaces' description
	Filter       string // tcpdump syntax
	SnapLen      int
	BufferSize   int
	Promisc      bool
	NativeFilter bool
	// OpenRemote opens SpecSSH sources (a remote capture over SSH). It is
	// a hook so that this package does not depend on the SSH transport:
	// the command sets it (package capture/remote). Nil: ssh sources are
	// refused with an error saying so.
	OpenRemote func(ctx context.Context, s Spec, opts SpecOptions) (Source, error)
}

// ParseSpec parses a source specification (see Spec). It does not touch the
// file system or the network.
func ParseSpec(raw string) (Spec, error) {
	s := Spec{Raw: raw}
	switch {
	case raw == "":
		return s, fmt.Errorf("empty source: give a capture file or iface:NAME")
	case strings.HasPrefix(raw, "iface:"):
		s.Kind = SpecInterface
		list := strings.TrimPrefix(raw, "iface:")
		if list == "" {
			return s, fmt.Errorf("source %q: no interface after iface:", raw)
		}
		for _, name := range strings.Split(list, ",") {
			if name == "" {
				return s, fmt.Errorf("source %q: empty interface name", raw)
			}
			s.Interfaces = append(s.Interfaces, name)
		}
	case strings.HasPrefix(raw, "ssh://"):
		s.Kind = SpecSSH
		if err := s.parseSSHURL(strings.TrimPrefix(raw, "ssh://")); err != nil {
			return s, fmt.Errorf("source %q: %w; want ssh://[USER@]HOST[:PORT]/IFACE", raw, err)
		}
	case strings.HasPrefix(raw, "ssh:"):
		s.Kind = SpecSSH
		rest := strings.TrimPrefix(raw, "ssh:")
		at := strings.LastIndex(rest, ":")
		if at <= 0 || at == len(rest)-1 {
			return s, fmt.Errorf("source %q: want ssh:[USER@]HOST:IFACE or ssh://[USER@]HOST[:PORT]/IFACE", raw)
		}
		host, ifaces := rest[:at], rest[at+1:]
		if u, h, ok := strings.Cut(host, "@"); ok {
			s.User, host = u, h
		}
		s.Host = host
		if err := s.checkSSH(ifaces); err != nil {
			return s, fmt.Errorf("source %q: %w", raw, err)
		}
	case strings.HasPrefix(raw, "file:"):
		s.Path = strings.TrimPrefix(raw, "file:")
		if s.Path == "" {
			return s, fmt.Errorf("source %q: no path after file:", raw)
		}
	default:
		s.Path = raw
	}
	return s, nil
}

// OpenSpec opens a source specification: a capture file with Open, or a
// live capture with OpenLive (ctx ends it: Next then returns io.EOF; opts
// apply). Errors are those of Open (a *Error) and OpenLive (ErrNoInterface,
// os.ErrPermission, *FilterError); ssh sources go to opts.OpenRemote.
func OpenSpec(ctx context.Context, raw string, opts SpecOptions) (Source, error) {
	s, err := ParseSpec(raw)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, opts)
}

// Open opens the parsed spec; see OpenSpec.
func (s Spec) Open(ctx context.Context, opts SpecOptions) (Source, error) {
	switch s.Kind {
	case SpecInterface:
		return OpenLive(ctx, LiveConfig{
			Interfaces: s.Interfaces, Hop: opts.Hop, Filter: opts.Filter, SnapLen: opts.SnapLen,
			BufferSize: opts.BufferSize, Promisc: opts.Promisc, NativeFilter: opts.NativeFilter,
		})
	case SpecSSH:
		if opts.OpenRemote == nil {
			return nil, fmt.Errorf("source %q: remote capture over SSH is not available here; capture there with vpndiag capture or tcpdump and give the file", s.Raw)
		}
		return opts.OpenRemote(ctx, s, opts)
	}
	return Open(s.Path)
}

// parseSSHURL parses what follows "ssh://": [USER@]HOST[:PORT]/IFACE[,IFACE].
func (s *Spec) parseSSHURL(rest string) error {
	auth, ifaces, ok := strings.Cut(rest, "/")
	if !ok {
		return fmt.Errorf("no /IFACE after the host")
	}
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		s.User, auth = auth[:i], auth[i+1:]
		if s.User == "" {
			return fmt.Errorf("empty user before @")
		}
	}
	host, port := auth, ""
	if strings.HasPrefix(auth, "[") {
		end := strings.Index(auth, "]")
		if end < 0 {
			return fmt.Errorf("IPv6 host %q: no closing ]", auth)
		}
		host = auth[1:end]
		switch after := auth[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
			if port == "" {
				return fmt.Errorf("empty port after ':'")
			}
		default:
			return fmt.Errorf("unexpected %q after the IPv6 host", after)
		}
		if !strings.Contains(host, ":") {
			return fmt.Errorf("[%s] is not an IPv6 address: brackets are for IPv6 literals only", host)
		}
	} else if h, p, ok := strings.Cut(auth, ":"); ok {
		host, port = h, p
		if strings.Contains(p, ":") {
			return fmt.Errorf("%q: put an IPv6 host in brackets, e.g. ssh://[2001:db8::1]/eth0", auth)
		}
		if port == "" {
			return fmt.Errorf("empty port after ':'")
		}
	}
	s.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1..65535", port)
		}
		s.Port = n
	}
	return s.checkSSH(ifaces)
}

// checkSSH checks the host and splits the interface list.
func (s *Spec) checkSSH(ifaces string) error {
	switch {
	case s.Host == "":
		return fmt.Errorf("no host")
	case strings.HasPrefix(s.Host, "-"):
		return fmt.Errorf("host %q starts with '-'", s.Host)
	case strings.ContainsFunc(s.Host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '@' || r == '/' }):
		return fmt.Errorf("host %q: contains a space, control character, '@' or '/'", s.Host)
	case ifaces == "":
		return fmt.Errorf("no interface after the host")
	}
	for name := range strings.SplitSeq(ifaces, ",") {
		if name == "" {
			return fmt.Errorf("empty interface name in %q", ifaces)
		}
		s.Interfaces = append(s.Interfaces, name)
	}
	return nil
}
