//go:build !linux

package netns

// Do is not supported outside Linux.
func Do(name string, fn func() error) error { return ErrUnsupported }
