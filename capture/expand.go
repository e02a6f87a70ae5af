package capture

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Expand turns command-line arguments into capture file paths. A file
// argument is kept as given (Open reports it if it is not a capture). A
// directory is listed, not recursively: its regular files (symlinks
// followed) whose first bytes are a pcap or pcapng magic, or a gzip stream
// that decompresses to one, are taken; names and extensions do not matter,
// so a .pcap that is really pcapng is found and a gzip MRT dump is not.
// A missing path, or a directory with no captures, is a *Error naming it.
// The result is sorted and without duplicates.
func Expand(args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, &Error{File: arg, Offset: -1, Err: fmt.Errorf("cannot read: %w", unwrapPath(err))}
		}
		if !st.IsDir() {
			out = append(out, filepath.Clean(arg))
			continue
		}
		entries, err := os.ReadDir(arg)
		if err != nil {
			return nil, &Error{File: arg, Offset: -1, Err: fmt.Errorf("cannot list directory: %w", unwrapPath(err))}
		}
		found := 0
		for _, e := range entries {
			p := filepath.Join(arg, e.Name())
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if isCaptureFile(p) {
				out = append(out, p)
				found++
			}
		}
		if found == 0 {
			return nil, &Error{File: arg, Offset: -1, Err: errors.New("directory holds no pcap or pcapng files (gzip-compressed or not)")}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// isCaptureFile sniffs the first bytes of the file at p.
func isCaptureFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(4)
	k := sniff(head)
	if k == kindGzip {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false
		}
		var b [4]byte
		n, _ := io.ReadFull(zr, b[:])
		k = sniff(b[:n])
	}
	return k == kindPcap || k == kindPcapng
}

// unwrapPath drops the *fs.PathError layer, whose path the *Error already
// names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
