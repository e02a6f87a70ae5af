package lab

import (
	"fmt"
	"os"
	"testing"
)

// TestMain removes namespaces left by killed lab test runs before running
// the tests, and the labtool build directory after.
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(childEnv) == "" {
		if removed, err := Sweep(); err != nil {
			fmt.Fprintf(os.Stderr, "lab: sweep: %v\n", err)
		} else if len(removed) > 0 {
			fmt.Fprintf(os.Stderr, "lab: swept leftover namespaces %v\n", removed)
		}
	}
	code := m.Run()
	if toolPath != "" {
		os.RemoveAll(filepathDir(toolPath))
	}
	os.Exit(code)
}
