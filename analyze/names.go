package analyze

import (
	"fmt"
	"net/netip"
	"strconv"
)

var protoNames = map[uint8]string{1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre",
	50: "esp", 51: "ah", 58: "icmpv6", 89: "ospf", 103: "pim", 112: "vrrp", 115: "l2tp", 132: "sctp"}

// ProtoName returns the usual lower-case name of an IP protocol number.
func ProtoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return "ip-proto-" + strconv.Itoa(int(p))
}

// IKEExchangeName names an IKE exchange type.
func IKEExchangeName(version, exchange uint8) string {
	if version == 2 {
		switch exchange {
		case 34:
			return "IKE_SA_INIT"
		case 35:
			return "IKE_AUTH"
		case 36:
			return "CREATE_CHILD_SA"
		case 37:
			return "INFORMATIONAL"
		}
	} else {
		switch exchange {
		case 2:
			return "Main Mode"
		case 4:
			return "Aggressive Mode"
		case 5:
			return "Informational"
		case 32:
			return "Quick Mode"
		}
	}
	return fmt.Sprintf("exchange %d", exchange)
}

// endpoint formats addr:port ([v6]:port); ports are omitted for protocols
// without them.
func endpoint(a netip.Addr, port uint16, proto uint8) string {
	switch proto {
	case 6, 17, 132:
		return netip.AddrPortFrom(a, port).String()
	}
	return a.String()
}

func tunnelIDText(kind string, id uint32) string {
	switch kind {
	case "vxlan", "geneve":
		return fmt.Sprintf("VNI %d", id)
	case "esp", "esp-in-udp":
		return fmt.Sprintf("SPI 0x%08x", id)
	case "gre":
		return fmt.Sprintf("key %d", id)
	case "l2tpv3":
		return fmt.Sprintf("session %d", id)
	case "wireguard":
		return fmt.Sprintf("receiver 0x%08x", id)
	}
	return strconv.FormatUint(uint64(id), 10)
}
