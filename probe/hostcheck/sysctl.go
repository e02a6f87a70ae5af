package hostcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// sysctlFiles are the sysctls read, as paths under /proc/sys. The
// per-interface rp_filter files are added by ReadSysctls.
var sysctlFiles = []string{
	"net/ipv4/ip_forward",
	"net/ipv6/conf/all/forwarding",
	"net/ipv4/ip_local_port_range",
	"net/ipv4/ip_local_reserved_ports",
	"net/core/rmem_max",
	"net/core/rmem_default",
	"net/core/wmem_max",
	"net/core/wmem_default",
	"net/netfilter/nf_conntrack_max",
	"net/netfilter/nf_conntrack_buckets",
	"net/netfilter/nf_conntrack_udp_timeout",
	"net/netfilter/nf_conntrack_udp_timeout_stream",
}

// SysctlName turns a path under /proc/sys into the dotted name sysctl(8)
// uses: dots inside a component (an interface eth0.100) become slashes.
func SysctlName(path string) string {
	parts := strings.Split(filepath.ToSlash(path), "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}

// ReadSysctls reads the sysctls the checks use from root (normally
// /proc/sys; network sysctls there belong to the reader's network
// namespace) and the rp_filter of every interface under
// net/ipv4/conf. Files that do not exist are left out (nf_conntrack_*
// without the conntrack module); other errors become notes.
func ReadSysctls(root string) (map[string]string, []string) {
	vals := map[string]string{}
	var notes []string
	files := append([]string(nil), sysctlFiles...)
	ents, err := os.ReadDir(filepath.Join(root, "net/ipv4/conf"))
	if err != nil {
		notes = append(notes, fmt.Sprintf("sysctl net.ipv4.conf: %v", err))
	}
	for _, e := range ents {
		files = append(files, "net/ipv4/conf/"+e.Name()+"/rp_filter")
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("sysctl %s not read: %v", SysctlName(f), err))
			continue
		}
		vals[SysctlName(f)] = strings.Join(strings.Fields(string(b)), " ")
	}
	if _, ok := vals["net.netfilter.nf_conntrack_max"]; !ok {
		notes = append(notes, "net.netfilter.nf_conntrack_* not present (conntrack module not loaded): conntrack sizing not checked")
	}
	sort.Strings(notes)
	return vals, notes
}
