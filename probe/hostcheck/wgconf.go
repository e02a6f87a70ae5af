package hostcheck

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ConfigError is a wg-quick configuration file that cannot be read or
// understood; Line is 0 when the file itself cannot be read.
type ConfigError struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *ConfigError) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", where, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ReadConfig reads a wg-quick file; the device name is the file name
// without .conf, as wg-quick derives it.
func ReadConfig(path string) (*WGDevice, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: "cannot read WireGuard configuration", Err: err}
	}
	defer f.Close()
	return ParseConfig(path, f)
}

// maxConfigLine bounds one line of a configuration file.
const maxConfigLine = 64 * 1024

// ParseConfig parses a wg-quick configuration: [Interface] (Address,
// ListenPort, PrivateKey, MTU, Table, PostUp, ...) and [Peer] sections
// (PublicKey, AllowedIPs as comma lists over one or several lines,
// Endpoint, PersistentKeepalive). Keys are case-insensitive and # starts a
// comment. Every value keeps its line. Secret values (PrivateKey,
// PresharedKey) are checked for presence only and never stored. file
// names the source in errors and values.
func ParseConfig(file string, r io.Reader) (*WGDevice, error) {
	d := &WGDevice{Name: strings.TrimSuffix(filepath.Base(file), ".conf"), File: file}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxConfigLine)
	section := ""
	line := 0
	bad := func(format string, args ...any) error {
		return &ConfigError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") {
			if !strings.HasSuffix(text, "]") {
				return nil, bad("section header %q: missing ]", text)
			}
			switch s := strings.ToLower(strings.TrimSpace(text[1 : len(text)-1])); s {
			case "interface":
				section = s
			case "peer":
				section = s
				d.Peers = append(d.Peers, WGPeer{Line: line})
			default:
				return nil, bad("unknown section %q (want [Interface] or [Peer])", text)
			}
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, bad("%q: want Key = Value", clip(text))
		}
		key, val := strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch section {
		case "":
			return nil, bad("%s outside a section (put it under [Interface] or [Peer])", strings.TrimSpace(k))
		case "interface":
			if err := d.setInterface(key, val, line); err != nil {
				return nil, bad("%v", err)
			}
		case "peer":
			if err := d.Peers[len(d.Peers)-1].set(key, val, line); err != nil {
				return nil, bad("%v", err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ConfigError{File: file, Line: line + 1, Msg: "read", Err: err}
	}
	for _, p := range d.Peers {
		if !p.PublicKey.Set {
			return nil, &ConfigError{File: file, Line: p.Line, Msg: "[Peer] without PublicKey"}
		}
	}
	return d, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func (d *WGDevice) setInterface(key, val string, line int) error {
	switch key {
	case "listenport":
		n, err := strconv.ParseUint(val, 10, 16)
		if err != nil {
			return fmt.Errorf("ListenPort %q: want a port number 0-65535", clip(val))
		}
		d.ListenPort = Value[int]{V: int(n), Line: line, Set: true}
	case "mtu":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("MTU %q: want a number", clip(val))
		}
		d.MTU = Value[int]{V: n, Line: line, Set: true}
	case "table":
		d.Table = Value[string]{V: val, Line: line, Set: true}
	case "postup":
		d.PostUp = append(d.PostUp, Value[string]{V: val, Line: line, Set: true})
	case "privatekey", "address", "dns", "fwmark", "saveconfig", "preup", "predown", "postdown":
		// Known; PrivateKey is a secret and is never kept.
	default:
		return fmt.Errorf("unknown [Interface] key %q", clip(key))
	}
	return nil
}

func (p *WGPeer) set(key, val string, line int) error {
	switch key {
	case "publickey":
		if val == "" {
			return fmt.Errorf("empty PublicKey")
		}
		p.PublicKey = Value[string]{V: val, Line: line, Set: true}
	case "allowedips":
		for _, s := range strings.Split(val, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("AllowedIPs %q: not a prefix", clip(s))
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			p.AllowedIPs = append(p.AllowedIPs, Value[netip.Prefix]{V: pfx.Masked(), Line: line, Set: true})
		}
	case "endpoint":
		i := strings.LastIndexByte(val, ':')
		if i <= 0 || i == len(val)-1 {
			return fmt.Errorf("Endpoint %q: want HOST:PORT", clip(val))
		}
		if _, err := strconv.ParseUint(val[i+1:], 10, 16); err != nil {
			return fmt.Errorf("Endpoint %q: bad port", clip(val))
		}
		p.Endpoint = Value[string]{V: val, Line: line, Set: true}
		if ap, err := netip.ParseAddrPort(val); err == nil {
			p.EndpointAddr = ap.Addr().Unmap()
		}
	case "persistentkeepalive":
		n := 0
		if !strings.EqualFold(val, "off") {
			v, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return fmt.Errorf("PersistentKeepalive %q: want seconds or off", clip(val))
			}
			n = int(v)
		}
		p.Keepalive = Value[int]{V: n, Line: line, Set: true}
	case "presharedkey":
		// A secret: never kept.
	default:
		return fmt.Errorf("unknown [Peer] key %q", clip(key))
	}
	return nil
}
