package capture

import (
	"context"
	"fmt"
	"strings"
)

// Spec is a parsed source specification: where a hop's packets come from.
//
//	path/to/file.pcapng        a capture file (pcap, pcapng, gzip)
//	file:path                  the same, for paths that contain ':' or look like another kind
//	iface:NAME                 live capture on a local interface
//	iface:NAME,NAME2           live capture on several local interfaces (one source)
//
// Remote sources are a later kind ("ssh:user@host:iface" or
// "ssh:user@host:iface,iface2"): ParseSpec recognises the prefix and
// reports it as not supported yet, so adding it means filling in
// Kind SpecSSH in ParseSpec and OpenSpec.
type Spec struct {
	Kind       SpecKind
	Path       string   // SpecFile
	Interfaces []string // SpecInterface, SpecSSH
	User, Host string   // SpecSSH
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
	case strings.HasPrefix(raw, "ssh:"):
		s.Kind = SpecSSH
		rest := strings.TrimPrefix(raw, "ssh:")
		at := strings.LastIndex(rest, ":")
		if at <= 0 || at == len(rest)-1 {
			return s, fmt.Errorf("source %q: want ssh:[USER@]HOST:IFACE", raw)
		}
		host, ifaces := rest[:at], rest[at+1:]
		if u, h, ok := strings.Cut(host, "@"); ok {
			s.User, host = u, h
		}
		s.Host = host
		s.Interfaces = strings.Split(ifaces, ",")
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
// os.ErrPermission, *FilterError); ssh: sources are not supported yet.
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
		return nil, fmt.Errorf("source %q: remote capture over SSH is not supported yet; capture there with vpndiag capture or tcpdump and give the file", s.Raw)
	}
	return Open(s.Path)
}
