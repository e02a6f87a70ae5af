package capture

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
		err  string
	}{
		{"gw.pcapng", Spec{Kind: SpecFile, Path: "gw.pcapng"}, ""},
		{"file:c:odd.pcap", Spec{Kind: SpecFile, Path: "c:odd.pcap"}, ""},
		{"iface:eth0", Spec{Kind: SpecInterface, Interfaces: []string{"eth0"}}, ""},
		{"iface:eth0,wg0", Spec{Kind: SpecInterface, Interfaces: []string{"eth0", "wg0"}}, ""},
		{"ssh:root@gw1:eth0", Spec{Kind: SpecSSH, User: "root", Host: "gw1", Interfaces: []string{"eth0"}}, ""},
		{"ssh:gw1:eth0,eth1", Spec{Kind: SpecSSH, Host: "gw1", Interfaces: []string{"eth0", "eth1"}}, ""},
		{"", Spec{}, "empty source"},
		{"iface:", Spec{}, "no interface"},
		{"iface:eth0,", Spec{}, "empty interface"},
		{"ssh:gw1", Spec{}, "want ssh:"},
		{"ssh://ops@vpn1/eth0", Spec{Kind: SpecSSH, User: "ops", Host: "vpn1", Interfaces: []string{"eth0"}}, ""},
		{"ssh://gw1:2222/ens5", Spec{Kind: SpecSSH, Host: "gw1", Port: 2222, Interfaces: []string{"ens5"}}, ""},
		{"ssh://dns1/any", Spec{Kind: SpecSSH, Host: "dns1", Interfaces: []string{"any"}}, ""},
		{"ssh://root@198.18.1.1/eth0,eth1", Spec{Kind: SpecSSH, User: "root", Host: "198.18.1.1", Interfaces: []string{"eth0", "eth1"}}, ""},
		{"ssh://root@[2001:2::1]:22/eth0", Spec{Kind: SpecSSH, User: "root", Host: "2001:2::1", Port: 22, Interfaces: []string{"eth0"}}, ""},
		{"ssh://[2001:2::1]/wg0", Spec{Kind: SpecSSH, Host: "2001:2::1", Interfaces: []string{"wg0"}}, ""},
		{"ssh://a@b@gw1/eth0", Spec{Kind: SpecSSH, User: "a@b", Host: "gw1", Interfaces: []string{"eth0"}}, ""},
		// Interface names are literal: the remote side quotes them.
		{"ssh://gw1/eth0; touch /tmp/pwned", Spec{Kind: SpecSSH, Host: "gw1", Interfaces: []string{"eth0; touch /tmp/pwned"}}, ""},
		{"ssh://gw1/$(id)", Spec{Kind: SpecSSH, Host: "gw1", Interfaces: []string{"$(id)"}}, ""},
		{"ssh://gw1", Spec{}, "no /IFACE"},
		{"ssh://gw1/", Spec{}, "no interface"},
		{"ssh:///eth0", Spec{}, "no host"},
		{"ssh://@gw1/eth0", Spec{}, "empty user"},
		{"ssh://gw1:/eth0", Spec{}, "empty port"},
		{"ssh://gw1:0/eth0", Spec{}, "want 1..65535"},
		{"ssh://gw1:65536/eth0", Spec{}, "want 1..65535"},
		{"ssh://gw1:ssh/eth0", Spec{}, "want 1..65535"},
		{"ssh://2001:2::1/eth0", Spec{}, "in brackets"},
		{"ssh://[2001:2::1/eth0", Spec{}, "no closing ]"},
		{"ssh://[2001:2::1]x/eth0", Spec{}, "unexpected"},
		{"ssh://[gw1]/eth0", Spec{}, "IPv6 literals only"},
		{"ssh://[2001:2::1]:/eth0", Spec{}, "empty port"},
		{"ssh://-oProxyCommand=x/eth0", Spec{}, "starts with '-'"},
		{"ssh://gw 1/eth0", Spec{}, "contains a space"},
		{"ssh://gw1/eth0,", Spec{}, "empty interface"},
		{"ssh:gw1:eth0,,eth1", Spec{}, "empty interface"},
		{"file:", Spec{}, "no path"},
	} {
		got, err := ParseSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		tc.want.Raw = tc.in
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestOpenSpecFile opens a corpus capture through OpenSpec (plain path and
// file:) and gets the same frames as Open; ssh: is refused with a message
// saying so unless SpecOptions.OpenRemote is set, which then gets the spec.
func TestOpenSpecFile(t *testing.T) {
	p := filepath.Join(corpusDir(t), "the-tcpdump-group_tcpdump", "isakmp4500.pcap")
	for _, raw := range []string{p, "file:" + p} {
		src, err := OpenSpec(context.Background(), raw, SpecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		frames, err := readAll(t, src)
		src.Close()
		if !errors.Is(err, io.EOF) || len(frames) != 35 {
			t.Errorf("%s: %d frames, %v; want 35", raw, len(frames), err)
		}
	}
	if _, err := OpenSpec(context.Background(), "ssh:gw:eth0", SpecOptions{}); err == nil || !strings.Contains(err.Error(), "not available here") {
		t.Errorf("ssh without OpenRemote: %v", err)
	}
	var got Spec
	hook := SpecOptions{Hop: "gw", OpenRemote: func(_ context.Context, s Spec, o SpecOptions) (Source, error) {
		got = s
		return nil, errors.New("hooked " + o.Hop)
	}}
	if _, err := OpenSpec(context.Background(), "ssh://ops@gw:2222/eth0", hook); err == nil || err.Error() != "hooked gw" || got.Host != "gw" || got.Port != 2222 || got.User != "ops" {
		t.Errorf("ssh with OpenRemote: %v, spec %+v", err, got)
	}
	var ce *Error
	if _, err := OpenSpec(context.Background(), "/nonexistent.pcap", SpecOptions{}); !errors.As(err, &ce) {
		t.Errorf("missing file: %v", err)
	}
}
