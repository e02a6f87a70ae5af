package analyzetest

import (
	"os"
	"path/filepath"
	"testing"
)

// ModuleRoot returns the module root: the nearest directory holding go.mod at
// or above the test's working directory (the package directory under go test).
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test's working directory")
		}
		dir = parent
	}
}

// CorpusDir returns the shared capture corpus, ../shared/corpus beside the
// module root, failing the test if it is not a directory.
func CorpusDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(ModuleRoot(tb), "..", "shared", "corpus")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		tb.Fatalf("corpus directory %s not found: the shared corpus must sit beside the module root", dir)
	}
	return dir
}

// Corpus returns the path of the corpus file rel (slash-separated, relative
// to the corpus directory), failing the test if it is missing.
func Corpus(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(ModuleRoot(tb), "..", "shared", "corpus", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("corpus file missing: %v (the corpus lives in ../shared/corpus beside the module root)", err)
	}
	return p
}
