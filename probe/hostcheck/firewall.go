package hostcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ParseNFTForward extracts the base chains on the forward hook, with their
// policy and what each rule matches on the conntrack state, from the
// output of `nft -j list ruleset`.
func ParseNFTForward(data []byte) ([]ForwardChain, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft -j output: %w", err)
	}
	type chainKey struct{ family, table, name string }
	var chains []ForwardChain
	index := map[chainKey]int{}
	for i, obj := range doc.Nftables {
		if raw, ok := obj["chain"]; ok {
			var c struct {
				Family, Table, Name, Hook, Policy string
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, fmt.Errorf("parse nft -j output: object %d: %w", i, err)
			}
			if c.Hook != "forward" {
				continue
			}
			pol := c.Policy
			if pol == "" {
				pol = "accept"
			}
			index[chainKey{c.Family, c.Table, c.Name}] = len(chains)
			chains = append(chains, ForwardChain{Source: "nftables", Name: c.Family + " " + c.Table + " " + c.Name, Policy: pol})
			continue
		}
		raw, ok := obj["rule"]
		if !ok {
			continue
		}
		var r struct {
			Family, Table, Chain string
			Handle               int
			Expr                 []map[string]json.RawMessage
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("parse nft -j output: object %d: %w", i, err)
		}
		ci, ok := index[chainKey{r.Family, r.Table, r.Chain}]
		if !ok {
			continue
		}
		chains[ci].Rules = append(chains[ci].Rules, nftRule(r.Handle, r.Expr))
	}
	return chains, nil
}

// nftRule summarizes one rule's expressions.
func nftRule(handle int, exprs []map[string]json.RawMessage) FirewallRule {
	var fr FirewallRule
	var text []string
	for _, e := range exprs {
		for k, v := range e {
			switch k {
			case "match":
				var m struct {
					Op    string          `json:"op"`
					Left  json.RawMessage `json:"left"`
					Right json.RawMessage `json:"right"`
				}
				if json.Unmarshal(v, &m) != nil {
					fr.Other = true
					continue
				}
				var left struct {
					Ct *struct {
						Key string `json:"key"`
					} `json:"ct"`
				}
				_ = json.Unmarshal(m.Left, &left)
				if left.Ct == nil || left.Ct.Key != "state" {
					fr.Other = true
					text = append(text, "match "+compactJSON(m.Left)+" "+m.Op+" "+compactJSON(m.Right))
					continue
				}
				fr.CtStates = jsonStrings(m.Right)
				fr.Negated = m.Op == "!="
				op := ""
				if fr.Negated {
					op = "!= "
				}
				text = append(text, "ct state "+op+strings.Join(fr.CtStates, ","))
			case "accept", "drop", "reject":
				fr.Verdict = k
				text = append(text, k)
			case "counter", "comment", "log":
			case "xt":
				fr.Other = true
				text = append(text, "xt "+compactJSON(v))
			default:
				text = append(text, k)
			}
		}
	}
	fr.Text = fmt.Sprintf("%s (handle %d)", strings.Join(text, " "), handle)
	return fr
}

func jsonStrings(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	var set struct {
		Set []string `json:"set"`
	}
	if json.Unmarshal(raw, &set) == nil {
		return set.Set
	}
	return nil
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// ParseIPTablesSave extracts the FORWARD chain of the filter table from
// iptables-save (or ip6tables-save) output. source names the tool and
// backend, e.g. "iptables-nft".
func ParseIPTablesSave(data []byte, source string) ([]ForwardChain, error) {
	var out []ForwardChain
	var cur *ForwardChain
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
			cur = nil
		case table != "filter":
		case strings.HasPrefix(l, ":FORWARD "):
			f := strings.Fields(l)
			if len(f) < 2 {
				return nil, fmt.Errorf("%s line %d: chain header %q", source, line, l)
			}
			out = append(out, ForwardChain{Source: source, Name: "filter FORWARD", Policy: strings.ToLower(f[1])})
			cur = &out[len(out)-1]
		case strings.HasPrefix(l, "-A FORWARD ") && cur != nil:
			cur.Rules = append(cur.Rules, iptRule(strings.TrimPrefix(l, "-A FORWARD ")))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return out, nil
}

// iptRule reads the state match and the verdict of one iptables rule.
func iptRule(spec string) FirewallRule {
	fr := FirewallRule{Text: "-A FORWARD " + spec}
	f := strings.Fields(spec)
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "--ctstate", "--state":
			if i+1 < len(f) {
				fr.Negated = i > 0 && f[i-1] == "!"
				for _, s := range strings.Split(f[i+1], ",") {
					fr.CtStates = append(fr.CtStates, strings.ToLower(s))
				}
				i++
			}
		case "-j":
			if i+1 < len(f) {
				switch v := strings.ToLower(f[i+1]); v {
				case "accept", "drop", "reject":
					fr.Verdict = v
				}
				i++
			}
		case "-m":
			i++ // the match module name
		case "!":
		default:
			if strings.HasPrefix(f[i], "-") {
				fr.Other = true
			}
		}
	}
	return fr
}
