package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// target is one SSH endpoint after ~/.ssh/config: where to connect, as
// whom, with which keys.
type target struct {
	Alias      string   // the host as the user wrote it
	HostName   string   // to connect to (HostName, or Alias)
	Port       int      // Port, or 22
	User       string   // given, User, or the local user
	Identities []string // IdentityFile entries, expanded
	KnownHosts []string // UserKnownHostsFile entries, expanded
	ProxyJump  []string // ProxyJump hops, [USER@]HOST[:PORT]
}

// Addr returns HOST:PORT for dialing and for known_hosts.
func (t target) Addr() string { return net.JoinHostPort(t.HostName, strconv.Itoa(t.Port)) }

// sshConfig is a parsed ssh_config file (nil: none).
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

// loadConfig reads an ssh_config file. A missing file is no configuration
// unless it was named explicitly.
func loadConfig(path string, explicit bool) (*sshConfig, error) {
	if path == "" {
		return &sshConfig{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return &sshConfig{}, nil
		}
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return &sshConfig{path: path, cfg: cfg}, nil
}

func (c *sshConfig) get(alias, key string) (string, error) {
	if c == nil || c.cfg == nil {
		return "", nil
	}
	v, err := c.cfg.Get(alias, key)
	if err != nil {
		return "", fmt.Errorf("ssh config %s: host %s: %s: %w", c.path, alias, key, err)
	}
	return v, nil
}

func (c *sshConfig) getAll(alias, key string) ([]string, error) {
	if c == nil || c.cfg == nil {
		return nil, nil
	}
	v, err := c.cfg.GetAll(alias, key)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: host %s: %s: %w", c.path, alias, key, err)
	}
	return v, nil
}

// resolve applies the configuration to host: values given explicitly
// (user, port != 0) win over the file, the file over the defaults.
func (c *sshConfig) resolve(host, user string, port int) (target, error) {
	t := target{Alias: host, HostName: host, User: user, Port: port}
	get := func(key string) string {
		v, err := c.get(host, key)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(v)
	}
	if _, err := c.get(host, "HostName"); err != nil {
		return t, err
	}
	if v := get("HostName"); v != "" {
		t.HostName = strings.ReplaceAll(v, "%h", host)
	}
	if t.User == "" {
		t.User = get("User")
	}
	if t.User == "" {
		t.User = localUser()
	}
	if t.Port == 0 {
		if v := get("Port"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return t, fmt.Errorf("ssh config %s: host %s: Port %q: want 1..65535", c.path, host, v)
			}
			t.Port = n
		}
	}
	if t.Port == 0 {
		t.Port = 22
	}
	ids, err := c.getAll(host, "IdentityFile")
	if err != nil {
		return t, err
	}
	for _, id := range ids {
		t.Identities = append(t.Identities, expand(id, t))
	}
	if v := get("UserKnownHostsFile"); v != "" {
		for f := range strings.FieldsSeq(v) {
			t.KnownHosts = append(t.KnownHosts, expand(f, t))
		}
	}
	if v := get("ProxyJump"); v != "" && !strings.EqualFold(v, "none") {
		for j := range strings.SplitSeq(v, ",") {
			if j = strings.TrimSpace(strings.TrimPrefix(j, "ssh://")); j != "" {
				t.ProxyJump = append(t.ProxyJump, j)
			}
		}
	}
	return t, nil
}

// parseJump splits a ProxyJump entry [USER@]HOST[:PORT] (IPv6 in brackets).
func parseJump(s string) (host, user string, port int, err error) {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	host = s
	if h, p, e := net.SplitHostPort(s); e == nil {
		host = h
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return "", "", 0, fmt.Errorf("ProxyJump %q: port %q: want 1..65535", s, p)
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("ProxyJump %q: no host", s)
	}
	return strings.Trim(host, "[]"), user, port, nil
}

// expand expands ~ and the ssh_config tokens %d (home), %u (local user),
// %h (host name), %r (remote user), %p (port) and %%.
func expand(s string, t target) string {
	home := homeDir()
	if s == "~" {
		return home
	}
	if strings.HasPrefix(s, "~/") {
		s = filepath.Join(home, s[2:])
	}
	r := strings.NewReplacer("%%", "%", "%d", home, "%u", localUser(), "%h", t.HostName, "%r", t.User, "%p", strconv.Itoa(t.Port))
	return r.Replace(s)
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "/"
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}
