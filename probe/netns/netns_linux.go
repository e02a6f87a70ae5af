//go:build linux

package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a locked OS thread switched into the named namespace (a
// name under /var/run/netns, as `ip netns add` creates, or a path), then
// switches back. Sockets fn creates keep the namespace. If switching back
// fails, the thread is left locked so the runtime discards it.
func Do(name string, fn func() error) error {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join("/var/run/netns", name)
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", name, err)
	}
	defer target.Close()

	errCh := make(chan error, 1)
	// A fresh goroutine: if restoring fails its thread dies with it and
	// never runs other goroutines in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errCh <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errCh <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine.
			errCh <- fmt.Errorf("leave network namespace %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errCh <- ferr
	}()
	return <-errCh
}
