//go:build windows

package iperf

import "syscall"

// peerDropErrnos are the errors of a connection the peer refused, reset or
// aborted. Go reports Winsock's own codes on Windows.
var peerDropErrnos = []syscall.Errno{
	10061, // WSAECONNREFUSED
	10054, // WSAECONNRESET
	10053, // WSAECONNABORTED
}
