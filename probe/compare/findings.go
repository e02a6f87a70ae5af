package compare

import (
	"fmt"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// Thresholds of the findings.
const (
	// LossZThreshold: the tunnel's loss is reported when it exceeds the
	// underlay's by this many standard errors (one-sided, p < 0.0014).
	LossZThreshold = 3.0
	// MinRatio: a tunnel throughput below this share of the underlay's is
	// a warning.
	MinRatio = 0.5
)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Findings turns a comparison into findings: probe.tunnel-loss (the tunnel
// loses significantly more echoes than the underlay), probe.tunnel-overhead
// (info with the latency numbers), probe.tunnel-throughput (ratio below
// MinRatio), probe.unreachable for a path that answered nothing, and
// probe.error for a measurement that failed.
func Findings(res *Result) []report.Finding {
	var out []report.Finding
	t, u := res.Tunnel.Ping, res.Underlay.Ping
	seg := &report.Where{Segment: &report.Segment{From: res.Underlay.Target, To: res.Tunnel.Target}, Flow: res.Tunnel.Target}
	for _, p := range []Path{res.Tunnel, res.Underlay} {
		where := &report.Where{Flow: p.Target, Class: p.Role}
		switch {
		case p.Ping == nil && p.PingError != "":
			out = append(out, report.Finding{ID: "probe.error", Severity: report.SeverityError, Where: where,
				Title: fmt.Sprintf("The %s could not be pinged", p.Role), Summary: p.PingError})
		case p.Ping != nil && p.Ping.Sent > 0 && p.Ping.Received == 0:
			out = append(out, report.Finding{ID: "probe.unreachable", Severity: report.SeverityError, Where: where,
				Title:    fmt.Sprintf("The %s address does not answer", p.Role),
				Summary:  fmt.Sprintf("%s (%s) answered none of %d echoes with a %d-byte payload.", p.Target, p.Role, p.Ping.Sent, res.Size),
				Evidence: map[string]any{"sent": p.Ping.Sent}})
		}
		if p.ThroughputError != "" {
			out = append(out, report.Finding{ID: "probe.error", Severity: report.SeverityError, Where: where,
				Title: fmt.Sprintf("Throughput test over the %s failed", p.Role), Summary: p.ThroughputError,
				Remedy: fmt.Sprintf("Start a server on the peer (iperf3 -s or vpndiag serve) listening on %s.", p.Target)})
		}
	}
	if t != nil && u != nil && t.Received > 0 && u.Received > 0 {
		tl, ul := t.Sent-min(t.Received, t.Sent), u.Sent-min(u.Received, u.Sent)
		if res.LossZ >= LossZThreshold && tl >= 2 {
			sev := report.SeverityWarning
			if t.LossPercent >= 5 {
				sev = report.SeverityError
			}
			clean := "while the underlay lost none"
			if ul > 0 {
				clean = fmt.Sprintf("while the underlay lost only %.1f%% (%d of %d)", u.LossPercent, ul, u.Sent)
			}
			out = append(out, report.Finding{ID: "probe.tunnel-loss", Severity: sev, Where: seg,
				Title: "Loss inside the tunnel",
				Summary: fmt.Sprintf("%.1f%% of %d echoes through the tunnel to %s were lost %s (same %d-byte payload, interleaved; z = %.1f).",
					t.LossPercent, t.Sent, res.Tunnel.Target, clean, res.Size, res.LossZ),
				Evidence: map[string]any{"tunnel_sent": t.Sent, "tunnel_lost": tl, "tunnel_loss_percent": t.LossPercent,
					"underlay_sent": u.Sent, "underlay_lost": ul, "underlay_loss_percent": u.LossPercent, "z": res.LossZ},
				Remedy: "The underlay carries ICMP but loses encapsulated packets: capture on both tunnel endpoints (vpndiag trace) and look for a firewall, policer or NAT that drops or rate-limits the tunnel's UDP port, and for fragments of oversized encapsulated packets."})
		}
	}
	if o := res.Overhead; o != nil {
		verdict := fmt.Sprintf("not measurable (%s)", o.Reason)
		if o.Measurable {
			verdict = fmt.Sprintf("%.3f ms (%.0f%% interval %.3f..%.3f ms)", ms(o.Median), 100*o.Confidence, ms(o.Low), ms(o.High))
		}
		out = append(out, report.Finding{ID: "probe.tunnel-overhead", Severity: report.SeverityInfo, Where: seg,
			Title: "Tunnel latency overhead",
			Summary: fmt.Sprintf("Median RTT %.3f ms through the tunnel vs %.3f ms over the underlay (%d-byte payload): overhead %s.",
				ms(t.P50), ms(u.P50), res.Size, verdict),
			Evidence: map[string]any{"overhead_ms": ms(o.Median), "ci_low_ms": ms(o.Low), "ci_high_ms": ms(o.High), "confidence": o.Confidence,
				"method": o.Method, "jitter_ms": ms(o.Jitter), "measurable": o.Measurable,
				"tunnel_p50_ms": ms(t.P50), "underlay_p50_ms": ms(u.P50)}})
	}
	if res.ThroughputRatio > 0 && res.ThroughputRatio < MinRatio {
		out = append(out, report.Finding{ID: "probe.tunnel-throughput", Severity: report.SeverityWarning, Where: seg,
			Title: "Tunnel throughput far below the underlay",
			Summary: fmt.Sprintf("The tunnel carried %.1f Mbit/s vs %.1f Mbit/s over the underlay (ratio %.3f).",
				res.Tunnel.BitsPerSecond/1e6, res.Underlay.BitsPerSecond/1e6, res.ThroughputRatio),
			Evidence: map[string]any{"tunnel_bits_per_second": res.Tunnel.BitsPerSecond, "underlay_bits_per_second": res.Underlay.BitsPerSecond,
				"ratio": res.ThroughputRatio},
			Remedy: "Look for a shaper or policer on the tunnel path, encryption limits (CPU, single-queue crypto), an MTU that forces fragmentation, and try more parallel streams (-P)."})
	}
	return out
}
