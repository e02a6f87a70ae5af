package nat

import (
	"context"
	"path/filepath"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Run analyses a capture of a NAT's outside and, when inside is not "", a
// capture of its inside taken at the same time, in one streaming pass, and
// adds inputs, findings, tables and data to rep. The error is the Pass's: an
// *analyze.InputError for unreadable input.
func Run(ctx context.Context, outside, inside string, opt Options, rep *report.Report, progress analyze.ProgressFunc) error {
	inputs := []analyze.InputInfo{{Name: filepath.Base(outside), Source: outside}}
	opt.Roles = map[int]Role{0: RoleOutside}
	if inside != "" {
		inputs = append(inputs, analyze.InputInfo{Name: filepath.Base(inside), Source: inside})
		opt.Roles[1] = RoleInside
		if inputs[1].Name == inputs[0].Name {
			inputs[0].Name, inputs[1].Name = outside, inside
		}
	}
	pass := &analyze.Pass{Analyzers: []analyze.Analyzer{New(opt)}, Progress: progress}
	return pass.Run(ctx, inputs, rep)
}
