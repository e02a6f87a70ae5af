package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// moduleRoot is the repository root (the directory holding go.mod). It and
// corpus keep their short names for the many tests of this package.
func moduleRoot(t testing.TB) string {
	t.Helper()
	return analyzetest.ModuleRoot(t)
}

// corpus returns the path of a file in ../shared/corpus beside the repository.
func corpus(t testing.TB, name string) string {
	t.Helper()
	return analyzetest.Corpus(t, name)
}

// relTo returns p relative to the test's working directory, so golden output
// does not depend on where the repository is checked out.
func relTo(t testing.TB, p string) string {
	wd, _ := os.Getwd()
	r, err := filepath.Rel(wd, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// vpndiag runs the command in-process and returns stdout, stderr and the exit code.
func vpndiag(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	// A fixed host name keeps reports independent of the machine.
	code := run(context.Background(), append([]string{"--host", "testhost"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

var volatileJSON = regexp.MustCompile(`(?m)^(\s*"(started|version)": )"[^"]*"`)

// normalize removes what changes between runs (start time, version).
func normalize(s string) string {
	return volatileJSON.ReplaceAllString(s, `$1"X"`)
}

// golden compares got with testdata/golden/NAME, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(moduleRoot(t), "testdata", "golden", name)
	got = normalize(got)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test ./cmd/vpndiag -update to create it)", name, err)
	}
	if string(want) != got {
		diff := diffLines(string(want), got)
		t.Errorf("%s differs from the golden file (go test ./cmd/vpndiag -update rewrites it):\n%s", name, diff)
	}
}

// diffLines shows the first differing lines, enough to see what changed.
func diffLines(want, got string) string {
	w, g := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	var b bytes.Buffer
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			b.WriteString("line ")
			b.WriteString(itoa(i + 1))
			b.WriteString(":\n- ")
			b.Write(wl)
			b.WriteString("\n+ ")
			b.Write(gl)
			b.WriteString("\n")
			if shown++; shown == 10 {
				break
			}
		}
	}
	return b.String()
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// buildBinary builds vpndiag once for tests that need a separate process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vpndiag")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
