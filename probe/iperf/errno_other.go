//go:build !windows

package iperf

import "syscall"

// peerDropErrnos are the errors of a connection the peer refused, reset or
// closed.
var peerDropErrnos = []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE}
