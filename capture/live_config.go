package capture

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// LiveConfig configures a live capture (OpenLive).
type LiveConfig struct {
	// Interfaces to capture on, at least one; each gets its own socket and
	// is one interface (Frame.Iface, pcapng interface ID) of the source, in
	// this order.
	Interfaces []string
	// Hop names the capture point; it becomes every interface's
	// Description (pcapng if_description).
	Hop string
	// Filter is a tcpdump-syntax filter applied in the kernel ("" = all).
	Filter string
	// NativeFilter compiles Filter with the native compiler even when
	// tcpdump is installed.
	NativeFilter bool
	// SnapLen is the most bytes kept per frame (0: DefaultSnapLen).
	SnapLen int
	// BufferSize is the kernel ring size per interface in bytes
	// (0: DefaultBufferSize).
	BufferSize int
	// Promisc puts the interfaces into promiscuous mode while capturing.
	Promisc bool
}

// DefaultBufferSize is the default kernel ring size per interface.
const DefaultBufferSize = 32 << 20

// liveDrainWait bounds how long Next keeps returning frames the kernel still
// holds after the context is done (the ring hands frames over in blocks,
// retired at most blockTimeout after their first frame).
const (
	blockTimeout  = 8 * time.Millisecond
	liveDrainWait = 4*blockTimeout + 20*time.Millisecond
)

// ErrNoInterface is wrapped by OpenLive's error for an interface that does
// not exist (in the calling thread's network namespace).
var ErrNoInterface = errors.New("no such network interface")

// ErrLiveUnsupported is returned by OpenLive where live capture is not
// implemented (every system but Linux).
var ErrLiveUnsupported = errors.New("live capture is only supported on Linux (AF_PACKET)")

// permissionError explains a capture the process may not do. err is EPERM
// or EACCES, so the result matches os.ErrPermission with errors.Is.
func permissionError(iface string, err error) error {
	exe, xerr := os.Executable()
	if xerr != nil {
		exe = "vpndiag"
	}
	return fmt.Errorf("capture on %s: %w: capturing needs the CAP_NET_RAW capability "+
		"(run it with sudo, or grant the binary the capability once: sudo setcap cap_net_raw,cap_net_admin+ep %s)",
		iface, err, exe)
}
