package hostexec

import (
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		out     string
		wantErr string
	}{
		{"sh", []string{"-c", "echo ruleset"}, "ruleset\n", ""},
		{"sh", []string{"-c", "echo denied >&2; exit 1"}, "", "sh -c echo denied >&2; exit 1: exit status 1: denied"},
		{"vpndiag-no-such-tool", nil, "", "vpndiag-no-such-tool not installed (apt-get install vpndiag-no-such-tool)"},
	} {
		out, err := Run(context.Background(), tc.name, tc.args...)
		if string(out) != tc.out || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s %q: output %q, error %v; want %q, %q", tc.name, tc.args, out, err, tc.out, tc.wantErr)
		}
	}
	if packages["nft"] != "nftables" {
		t.Errorf("nft's package %q, want nftables", packages["nft"])
	}
}
