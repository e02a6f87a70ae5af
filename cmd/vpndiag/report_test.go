package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/watch"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/report/schematest"
)

var startedJSON = regexp.MustCompile(`(?m)^(  "started": )"[^"]*"`)

// savedReports runs natcheck, trace and analyze on the NAT DNS fixture
// (the lab's NAT port-pool exhaustion: 200 ports, 498 DNS queries) and
// saves their JSON reports with fixed start times, as a user would before
// handing them to `vpndiag report`. It returns the directory and the files.
func savedReports(t *testing.T) (dir string, natcheck, trace, analyze string) {
	t.Helper()
	dir = t.TempDir()
	fx := fixture(t, "nat-dns")
	runs := []struct {
		file, started string
		args          []string
	}{
		{"natcheck.json", "2026-11-21T08:45:00Z", []string{"natcheck", "--outside", filepath.Join(fx, "gw-out.pcap"), "--inside", filepath.Join(fx, "gw-in.pcap")}},
		{"trace.json", "2026-11-21T08:44:00Z", append([]string{"trace"}, natDNSArgs(t)...)},
		{"analyze.json", "2026-11-21T08:46:00Z", []string{"analyze", "--analyzers", "summary,dns", filepath.Join(fx, "gw-out.pcap")}},
	}
	var paths []string
	for _, r := range runs {
		out, errOut, code := vpndiag(t, append(r.args[:1:1], append([]string{"--format", "json"}, r.args[1:]...)...)...)
		if code != exitOK && code != exitFindings {
			t.Fatalf("%v: exit %d: %s", r.args, code, errOut)
		}
		if err := schematest.Validate([]byte(out)); err != nil {
			t.Errorf("%s output: %v", r.args[0], err)
		}
		out = startedJSON.ReplaceAllString(out, `$1"`+r.started+`"`)
		p := filepath.Join(dir, r.file)
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths[0], paths[1], paths[2]
}

var goldenFormats = map[string]string{"text": "text", "json": "json", "md": "md", "html": "html", "junit": "junit.xml"}

// TestReportGolden re-renders a saved natcheck report and merges trace,
// natcheck and analyze reports into one incident report, in every format,
// against testdata/golden/report-*.
func TestReportGolden(t *testing.T) {
	dir, nat, trace, ana := savedReports(t)
	cases := []struct {
		name string
		args []string
	}{
		{"report-natcheck", []string{nat}},
		{"report-incident", []string{"trace=" + trace, "gw=" + nat, ana}},
	}
	for _, c := range cases {
		for f, ext := range goldenFormats {
			out, errOut, code := vpndiag(t, append([]string{"report", "--format", f}, c.args...)...)
			if code != exitFindings {
				t.Fatalf("%s %s: exit %d, want 1 (an error finding); stderr %s", c.name, f, code, errOut)
			}
			out = strings.ReplaceAll(out, dir, "TMP")
			golden(t, c.name+"."+ext, out)
		}
	}
}

// TestReportMerged checks the numbers of the merged incident report.
func TestReportMerged(t *testing.T) {
	_, nat, trace, ana := savedReports(t)
	out, errOut, code := vpndiag(t, "report", "--format", "json", "trace="+trace, "gw="+nat, ana)
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := schematest.Validate([]byte(out)); err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Sources) != 3 || r.Sources[0].ID != "trace" || r.Sources[1].ID != "gw" || r.Sources[2].ID != "analyze@testhost" {
		t.Fatalf("sources %+v", r.Sources)
	}
	if want := time.Date(2026, 11, 21, 8, 44, 0, 0, time.UTC); !r.Started.Equal(want) {
		t.Errorf("merged start %v, want the earliest source start %v", r.Started, want)
	}
	bySource := map[string][]string{}
	for _, f := range r.Findings {
		bySource[f.Source] = append(bySource[f.Source], f.ID+"/"+f.Severity.String())
	}
	if !contains(bySource["trace"], "trace.loss/error") || !contains(bySource["gw"], "nat.port-exhaustion/error") {
		t.Errorf("findings by source %v", bySource)
	}
	if r.Findings[0].Severity != report.SeverityError || !strings.HasPrefix(r.Verdict(), "ERROR:") {
		t.Errorf("verdict %q", r.Verdict())
	}
	// natcheck's chart: 6 seconds of live mappings peaking at the 200-port
	// range, the drops marked from the first second with drops.
	var chart *report.Chart
	for i := range r.Charts {
		if r.Charts[i].Source == "gw" && strings.HasPrefix(r.Charts[i].Name, "nat-pool-usage") {
			chart = &r.Charts[i]
		}
	}
	if chart == nil {
		t.Fatalf("no natcheck chart among %d charts", len(r.Charts))
	}
	live := chart.Series[0]
	if live.Name != "live mappings" || len(live.Points) != 6 || live.Points[0].Y != 91 || live.Points[5].Y != 200 {
		t.Errorf("live mappings %+v", live)
	}
	if len(chart.Limits) != 1 || chart.Limits[0].Y != 200 || len(chart.Marks) != 1 {
		t.Errorf("limits %+v marks %+v", chart.Limits, chart.Marks)
	}
	// The timeline holds the drop interval, in time order after the captures.
	var drop *report.Event
	for i, e := range r.Timeline {
		if i > 0 && e.Time.Before(r.Timeline[i-1].Time) {
			t.Errorf("timeline out of order at %d", i)
		}
		if e.Kind == "drop" && drop == nil {
			drop = &r.Timeline[i]
		}
	}
	if drop == nil || drop.Source != "gw" || drop.DurationSeconds != 4 {
		t.Errorf("drop event %+v", drop)
	}
	// analyze got its protocol share chart back from its table.
	found := false
	for _, c := range r.Charts {
		found = found || (c.Source == "analyze@testhost" && c.Name == "protocol-share" && c.Kind == report.ChartBar && c.Points() > 0)
	}
	if !found {
		t.Error("no protocol share chart for the analyze source")
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestReportBadInput: unreadable or non-v1 JSON is exit 2 naming the file.
func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, nat, _, _ := savedReports(t)
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{filepath.Join(dir, "missing.json")}, "missing.json"},
		{[]string{write("junk.json", "<html>")}, "junk.json is not a vpndiag JSON report"},
		{[]string{nat, write("v2.json", `{"schema":"vpndiag.report/v2"}`)}, `v2.json has schema "vpndiag.report/v2"`},
		{[]string{write("noschema.json", `{"command":"x"}`)}, `noschema.json is not a vpndiag JSON report: no "schema"`},
		{[]string{}, "at least one JSON report"},
		{[]string{"--schema", nat}, "--schema takes no report files"},
		{[]string{"--format", "pdf", nat}, "--format"},
	}
	for _, c := range cases {
		out, errOut, code := vpndiag(t, append([]string{"report"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.msg) || out != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %d bytes; want exit 2 naming %q", c.args, code, errOut, len(out), c.msg)
		}
	}
}

// TestReportSchemaFlag: --schema prints the committed schema file.
func TestReportSchemaFlag(t *testing.T) {
	out, errOut, code := vpndiag(t, "report", "--schema")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	file, err := os.ReadFile(filepath.Join(moduleRoot(t), report.SchemaPath))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(file) {
		t.Error("--schema output differs from " + report.SchemaPath)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("schema: %v %v", err, v["$schema"])
	}
}

// TestCommandReportsMatchSchema runs the commands that are cheap to run
// here with --format json and validates every report against the schema;
// it also renders each as HTML and JUnit through the command itself.
func TestCommandReportsMatchSchema(t *testing.T) {
	fx := func(name string) string { return fixture(t, name) }
	cmds := [][]string{
		{"analyze", filepath.Join(fx("vxlan"), "vxlan.pcap")},
		{"analyze", filepath.Join(fx("mixed"), "mixed.pcapng")},
		{"analyze", filepath.Join(fx("nat-dns"), "gw-out.pcap"), filepath.Join(fx("nat-dns"), "gw-in.pcap")},
		{"analyze", relTo(t, corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap"))},
		{"natcheck", "--outside", filepath.Join(fx("nat-dns"), "gw-out.pcap"), "--inside", filepath.Join(fx("nat-dns"), "gw-in.pcap")},
		{"natcheck", "--outside", filepath.Join(fx("nat-dns"), "gw-out.pcap")},
		append([]string{"trace"}, natDNSArgs(t)...),
		{"trace", "r2=" + filepath.Join(fx("loss-wire"), "r2-eth1.pcap"), "r1=" + filepath.Join(fx("loss-wire"), "r1-eth1.pcap")},
		{"routecheck", "--pcap", relTo(t, corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap")), "--endpoint", "1.1.1.1"},
		{"routecheck", "--mrt", relTo(t, corpus(t, "t2mune_mrtparse/bird-mrtdump_rib"))},
		{"probe", "ping", "-c", "3", "-i", "20ms", "127.0.0.1"},
		{"probe", "watch", "-i", "20ms", "--duration", "1s", "--no-progress", "127.0.0.1"},
	}
	for _, args := range cmds {
		name := strings.Join(args[:min(2, len(args))], " ")
		out, errOut, code := vpndiag(t, append(append([]string{}, args[0]), append([]string{"--format", "json"}, args[1:]...)...)...)
		if code != exitOK && code != exitFindings {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
			continue
		}
		if err := schematest.Validate([]byte(out)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, f := range []string{"html", "junit"} {
			out, errOut, code := vpndiag(t, append(append([]string{}, args[0]), append([]string{"--format", f}, args[1:]...)...)...)
			if code != exitOK && code != exitFindings {
				t.Errorf("%v --format %s: exit %d: %s", args, f, code, errOut)
				continue
			}
			switch f {
			case "html":
				if !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, `class="verdict`) {
					t.Errorf("%s: not an HTML report", name)
				}
			case "junit":
				var d struct {
					Tests int `xml:"tests,attr"`
				}
				if err := xml.Unmarshal([]byte(out), &d); err != nil || d.Tests < 1 {
					t.Errorf("%s: JUnit %v, %d tests", name, err, d.Tests)
				}
			}
		}
	}
	// probe throughput against vpndiag serve on loopback.
	port := strconv.Itoa(freeTCPPort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		c, _, _ := runCLI(t, ctx, "serve", "-B", "127.0.0.1", "-p", port, "--one-off", "--format", "json")
		done <- c
	}()
	time.Sleep(300 * time.Millisecond)
	code, out, errOut := runCLI(t, ctx, "probe", "throughput", "-p", port, "-t", "1", "-i", "0.25", "-P", "2", "--format", "json", "127.0.0.1")
	if code != 0 {
		t.Fatalf("probe throughput exit %d: %s", code, errOut)
	}
	<-done
	if err := schematest.Validate([]byte(out)); err != nil {
		t.Errorf("probe throughput: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Charts) != 1 || len(r.Charts[0].Series) != 3 || r.Charts[0].Series[0].Name != "sum" || len(r.Charts[0].Series[0].Points) < 3 {
		t.Fatalf("throughput chart %+v", r.Charts)
	}
	// The sum is the streams added up, interval by interval.
	for i, p := range r.Charts[0].Series[0].Points {
		s := r.Charts[0].Series[1].Points[i].Y + r.Charts[0].Series[2].Points[i].Y
		if d := p.Y - s; d > 1 || d < -1 {
			t.Errorf("interval %d: sum %v, streams add to %v", i, p.Y, s)
		}
	}
}

// TestRTTRecorder: buckets merge in pairs past rttMaxBuckets and the mean
// RTT per bucket survives; lost-only buckets break the line.
func TestRTTRecorder(t *testing.T) {
	rec := newRTTRecorder(10 * time.Millisecond)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 3 * rttMaxBuckets
	for i := 0; i < n; i++ {
		e := watchTick("a", t0.Add(time.Duration(i)*10*time.Millisecond), time.Duration(1+i%2)*time.Millisecond, i >= 100 && i < 200)
		rec.observe(e)
	}
	s := rec.series("a")
	if rec.width != 40*time.Millisecond {
		t.Errorf("bucket width %v, want 40ms after two merges", rec.width)
	}
	if len(s.Points) != n/4-25 {
		t.Errorf("%d points, want %d (25 lost-only buckets)", len(s.Points), n/4-25)
	}
	gaps := 0
	for _, p := range s.Points {
		if p.Y != 1.5 {
			t.Fatalf("mean RTT %v, want 1.5 ms", p.Y)
		}
		if p.Gap {
			gaps++
		}
	}
	if gaps != 1 {
		t.Errorf("%d gaps, want 1", gaps)
	}
}

func TestFormatFlagHelp(t *testing.T) {
	out, _, _ := vpndiag(t, "__complete", "analyze", "--format", "")
	for _, f := range []string{"text", "json", "md", "html", "junit"} {
		if !strings.Contains(out, f+"\n") {
			t.Errorf("completion lacks %s: %q", f, out)
		}
	}
	out, _, _ = vpndiag(t, "report", "--help")
	if !bytes.Contains([]byte(out), []byte("html (one self-contained page with charts)")) {
		t.Error("--format help does not list html")
	}
}

func watchTick(target string, at time.Time, rtt time.Duration, lost bool) watch.Event {
	e := watch.Event{Kind: watch.Tick, Target: target, Time: at, Lost: lost}
	if !lost {
		e.RTT = rtt
	}
	return e
}

// TestWatchChart: outages become marks labelled per target, the recorder's
// RTT means become one series per target.
func TestWatchChart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := &watch.Result{Started: t0, Ended: t0.Add(10 * time.Second), Interval: 100 * time.Millisecond, Targets: []watch.TargetResult{
		{Target: "198.18.0.1", Outages: []watch.Outage{{Target: "198.18.0.1", Start: t0.Add(2 * time.Second), End: t0.Add(4 * time.Second)}}},
		{Target: "198.18.0.2", Outages: []watch.Outage{{Target: "198.18.0.2", Start: t0.Add(9 * time.Second), End: t0.Add(10 * time.Second), Ongoing: true}}},
	}}
	c, ok := watchChart(res, nil)
	if !ok || len(c.Series) != 0 || len(c.Marks) != 2 || c.Marks[0].Label != "outage 198.18.0.1" || c.Marks[1].Label != "outage 198.18.0.2 (ongoing)" {
		t.Fatalf("chart without RTT: %+v", c)
	}
	if c.Marks[0].To-c.Marks[0].From != 2 || c.XUnit != report.XUnitTime {
		t.Errorf("mark %+v", c.Marks[0])
	}
	rec := newRTTRecorder(100 * time.Millisecond)
	for i := 0; i < 100; i++ {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		rec.observe(watchTick("198.18.0.1", at, 3*time.Millisecond, i >= 20 && i < 40))
		rec.observe(watchTick("198.18.0.2", at, 5*time.Millisecond, i >= 90))
	}
	c, _ = watchChart(res, rec)
	if len(c.Series) != 2 || len(c.Series[0].Points) != 80 || len(c.Series[1].Points) != 90 || c.Series[1].Points[0].Y != 5 {
		t.Errorf("RTT series: %d series, %d and %d points", len(c.Series), len(c.Series[0].Points), len(c.Series[1].Points))
	}
	if !c.Series[0].Points[20].Gap {
		t.Error("the first answer after the outage does not break the line")
	}
	// A watch without outages and without RTT samples has no chart.
	if _, ok := watchChart(&watch.Result{Targets: []watch.TargetResult{{Target: "x"}}}, nil); ok {
		t.Error("empty watch chart")
	}
}
