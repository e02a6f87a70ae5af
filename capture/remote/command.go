package remote

import (
	"strconv"
	"strings"
)

// Quote quotes s as one word for a POSIX shell: single quotes around it,
// and each single quote inside closes the quoting, adds an escaped quote
// and reopens it:
//
//	it's  ->  'it'\''s'
//
// Inside single quotes nothing is special ($, `, \, ", newlines), so the
// shell passes s through byte for byte.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Tool chooses the capture program run on the remote host.
type Tool string

// Tools.
const (
	ToolAuto    Tool = "auto"    // vpndiag if it is on the remote PATH, else tcpdump
	ToolVpndiag Tool = "vpndiag" // vpndiag capture -w - (pcapng, kernel drop counts)
	ToolTcpdump Tool = "tcpdump" // tcpdump -U --immediate-mode -w - (pcap)
)

// Messages the remote script writes to stderr, recognised by the local side.
const (
	markNoTool = "vpndiag-remote: no capture tool"
	markTool   = "vpndiag-remote: using "
)

// script is the program the remote shell runs, as sh -c SCRIPT NAME ARGS.
// Every user-supplied value (interface list, filter, hop name) arrives as
// a positional parameter and is only ever expanded inside double quotes,
// so no value is parsed as shell code, and every argument is also quoted
// for the login shell that runs "sh -c".
//
// tcpdump runs with --immediate-mode: without it libpcap hands packets
// over only when a ring block fills or its timeout expires, and packets
// still in the kernel ring when the capture is stopped are lost.
//
// The capture runs in the background, its stdin from /dev/null; a watcher
// reads the session's stdin (saved as fd 3, because an asynchronous list's
// stdin is /dev/null) until EOF and then kills the capture. The SSH
// channel closing — the local side stopping the capture, or dying, even on
// SIGKILL, since the kernel closes its TCP connection — is that EOF: no
// capture is left running. The script then exits with the capture's
// status; stderr carries the capture's own messages.
const script = `PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin"
iface=$1 filter=$2 hop=$3 snap=$4 tool=$5 sudo=$6
if [ "$tool" != tcpdump ] && command -v vpndiag >/dev/null 2>&1; then
	set -- vpndiag capture -i "$iface" -w - --hop "$hop" --snaplen "$snap"
	if [ -n "$filter" ]; then set -- "$@" -f "$filter"; fi
	used=vpndiag
elif [ "$tool" != vpndiag ] && command -v tcpdump >/dev/null 2>&1; then
	set -- tcpdump -U --immediate-mode -n -w - -s "$snap" -i "$iface"
	if [ -n "$filter" ]; then set -- "$@" -- "$filter"; fi
	used=tcpdump
else
	echo "` + markNoTool + ` ($tool) on PATH $PATH" >&2
	exit 127
fi
if [ "$sudo" = 1 ]; then set -- sudo -n -- "$@"; fi
echo "` + markTool + `$used" >&2
exec 3<&0
"$@" </dev/null 3<&- &
p=$!
{ cat >/dev/null; kill "$p"; } <&3 >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$p"
rc=$?
kill "$w" 2>/dev/null
exit "$rc"
`

// Command returns the command line the remote login shell runs for a
// capture of ifaces (comma-joined) with filter, recorded as hop: exec
// /bin/sh -c and the script, every argument quoted. /bin/sh by path: the
// remote PATH may be anything.
func Command(ifaces []string, filter, hop string, snapLen int, tool Tool, sudo bool) string {
	if tool == "" {
		tool = ToolAuto
	}
	s := "0"
	if sudo {
		s = "1"
	}
	args := []string{script, "vpndiag-remote", strings.Join(ifaces, ","), filter, hop, strconv.Itoa(snapLen), string(tool), s}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return "exec /bin/sh -c " + strings.Join(q, " ")
}
