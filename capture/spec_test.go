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
// saying so.
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
	if _, err := OpenSpec(context.Background(), "ssh:gw:eth0", SpecOptions{}); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("ssh: %v", err)
	}
	var ce *Error
	if _, err := OpenSpec(context.Background(), "/nonexistent.pcap", SpecOptions{}); !errors.As(err, &ce) {
		t.Errorf("missing file: %v", err)
	}
}
