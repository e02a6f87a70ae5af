// Package netns runs a function with the calling goroutine's OS thread in
// another network namespace, so the sockets it opens belong to that
// namespace (they stay there after the thread switches back).
package netns

import "errors"

// ErrUnsupported is returned where network namespaces do not exist.
var ErrUnsupported = errors.New("network namespaces are only supported on Linux")
