package nat

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseIPTablesSave extracts the MASQUERADE and SNAT rules from the output of
// `iptables-save -t nat` (or ip6tables-save; legacy or nft backend). source
// names the tool in Rule.Source ("iptables", "iptables-legacy", ...).
func ParseIPTablesSave(data []byte, source string) ([]Rule, error) {
	var rules []Rule
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	table := ""
	counts := map[string]int{}
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, ":") || s == "COMMIT":
			continue
		case strings.HasPrefix(s, "*"):
			table = s[1:]
			continue
		case !strings.HasPrefix(s, "-A "):
			continue
		}
		if table != "nat" {
			continue
		}
		f := strings.Fields(s)
		chain := f[1]
		counts[chain]++
		r, ok, err := iptablesRule(f[2:])
		if err != nil {
			return nil, fmt.Errorf("parse %s-save output: line %d: %w", source, line, err)
		}
		if !ok {
			continue
		}
		r.Source = source
		r.Where = fmt.Sprintf("%s #%d", chain, counts[chain])
		r.Text = s
		rules = append(rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s-save output: %w", source, err)
	}
	return rules, nil
}

func iptablesRule(f []string) (Rule, bool, error) {
	var r Rule
	target := ""
	neg := false
	for i := 0; i < len(f); i++ {
		arg := f[i]
		next := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch arg {
		case "!":
			neg = true
			continue
		case "-p", "--protocol":
			p := next()
			if !neg {
				r.Protocols = []string{protoByName(p)}
			}
		case "-j", "--jump":
			target = next()
		case "--to-ports":
			lo, hi, err := portSpec(next())
			if err != nil {
				return r, false, err
			}
			r.PortMin, r.PortMax = lo, hi
		case "--to-source":
			if err := toSource(&r, next()); err != nil {
				return r, false, err
			}
		case "--random":
			r.Random = true
		case "--random-fully":
			r.FullyRandom = true
		case "--persistent":
			r.Persistent = true
		}
		neg = false
	}
	switch target {
	case "MASQUERADE":
		r.Kind = "masquerade"
	case "SNAT":
		r.Kind = "snat"
	default:
		return r, false, nil
	}
	return r, true, nil
}

func protoByName(p string) string {
	switch p {
	case "6":
		return "tcp"
	case "17":
		return "udp"
	}
	return strings.ToLower(p)
}

// portSpec parses "N" or "N-M".
func portSpec(s string) (uint16, uint16, error) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		b = a
	}
	lo, err1 := strconv.ParseUint(a, 10, 16)
	hi, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || lo > hi {
		return 0, 0, fmt.Errorf("bad port range %q", s)
	}
	return uint16(lo), uint16(hi), nil
}

// toSource parses --to-source ADDR[-ADDR][:PORT[-PORT]] (IPv6 in brackets).
func toSource(r *Rule, s string) error {
	addrs, ports := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return fmt.Errorf("bad --to-source %q", s)
		}
		addrs = s[1:end]
		rest := s[end+1:]
		if strings.HasPrefix(rest, "-[") {
			end2 := strings.Index(rest, "]")
			if end2 < 0 {
				return fmt.Errorf("bad --to-source %q", s)
			}
			addrs += "-" + rest[2:end2]
			rest = rest[end2+1:]
		}
		ports = strings.TrimPrefix(rest, ":")
	} else if i := strings.LastIndex(s, ":"); i >= 0 {
		addrs, ports = s[:i], s[i+1:]
	}
	if addrs != "" {
		a, b, found := strings.Cut(addrs, "-")
		lo, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("bad --to-source %q: %w", s, err)
		}
		hi := lo
		if found {
			if hi, err = netip.ParseAddr(b); err != nil {
				return fmt.Errorf("bad --to-source %q: %w", s, err)
			}
		}
		r.AddrMin, r.AddrMax = lo, hi
	}
	if ports != "" {
		lo, hi, err := portSpec(ports)
		if err != nil {
			return fmt.Errorf("bad --to-source %q: %w", s, err)
		}
		r.PortMin, r.PortMax = lo, hi
	}
	return nil
}

// IPTablesBackend tells from iptables-save's header which backend wrote it:
// "iptables-nft" or "iptables-legacy".
func IPTablesBackend(out []byte) string {
	line, _, _ := bytes.Cut(out, []byte("\n"))
	if bytes.Contains(line, []byte("(nf_tables)")) {
		return "iptables-nft"
	}
	return "iptables-legacy"
}

// dropNFTTable removes the nftables rules whose location starts with prefix
// ("ip nat/"), which iptables-nft also reports.
func dropNFTTable(rules []Rule, prefix string) []Rule {
	out := rules[:0]
	for _, r := range rules {
		if r.Source == "nftables" && strings.HasPrefix(r.Where, prefix) {
			continue
		}
		out = append(out, r)
	}
	return out
}
