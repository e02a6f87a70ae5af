package hostcheck

import "errors"

// ErrUnsupported is returned by Gather on systems other than Linux.
var ErrUnsupported = errors.New("hostcheck reads /proc/sys and netlink and needs Linux")

// Options control Gather.
type Options struct {
	// Configs are parsed wg-quick files (ReadConfig). A configuration
	// stands in for the live device of the same name in the peer checks
	// (its values carry file:line); the live interface still gives MTU,
	// underlay and routes.
	Configs []*WGDevice
	// ProcRoot is /proc (for tests); "" means /proc.
	ProcRoot string
	// NoFirewall skips running nft and iptables-save.
	NoFirewall bool
}

func (o Options) proc() string {
	if o.ProcRoot == "" {
		return "/proc"
	}
	return o.ProcRoot
}
