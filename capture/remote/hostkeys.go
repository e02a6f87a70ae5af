package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrUnknownHostKey is wrapped by the error for a host whose key is not in
// any known_hosts file (and AcceptNew is off).
var ErrUnknownHostKey = errors.New("unknown host key")

// ErrChangedHostKey is wrapped by the error for a host whose known_hosts
// entry holds a different key: possibly an attack, never accepted.
var ErrChangedHostKey = errors.New("host key changed")

// hostKeys verifies host keys against known_hosts files and, when asked,
// adds keys of hosts it has never seen (never a changed one).
type hostKeys struct {
	files     []string // read; the first is written by acceptNew
	acceptNew bool
	mu        sync.Mutex // serialises reading and appending
}

// callback reads the files that exist; none: every host is unknown.
func (h *hostKeys) callback() (ssh.HostKeyCallback, error) {
	var existing []string
	for _, f := range h.files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	if len(existing) == 0 {
		return func(string, net.Addr, ssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}, nil
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return cb, nil
}

// algorithms returns the host key algorithms to ask a server for: those of
// the keys known_hosts holds for addr (so a server that also has another
// key type is not mistaken for a changed key), or nil when none is known.
func (h *hostKeys) algorithms(addr string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	cb, err := h.callback()
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{}, probeKey{}); !errors.As(err, &ke) {
		return nil
	}
	var algs []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algs = append(algs, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algs = append(algs, t)
		}
	}
	return algs
}

// probeKey is a key no known_hosts line holds: looking it up lists the
// keys known for a host.
type probeKey struct{}

func (probeKey) Type() string                        { return "vpndiag-probe" }
func (probeKey) Marshal() []byte                     { return []byte("vpndiag-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// verifier returns the HostKeyCallback for one connection. alias names
// the host in messages (as the user wrote it).
func (h *hostKeys) verifier(alias string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		cb, err := h.callback()
		if err != nil {
			return err
		}
		err = cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &ke):
			return fmt.Errorf("host key of %s: %w", alias, err)
		case len(ke.Want) > 0:
			var old []string
			for _, w := range ke.Want {
				old = append(old, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
			}
			return fmt.Errorf("%w: %s (%s) offers %s key %s, but known_hosts holds %s: "+
				"this may be an attack, or the host was reinstalled; verify the new key with its administrator, "+
				"then remove the old line (ssh-keygen -R %s); --ssh-accept-new never replaces a key",
				ErrChangedHostKey, alias, hostname, key.Type(), ssh.FingerprintSHA256(key), strings.Join(old, ", "), knownhosts.Normalize(hostname))
		case !h.acceptNew:
			return fmt.Errorf("%w: %s (%s) offers %s key %s, which is not in %s; "+
				"check the fingerprint, then accept it with --ssh-accept-new (or connect once with ssh)",
				ErrUnknownHostKey, alias, hostname, key.Type(), ssh.FingerprintSHA256(key), h.describeFiles())
		}
		return h.add(hostname, key)
	}
}

func (h *hostKeys) describeFiles() string {
	if len(h.files) == 0 {
		return "known_hosts (no file given)"
	}
	return strings.Join(h.files, ", ")
}

// add appends a line for a host seen for the first time to the first
// known_hosts file, creating it (and its directory) if needed.
func (h *hostKeys) add(hostname string, key ssh.PublicKey) error {
	if len(h.files) == 0 {
		return fmt.Errorf("cannot accept the key of %s: no known_hosts file", hostname)
	}
	file := h.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("accept host key of %s: %w", hostname, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("accept host key of %s: %w", hostname, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("accept host key of %s: write %s: %w", hostname, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("accept host key of %s: write %s: %w", hostname, file, err)
	}
	return nil
}
