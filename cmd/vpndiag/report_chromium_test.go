package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxyRecorder is a TCP listener that counts every connection made to it.
// Chromium is pointed at it as its proxy for everything, loopback included,
// so any request a page makes lands here.
type proxyRecorder struct {
	ln    net.Listener
	conns atomic.Int64
	mu    sync.Mutex
	first string   // the first bytes of the first request, for the error message
	lines []string // the request line of every connection
	wg    sync.WaitGroup
}

func newProxyRecorder(t *testing.T) *proxyRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyRecorder{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 200)
			n, _ := c.Read(buf)
			p.mu.Lock()
			if p.first == "" {
				p.first = string(buf[:n])
			}
			line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// chromium runs headless Debian chromium on a file with extra flags and
// returns its standard output.
func chromium(t *testing.T, proxy *proxyRecorder, page string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (apt-get install -y chromium): the HTML report test loads the page in headless Chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
		// Chromium's own background requests (network time, sign-in,
		// component updates) would reach the recorder too: turn them off
		// or point them at a closed loopback port.
		"--disable-features=NetworkTimeServiceQuerying", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
		"--no-pings", "--disable-component-extensions-with-background-pages",
		"--gaia-url=http://127.0.0.1:1", "--component-updater=url-source=http://127.0.0.1:1/u",
		"--user-data-dir=" + t.TempDir(),
		"--proxy-server=" + proxy.ln.Addr().String(), "--proxy-bypass-list=<-loopback>"}
	args = append(append(args, extra...), "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, tail(errb.String(), 2000))
	}
	return out.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// pixelStats decodes a PNG and counts pixels that differ from the corner
// (background) colour, and strongly coloured ones (chart lines, badges).
func pixelStats(t *testing.T, path string) (w, h, differ, colored int, bg [3]uint32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot missing: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	b := img.Bounds()
	r0, g0, b0, _ := img.At(b.Min.X+2, b.Min.Y+2).RGBA()
	bg = [3]uint32{r0 >> 8, g0 >> 8, b0 >> 8}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if absDiff(r, bg[0])+absDiff(g, bg[1])+absDiff(bl, bg[2]) > 30 {
				differ++
			}
			if max(r, g, bl)-min(r, g, bl) > 80 {
				colored++
			}
		}
	}
	return b.Dx(), b.Dy(), differ, colored, bg
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

var (
	svgChart    = regexp.MustCompile(`(?s)<svg class="chart chart-(\w+)" id="([^"]+)".*?</svg>`)
	dataElement = regexp.MustCompile(`<path class="line|<circle |<rect class="(bar|bin|mark) `)
)

// TestHTMLReportInChromium loads HTML reports in headless Chromium: the
// screenshot is a real page (not blank), every chart's SVG holds data
// elements in the rendered DOM, and the page makes no network request —
// Chromium's proxy is a local listener that must see no connection, which
// a control page with one external image proves it would. The README's
// example (natcheck and trace of the NAT-exhaustion fixture, merged) is
// checked against testdata/golden/report-example.html; -update also
// rewrites its light screenshot, testdata/golden/report-example.png.
func TestHTMLReportInChromium(t *testing.T) {
	dir, nat, trace, ana := savedReports(t)
	proxy := newProxyRecorder(t)
	pages := map[string][]string{
		"natcheck": {nat},
		"incident": {"trace=" + trace, "gw=" + nat, ana},
		// The README's example: the NAT-exhaustion lab's natcheck and
		// trace, merged; its light screenshot is report-example.png. It
		// runs in dir, so the page names the files as a user would.
		"example": {"gw=" + filepath.Base(nat), "trace=" + filepath.Base(trace)},
	}
	heights := map[string]int{"natcheck": 2000, "incident": 2000, "example": 3600}
	for _, name := range []string{"natcheck", "incident", "example"} {
		html := filepath.Join(dir, name+".html")
		var errOut string
		var code int
		if name == "example" {
			code, errOut = vpndiagIn(t, dir, append([]string{"report", "--format", "html", "-o", html}, pages[name]...)...)
		} else {
			_, errOut, code = vpndiag(t, append([]string{"report", "--format", "html", "-o", html}, pages[name]...)...)
		}
		if code != exitFindings {
			t.Fatalf("%s: exit %d: %s", name, code, errOut)
		}
		page, err := os.ReadFile(html)
		if err != nil {
			t.Fatal(err)
		}
		// Nothing in a tag points outside the file.
		if m := regexp.MustCompile(`(?i)<[^>]*(https?:|//[a-z0-9.-]+\.[a-z]{2,}|url\(|@import)[^>]*>|<(script|link|img|iframe)\b`).Find(page); m != nil {
			t.Errorf("%s: external reference in %q", name, m)
		}
		charts := svgChart.FindAllSubmatch(page, -1)
		if name == "example" {
			golden(t, "report-example.html", strings.ReplaceAll(string(page), dir, "TMP"))
			var ids []string
			for _, c := range charts {
				ids = append(ids, string(c[1]))
			}
			if got := strings.Join(ids, " "); got != "line line histogram" {
				t.Errorf("example: chart kinds %q, want the pool usage, the loss over time and the delay histogram", got)
			}
		}

		// The rendered DOM: every chart is there with data elements.
		dom := chromium(t, proxy, html, "--dump-dom", "--virtual-time-budget=2000")
		domCharts := svgChart.FindAllStringSubmatch(dom, -1)
		if len(domCharts) == 0 || len(domCharts) != len(charts) {
			t.Fatalf("%s: %d charts in the DOM, %d in the file", name, len(domCharts), len(charts))
		}
		for _, c := range domCharts {
			if n := len(dataElement.FindAllString(c[0], -1)); n == 0 {
				t.Errorf("%s: chart %s (%s) has no path, circle or data rect in the DOM", name, c[2], c[1])
			}
		}
		if !strings.Contains(dom, `class="verdict sev-error"`) {
			t.Errorf("%s: verdict missing from the DOM", name)
		}

		// Light and dark screenshots.
		for _, mode := range []string{"light", "dark"} {
			shot := filepath.Join(dir, name+"-"+mode+".png")
			args := []string{"--screenshot=" + shot, fmt.Sprintf("--window-size=1280,%d", heights[name])}
			if mode == "dark" {
				args = append(args, "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
			} else {
				args = append(args, "--blink-settings=preferredColorScheme=1")
			}
			chromium(t, proxy, html, args...)
			w, h, differ, colored, bg := pixelStats(t, shot)
			total := w * h
			t.Logf("%s %s: %dx%d, %d pixels (%.1f%%) differ from the background %v, %d coloured", name, mode, w, h, differ, 100*float64(differ)/float64(total), bg, colored)
			if w != 1280 || h != heights[name] {
				t.Errorf("%s %s: screenshot %dx%d, want 1280x%d", name, mode, w, h, heights[name])
			}
			if differ < total/50 || colored < 2000 {
				t.Errorf("%s %s: screenshot looks blank: %d of %d pixels differ from the background, %d coloured", name, mode, differ, total, colored)
			}
			luma := (bg[0]*299 + bg[1]*587 + bg[2]*114) / 1000
			if mode == "light" && luma < 200 || mode == "dark" && luma > 60 {
				t.Errorf("%s %s: background %v (luma %d) is not a %s background", name, mode, bg, luma, mode)
			}
			if name == "example" && mode == "light" && *update {
				copyFile(t, shot, filepath.Join(moduleRoot(t), "testdata", "golden", "report-example.png"))
			}
		}
	}
	if n := proxy.conns.Load(); n != 0 {
		t.Errorf("the reports made %d network connection(s): %q", n, proxy.lines)
	}

	// Control: a page with one external image does reach the recorder, so
	// zero above means no request, not a blind recorder.
	control := filepath.Join(dir, "control.html")
	if err := os.WriteFile(control, []byte(`<!DOCTYPE html><html><body><img src="http://198.18.0.1/x.png"></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	chromium(t, proxy, control, "--dump-dom", "--virtual-time-budget=3000")
	deadline := time.Now().Add(3 * time.Second)
	for proxy.conns.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	seen := false
	for _, l := range proxy.lines {
		seen = seen || strings.Contains(l, "198.18.0.1")
	}
	if !seen {
		t.Errorf("control page's external image never reached the proxy recorder (saw %q): the no-network check is blind", proxy.lines)
	}
}

// vpndiagIn runs the command in-process from directory dir and returns the
// exit code and stderr (tests of this package do not run in parallel with
// this one: parallel tests wait for the sequential ones).
func vpndiagIn(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := vpndiag(t, args...)
	if err := os.Chdir(wd); err != nil {
		t.Fatal(err)
	}
	return code, errOut
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", to, err))
	}
}
