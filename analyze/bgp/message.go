// Package bgp finds routing mistakes that break VPN tunnels in BGP traffic
// and BGP dumps: default routes and tunnel-endpoint-covering prefixes learned
// over a tunnel, and sessions that flap because of them.
//
// It reassembles BGP over TCP from decoded packet records (both directions,
// messages split across segments or packed several per segment,
// retransmissions and capture gaps), parses the messages with gobgp's
// packet/bgp parser, keeps each peer pair's session timeline, reads MRT dumps
// (TABLE_DUMP_V2 RIBs and BGP4MP updates, plain or gzip) and turns all of it
// into report findings. The analyzer registers itself as "bgp".
package bgp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// BGP message types (RFC 4271, RFC 2918).
const (
	MsgOpen         = 1
	MsgUpdate       = 2
	MsgNotification = 3
	MsgKeepalive    = 4
	MsgRouteRefresh = 5
)

// HeaderLen is the length of the BGP message header (marker, length, type).
const HeaderLen = 19

// MaxMessageLen is the largest BGP message (RFC 8654 extended messages).
const MaxMessageLen = 65535

// TypeName returns the upper-case name of a message type ("UPDATE").
func TypeName(t uint8) string {
	switch t {
	case MsgOpen:
		return "OPEN"
	case MsgUpdate:
		return "UPDATE"
	case MsgNotification:
		return "NOTIFICATION"
	case MsgKeepalive:
		return "KEEPALIVE"
	case MsgRouteRefresh:
		return "ROUTE-REFRESH"
	}
	return "type-" + strconv.Itoa(int(t))
}

// Options are the session parameters a message is decoded with.
type Options struct {
	// AS2 decodes AS_PATH with 2-byte AS numbers (a session without the
	// 4-octet AS capability on both sides, or BGP4MP_MESSAGE).
	AS2 bool
	// AddPath lists the address families whose NLRI carry a path
	// identifier (RFC 7911) in this direction.
	AddPath []gobgp.Family
	// Guess retries a failed UPDATE with the other AS number size, for
	// captures that start after the OPEN messages.
	Guess bool
}

func (o Options) marshalling() *gobgp.MarshallingOption {
	m := &gobgp.MarshallingOption{Use2ByteAS: o.AS2}
	if len(o.AddPath) > 0 {
		m.AddPath = make(map[gobgp.Family]gobgp.BGPAddPathMode, len(o.AddPath))
		for _, f := range o.AddPath {
			m.AddPath[f] = gobgp.BGP_ADD_PATH_RECEIVE
		}
	}
	return m
}

// Prefix is one announced or withdrawn route.
type Prefix struct {
	Prefix netip.Prefix
	PathID uint32 // add-path identifier, 0 without add-path
}

// Open is a parsed OPEN message.
type Open struct {
	Version  uint8
	AS       uint32 // the 4-octet AS from the capability when present, else My AS
	HoldTime uint16 // seconds
	RouterID netip.Addr
	AS4      bool     // 4-octet AS number capability (RFC 6793)
	Families []string // multiprotocol capabilities, e.g. "ipv4-unicast"
	// AddPath maps a family to "receive", "send" or "receive/send".
	AddPath map[string]string
	// addPathSend are the families this speaker may send with path IDs.
	addPathSend []gobgp.Family
	addPathRecv []gobgp.Family
	// Capabilities are the capability codes in order.
	Capabilities []uint8
}

// Update is a parsed UPDATE message reduced to what routing checks need.
type Update struct {
	Announced   []Prefix   // IPv4 NLRI and MP_REACH_NLRI (IPv4/IPv6 unicast and multicast)
	Withdrawn   []Prefix   // withdrawn routes and MP_UNREACH_NLRI
	ASPath      []uint32   // AS numbers in order (AS4_PATH merged on 2-byte sessions)
	ASPathText  string     // "65001 65002 {65003,65004}"
	NextHop     netip.Addr // NEXT_HOP or the MP_REACH next hop
	Origin      string     // IGP, EGP, INCOMPLETE
	Communities []string   // "65000:100", large communities as "a:b:c"
	OtherNLRI   int        // NLRI of families other than IP unicast/multicast
	EndOfRIB    bool
}

// Notification is a parsed NOTIFICATION message.
type Notification struct {
	Code, Subcode uint8
	Data          []byte
}

// String names the error, e.g. "hold timer expired (4/0)".
func (n *Notification) String() string {
	name, ok := notifyNames[n.Code]
	if !ok {
		name = "error code " + strconv.Itoa(int(n.Code))
	}
	if subs := notifySubNames[n.Code]; int(n.Subcode) < len(subs) && subs[n.Subcode] != "" {
		name += ": " + subs[n.Subcode]
	}
	return fmt.Sprintf("%s (%d/%d)", name, n.Code, n.Subcode)
}

// HoldTimerExpired reports whether the notification is a hold timer expiry.
func (n *Notification) HoldTimerExpired() bool { return n.Code == gobgp.BGP_ERROR_HOLD_TIMER_EXPIRED }

var notifyNames = map[uint8]string{1: "message header error", 2: "OPEN message error", 3: "UPDATE message error",
	4: "hold timer expired", 5: "finite state machine error", 6: "cease", 7: "ROUTE-REFRESH message error"}

var notifySubNames = map[uint8][]string{
	1: {"", "connection not synchronized", "bad message length", "bad message type"},
	2: {"", "unsupported version number", "bad peer AS", "bad BGP identifier", "unsupported optional parameter",
		"authentication failure", "unacceptable hold time", "unsupported capability"},
	3: {"", "malformed attribute list", "unrecognized well-known attribute", "missing well-known attribute",
		"attribute flags error", "attribute length error", "invalid ORIGIN", "routing loop", "invalid NEXT_HOP",
		"optional attribute error", "invalid network field", "malformed AS_PATH"},
	5: {"", "unexpected message in OpenSent", "unexpected message in OpenConfirm", "unexpected message in Established"},
	6: {"", "maximum number of prefixes reached", "administrative shutdown", "peer de-configured",
		"administrative reset", "connection rejected", "other configuration change",
		"connection collision resolution", "out of resources", "hard reset", "BFD down"},
}

// Message is one BGP message with the decoded body for OPEN, UPDATE and
// NOTIFICATION.
type Message struct {
	Type         uint8
	Len          int
	Open         *Open
	Update       *Update
	Notification *Notification
}

// ErrMarker is returned for a message that does not start with 16 0xff bytes.
var ErrMarker = errors.New("BGP marker is not all ones")

// Header checks a message header and returns its length and type.
func Header(b []byte) (length int, typ uint8, err error) {
	if len(b) < HeaderLen {
		return 0, 0, fmt.Errorf("BGP header needs %d bytes, have %d", HeaderLen, len(b))
	}
	if binary.BigEndian.Uint64(b[:8]) != ^uint64(0) || binary.BigEndian.Uint64(b[8:16]) != ^uint64(0) {
		return 0, 0, ErrMarker
	}
	length = int(binary.BigEndian.Uint16(b[16:18]))
	if length < HeaderLen {
		return 0, 0, fmt.Errorf("BGP message length %d is shorter than the header", length)
	}
	typ = b[18]
	if typ < MsgOpen || typ > MsgRouteRefresh {
		return length, typ, fmt.Errorf("unknown BGP message type %d", typ)
	}
	return length, typ, nil
}

// Parse decodes one complete BGP message (header included). A malformed
// message returns an error describing what is wrong; it never panics.
func Parse(b []byte, o Options) (m Message, err error) {
	length, typ, err := Header(b)
	if err != nil {
		return Message{}, err
	}
	if length > len(b) {
		return Message{}, fmt.Errorf("BGP %s of %d bytes is truncated to %d", TypeName(typ), length, len(b))
	}
	b = b[:length]
	m = Message{Type: typ, Len: length}
	defer func() {
		// gobgp's decoders are fuzzed upstream, but a panic on hostile
		// input must become an error here, never a crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("BGP %s: decoder failure: %v", TypeName(typ), r)
		}
	}()
	switch typ {
	case MsgKeepalive:
		if length != HeaderLen {
			return m, fmt.Errorf("BGP KEEPALIVE has length %d, want 19", length)
		}
	case MsgOpen:
		msg, err := gobgp.ParseBGPMessage(b, o.marshalling())
		if err != nil {
			return m, fmt.Errorf("BGP OPEN: %w", err)
		}
		m.Open = openFrom(msg.Body.(*gobgp.BGPOpen))
	case MsgNotification:
		msg, err := gobgp.ParseBGPMessage(b, o.marshalling())
		if err != nil {
			return m, fmt.Errorf("BGP NOTIFICATION: %w", err)
		}
		n := msg.Body.(*gobgp.BGPNotification)
		m.Notification = &Notification{Code: n.ErrorCode, Subcode: n.ErrorSubcode, Data: append([]byte(nil), n.Data...)}
	case MsgUpdate:
		u, err := parseUpdate(b, o)
		if err != nil && o.Guess {
			alt := o
			alt.AS2 = !o.AS2
			if u2, err2 := parseUpdate(b, alt); err2 == nil {
				u, err = u2, nil
			}
		}
		if err != nil {
			return m, fmt.Errorf("BGP UPDATE: %w", err)
		}
		m.Update = u
	}
	return m, nil
}

func parseUpdate(b []byte, o Options) (*Update, error) {
	msg, err := gobgp.ParseBGPMessage(b, o.marshalling())
	if err != nil {
		return nil, err
	}
	return updateFrom(msg.Body.(*gobgp.BGPUpdate), o.AS2), nil
}

var familyNames = map[gobgp.Family]string{
	gobgp.RF_IPv4_UC: "ipv4-unicast", gobgp.RF_IPv6_UC: "ipv6-unicast",
	gobgp.RF_IPv4_MC: "ipv4-multicast", gobgp.RF_IPv6_MC: "ipv6-multicast",
}

func familyName(f gobgp.Family) string {
	if n, ok := familyNames[f]; ok {
		return n
	}
	return f.String()
}

func openFrom(p *gobgp.BGPOpen) *Open {
	o := &Open{Version: p.Version, AS: uint32(p.MyAS), HoldTime: p.HoldTime, RouterID: p.ID}
	for _, param := range p.OptParams {
		pc, ok := param.(*gobgp.OptionParameterCapability)
		if !ok {
			continue
		}
		for _, c := range pc.Capability {
			o.Capabilities = append(o.Capabilities, uint8(c.Code()))
			switch c := c.(type) {
			case *gobgp.CapFourOctetASNumber:
				o.AS4 = true
				o.AS = c.CapValue
			case *gobgp.CapMultiProtocol:
				o.Families = append(o.Families, familyName(c.CapValue))
			case *gobgp.CapAddPath:
				if o.AddPath == nil {
					o.AddPath = map[string]string{}
				}
				for _, t := range c.Tuples {
					o.AddPath[familyName(t.Family)] = t.Mode.String()
					if t.Mode&gobgp.BGP_ADD_PATH_SEND != 0 {
						o.addPathSend = append(o.addPathSend, t.Family)
					}
					if t.Mode&gobgp.BGP_ADD_PATH_RECEIVE != 0 {
						o.addPathRecv = append(o.addPathRecv, t.Family)
					}
				}
			}
		}
	}
	return o
}

// Negotiate returns the decoding options for messages sent by the speaker
// that sent `from` to the speaker that sent `to`: 4-octet AS numbers only when
// both announced the capability, path identifiers for the families `from` may
// send and `to` wants to receive.
func Negotiate(from, to *Open) Options {
	o := Options{AS2: !(from.AS4 && to.AS4)}
	for _, f := range from.addPathSend {
		for _, g := range to.addPathRecv {
			if f == g {
				o.AddPath = append(o.AddPath, f)
			}
		}
	}
	return o
}

var originNames = [...]string{"IGP", "EGP", "INCOMPLETE"}

func updateFrom(u *gobgp.BGPUpdate, as2 bool) *Update {
	out := &Update{}
	for _, w := range u.WithdrawnRoutes {
		if p, ok := prefixOf(w); ok {
			out.Withdrawn = append(out.Withdrawn, p)
		}
	}
	for _, n := range u.NLRI {
		if p, ok := prefixOf(n); ok {
			out.Announced = append(out.Announced, p)
		}
	}
	var asPath []gobgp.AsPathParamInterface
	var as4Path []*gobgp.As4PathParam
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *gobgp.PathAttributeOrigin:
			if int(a.Value) < len(originNames) {
				out.Origin = originNames[a.Value]
			} else {
				out.Origin = strconv.Itoa(int(a.Value))
			}
		case *gobgp.PathAttributeAsPath:
			asPath = a.Value
		case *gobgp.PathAttributeAs4Path:
			as4Path = a.Value
		case *gobgp.PathAttributeNextHop:
			out.NextHop = a.Value
		case *gobgp.PathAttributeCommunities:
			for _, c := range a.Value {
				out.Communities = append(out.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		case *gobgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				out.Communities = append(out.Communities, fmt.Sprintf("%d:%d:%d", c.ASN, c.LocalData1, c.LocalData2))
			}
		case *gobgp.PathAttributeMpReachNLRI:
			if a.Nexthop.IsValid() && !a.Nexthop.IsUnspecified() {
				out.NextHop = a.Nexthop
			}
			for _, n := range a.Value {
				if p, ok := prefixOf(n); ok {
					out.Announced = append(out.Announced, p)
				} else {
					out.OtherNLRI++
				}
			}
		case *gobgp.PathAttributeMpUnreachNLRI:
			for _, n := range a.Value {
				if p, ok := prefixOf(n); ok {
					out.Withdrawn = append(out.Withdrawn, p)
				} else {
					out.OtherNLRI++
				}
			}
			if len(a.Value) == 0 && len(u.PathAttributes) == 1 {
				out.EndOfRIB = true
			}
		}
	}
	if len(u.WithdrawnRoutes) == 0 && len(u.PathAttributes) == 0 && len(u.NLRI) == 0 {
		out.EndOfRIB = true
	}
	segs := make([]segment, 0, len(asPath))
	for _, s := range asPath {
		segs = append(segs, segment{typ: s.GetType(), as: s.GetAS()})
	}
	if as2 && len(as4Path) > 0 {
		segs = mergeAS4(segs, as4Path)
	}
	out.ASPath, out.ASPathText = flattenPath(segs)
	return out
}

func prefixOf(n gobgp.PathNLRI) (Prefix, bool) {
	if p, ok := n.NLRI.(*gobgp.IPAddrPrefix); ok && p.Prefix.IsValid() {
		return Prefix{Prefix: p.Prefix, PathID: n.ID}, true
	}
	return Prefix{}, false
}

type segment struct {
	typ uint8
	as  []uint32
}

// pathLen counts AS numbers the way RFC 6793 section 4.2.3 does: a set
// counts one, confederation segments none.
func pathLen(segs []segment) int {
	n := 0
	for _, s := range segs {
		switch s.typ {
		case gobgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			n += len(s.as)
		case gobgp.BGP_ASPATH_ATTR_TYPE_SET:
			n++
		}
	}
	return n
}

// mergeAS4 reconstructs the path of a 2-byte session from AS_PATH and
// AS4_PATH (RFC 6793 section 4.2.3): the leading AS_PATH numbers that
// AS4_PATH does not cover, followed by AS4_PATH.
func mergeAS4(segs []segment, as4 []*gobgp.As4PathParam) []segment {
	four := make([]segment, 0, len(as4))
	for _, s := range as4 {
		four = append(four, segment{typ: s.Type, as: s.AS})
	}
	keep := pathLen(segs) - pathLen(four)
	if keep < 0 {
		return segs // AS4_PATH longer than AS_PATH: ignore it, as the RFC says
	}
	var out []segment
	for _, s := range segs {
		if keep == 0 {
			break
		}
		switch s.typ {
		case gobgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			n := min(keep, len(s.as))
			out = append(out, segment{typ: s.typ, as: s.as[:n]})
			keep -= n
		case gobgp.BGP_ASPATH_ATTR_TYPE_SET:
			out = append(out, s)
			keep--
		default:
			out = append(out, s)
		}
	}
	return append(out, four...)
}

func flattenPath(segs []segment) ([]uint32, string) {
	var nums []uint32
	var sb strings.Builder
	for _, s := range segs {
		if len(s.as) == 0 {
			continue
		}
		open, sep, closing := "", " ", ""
		switch s.typ {
		case gobgp.BGP_ASPATH_ATTR_TYPE_SET:
			open, sep, closing = "{", ",", "}"
		case gobgp.BGP_ASPATH_ATTR_TYPE_CONFED_SEQ:
			open, sep, closing = "(", " ", ")"
		case gobgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET:
			open, sep, closing = "[", ",", "]"
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(open)
		for i, a := range s.as {
			if i > 0 {
				sb.WriteString(sep)
			}
			sb.WriteString(strconv.FormatUint(uint64(a), 10))
			nums = append(nums, a)
		}
		sb.WriteString(closing)
	}
	return nums, sb.String()
}
