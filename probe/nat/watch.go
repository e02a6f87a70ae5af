package nat

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Sample is one watch interval: the snapshot, its analysis and the change
// since the previous one (nil for the first).
type Sample struct {
	Snapshot *Snapshot
	Analysis *Analysis
	Delta    *Delta
}

// Watch collects a snapshot every interval until ctx ends or count samples
// were taken (count 0: no limit) and hands each to fn. An error from
// Collect or fn stops the watch and is returned; the end of ctx returns nil.
func Watch(ctx context.Context, opt Options, interval time.Duration, count int, top int, fn func(Sample) error) error {
	if interval <= 0 {
		return fmt.Errorf("watch interval %s: must be positive", interval)
	}
	var prev *Sample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; count == 0 || n < count; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		s, err := Collect(ctx, opt)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		cur := Sample{Snapshot: s, Analysis: Analyze(s, top)}
		if prev != nil {
			cur.Delta = Diff(prev.Snapshot, s, prev.Analysis, cur.Analysis)
		}
		if err := fn(cur); err != nil {
			return err
		}
		prev = &cur
	}
	return nil
}

// RowColumns are the columns of a watch row.
var RowColumns = []string{"time", "conntrack", "max", "snat", "busiest pool", "in use", "range", "use%",
	"insfail/s", "drop/s", "evict/s", "full in"}

// Row renders a sample as one watch row (see RowColumns).
func Row(s Sample) []string {
	snap, a, d := s.Snapshot, s.Analysis, s.Delta
	row := []string{snap.Time.Format("15:04:05"), fmt.Sprint(snap.Conntrack.Entries), fmt.Sprint(snap.Conntrack.Max),
		fmt.Sprint(a.SNATMappings), "-", "-", "-", "-", "-", "-", "-", "-"}
	if len(a.Pools) > 0 {
		p := a.Pools[0]
		row[4] = fmt.Sprintf("%s %s>%s", ProtoName(p.Proto), p.NAT, p.Dst)
		row[5] = fmt.Sprint(p.InUse)
		row[6] = fmt.Sprintf("%d-%d", p.RangeMin, p.RangeMax)
		row[7] = fmt.Sprintf("%.1f", 100*p.Utilization())
		if t, ok := d.TimeToExhaustion(p); ok {
			row[11] = t.Round(time.Second).String()
			if t == 0 {
				row[11] = "now"
			}
		}
	}
	if d != nil {
		row[8] = fmt.Sprintf("%.1f", d.PerSecond(float64(d.Stats.InsertFailed)))
		row[9] = fmt.Sprintf("%.1f", d.PerSecond(float64(d.Stats.Drop)))
		row[10] = fmt.Sprintf("%.1f", d.PerSecond(float64(d.Stats.EarlyDrop)))
	}
	return row
}

// RowWriter prints watch rows as they arrive, as a streaming table.
type RowWriter struct {
	t       *tablewriter.Table
	started bool
}

// NewRowWriter starts a streaming table on w.
func NewRowWriter(w io.Writer) *RowWriter {
	widths := tw.CellWidth{PerColumn: tw.NewMapper[int, int]()}
	for i, wd := range []int{8, 9, 8, 7, 44, 6, 11, 5, 10, 8, 8, 8} {
		widths.PerColumn.Set(i, wd+3)
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithStreaming(tw.StreamConfig{Enable: true}),
		tablewriter.WithWidths(widths),
	)
	return &RowWriter{t: t}
}

// Write prints one sample's row (the header before the first).
func (rw *RowWriter) Write(s Sample) error {
	if !rw.started {
		if err := rw.t.Start(); err != nil {
			return fmt.Errorf("watch table: %w", err)
		}
		rw.t.Header(RowColumns)
		rw.started = true
	}
	if err := rw.t.Append(Row(s)); err != nil {
		return fmt.Errorf("watch table: %w", err)
	}
	return nil
}

// Close ends the table.
func (rw *RowWriter) Close() error {
	if !rw.started {
		return nil
	}
	return rw.t.Close()
}
