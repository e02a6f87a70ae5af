package decode

import "strconv"

// Supported reports whether Decode understands the link type.
func Supported(l LinkType) bool {
	switch l {
	case LinkNull, LinkEthernet, LinkPPP, LinkRaw12, LinkRaw14, LinkPPPHDLC, LinkRaw,
		LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkSLL2:
		return true
	}
	return false
}

// String returns the libpcap/tshark name of the link type ("EN10MB",
// "LINUX_SLL", ...), or "LINKTYPE_n" for one the decoder does not know.
func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "NULL"
	case LinkEthernet:
		return "EN10MB"
	case LinkPPP:
		return "PPP"
	case LinkRaw12, LinkRaw14, LinkRaw:
		return "RAW"
	case LinkPPPHDLC:
		return "PPP_HDLC"
	case LinkLoop:
		return "LOOP"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkSLL2:
		return "LINUX_SLL2"
	}
	return "LINKTYPE_" + strconv.Itoa(int(l))
}
