package nat

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// ParseNFT extracts the source-NAT statements (masquerade, snat) from the
// output of `nft -j list ruleset`. Statements it cannot read completely (an
// address from a map, say) are kept with what could be read.
func ParseNFT(data []byte) ([]Rule, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft -j output: %w", err)
	}
	var rules []Rule
	for i, obj := range doc.Nftables {
		raw, ok := obj["rule"]
		if !ok {
			continue
		}
		var r struct {
			Family string                       `json:"family"`
			Table  string                       `json:"table"`
			Chain  string                       `json:"chain"`
			Handle int                          `json:"handle"`
			Expr   []map[string]json.RawMessage `json:"expr"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("parse nft -j output: object %d: %w", i, err)
		}
		var protos []string
		var text []string
		for _, e := range r.Expr {
			if m, ok := e["match"]; ok {
				p, t := nftMatch(m)
				protos = append(protos, p...)
				if t != "" {
					text = append(text, t)
				}
				continue
			}
			for _, kind := range []string{"masquerade", "snat"} {
				st, ok := e[kind]
				if !ok {
					continue
				}
				rule, err := nftNAT(kind, st)
				if err != nil {
					return nil, fmt.Errorf("parse nft -j output: %s %s/%s handle %d: %w", r.Family, r.Table, r.Chain, r.Handle, err)
				}
				rule.Source = "nftables"
				rule.Where = fmt.Sprintf("%s %s/%s handle %d", r.Family, r.Table, r.Chain, r.Handle)
				rule.Protocols = dedup(protos)
				rule.Text = strings.TrimSpace(strings.Join(text, " ") + " " + nftText(rule))
				rules = append(rules, rule)
			}
		}
	}
	return rules, nil
}

// nftMatch returns the protocols a match restricts to and a short text.
func nftMatch(raw json.RawMessage) ([]string, string) {
	var m struct {
		Op    string          `json:"op"`
		Left  json.RawMessage `json:"left"`
		Right json.RawMessage `json:"right"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil, ""
	}
	var left struct {
		Meta *struct {
			Key string `json:"key"`
		} `json:"meta"`
		Payload *struct {
			Protocol string `json:"protocol"`
			Field    string `json:"field"`
		} `json:"payload"`
	}
	_ = json.Unmarshal(m.Left, &left)
	op := ""
	if m.Op != "" && m.Op != "==" && m.Op != "in" {
		op = m.Op + " "
	}
	right := nftValue(m.Right)
	switch {
	case left.Meta != nil:
		var protos []string
		if left.Meta.Key == "l4proto" && op == "" {
			protos = nftStrings(m.Right)
		}
		return protos, fmt.Sprintf("meta %s %s%s", left.Meta.Key, op, right)
	case left.Payload != nil:
		var protos []string
		if (left.Payload.Protocol == "tcp" || left.Payload.Protocol == "udp") && op == "" {
			protos = []string{left.Payload.Protocol}
		}
		return protos, fmt.Sprintf("%s %s %s%s", left.Payload.Protocol, left.Payload.Field, op, right)
	}
	return nil, ""
}

// nftStrings reads a string or a {"set": [...]} of strings.
func nftStrings(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var set struct {
		Set []any `json:"set"`
	}
	if json.Unmarshal(raw, &set) == nil {
		var out []string
		for _, v := range set.Set {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// nftValue renders a JSON expression value compactly, nft style.
func nftValue(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return nftAny(v)
}

func nftAny(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = nftAny(e)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if s, ok := x["set"]; ok {
			return "{ " + nftAny(s) + " }"
		}
		if r, ok := x["range"].([]any); ok && len(r) == 2 {
			return nftAny(r[0]) + "-" + nftAny(r[1])
		}
		if p, ok := x["prefix"].(map[string]any); ok {
			return fmt.Sprintf("%s/%s", nftAny(p["addr"]), nftAny(p["len"]))
		}
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// nftNAT reads a masquerade or snat statement.
func nftNAT(kind string, raw json.RawMessage) (Rule, error) {
	r := Rule{Kind: kind}
	var st map[string]json.RawMessage
	if string(raw) != "null" {
		if err := json.Unmarshal(raw, &st); err != nil {
			return r, fmt.Errorf("%s statement: %w", kind, err)
		}
	}
	if a, ok := st["addr"]; ok {
		lo, hi, err := nftAddr(a)
		if err != nil {
			return r, fmt.Errorf("%s address: %w", kind, err)
		}
		r.AddrMin, r.AddrMax = lo, hi
	}
	if p, ok := st["port"]; ok {
		lo, hi, err := nftPorts(p)
		if err != nil {
			return r, fmt.Errorf("%s port: %w", kind, err)
		}
		r.PortMin, r.PortMax = lo, hi
	}
	if f, ok := st["flags"]; ok {
		for _, flag := range nftStrings(f) {
			switch flag {
			case "random":
				r.Random = true
			case "fully-random":
				r.FullyRandom = true
			case "persistent":
				r.Persistent = true
			}
		}
	}
	return r, nil
}

// nftAddr reads "a", {"range": [a, b]} or {"prefix": {"addr": a, "len": n}}.
// Anything else (a map lookup, a variable) gives invalid addresses.
func nftAddr(raw json.RawMessage) (netip.Addr, netip.Addr, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, nil // a symbolic name: not a literal range
		}
		return a, a, nil
	}
	var x struct {
		Range  []string `json:"range"`
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
	}
	if json.Unmarshal(raw, &x) != nil {
		return netip.Addr{}, netip.Addr{}, nil
	}
	switch {
	case len(x.Range) == 2:
		lo, err1 := netip.ParseAddr(x.Range[0])
		hi, err2 := netip.ParseAddr(x.Range[1])
		if err1 != nil || err2 != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("bad address range %v", x.Range)
		}
		return lo, hi, nil
	case x.Prefix != nil:
		p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", x.Prefix.Addr, x.Prefix.Len))
		if err != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("bad address prefix: %w", err)
		}
		return p.Masked().Addr(), lastAddr(p), nil
	}
	return netip.Addr{}, netip.Addr{}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// nftPorts reads a port number or {"range": [lo, hi]}.
func nftPorts(raw json.RawMessage) (uint16, uint16, error) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		if n < 1 || n > 65535 {
			return 0, 0, fmt.Errorf("port %d out of range", n)
		}
		return uint16(n), uint16(n), nil
	}
	var x struct {
		Range []int `json:"range"`
	}
	if json.Unmarshal(raw, &x) == nil && len(x.Range) == 2 {
		lo, hi := x.Range[0], x.Range[1]
		if lo < 1 || hi > 65535 || lo > hi {
			return 0, 0, fmt.Errorf("bad port range %d-%d", lo, hi)
		}
		return uint16(lo), uint16(hi), nil
	}
	return 0, 0, nil // symbolic: not a literal range
}

// nftText renders a NAT statement as nft would.
func nftText(r Rule) string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Kind == "snat" || r.HasPorts() {
		b.WriteString(" to ")
	}
	if r.AddrMin.IsValid() {
		b.WriteString(r.AddrMin.String())
		if r.AddrMax.IsValid() && r.AddrMax != r.AddrMin {
			b.WriteString("-" + r.AddrMax.String())
		}
	}
	if r.HasPorts() {
		if r.PortMin == r.PortMax {
			fmt.Fprintf(&b, ":%d", r.PortMin)
		} else {
			fmt.Fprintf(&b, ":%d-%d", r.PortMin, r.PortMax)
		}
	}
	if f := r.Flags(); f != "" {
		b.WriteString(" " + f)
	}
	return b.String()
}

func dedup(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
