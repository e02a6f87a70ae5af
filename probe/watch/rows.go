package watch

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// RowColumns are the columns of the live rows.
var RowColumns = []string{"time", "target", "event", "sent", "lost", "avail %", "rtt ms", "outages", "longest ms", "down for"}

var rowWidths = []int{12, 20, 6, 8, 7, 7, 8, 7, 10, 9}

// RowWriter prints live rows as a streaming table: one row when a target
// goes down or comes back, and status rows on request. It is safe for
// concurrent use.
type RowWriter struct {
	mu      sync.Mutex
	t       *tablewriter.Table
	started bool
}

// NewRowWriter starts a streaming table on w.
func NewRowWriter(w io.Writer) *RowWriter {
	widths := tw.CellWidth{PerColumn: tw.NewMapper[int, int]()}
	for i, wd := range rowWidths {
		widths.PerColumn.Set(i, wd+3)
	}
	return &RowWriter{t: tablewriter.NewTable(w,
		tablewriter.WithStreaming(tw.StreamConfig{Enable: true}),
		tablewriter.WithWidths(widths),
	)}
}

// Row renders one row: event is "down", "up" or "ok"/"DOWN" for a status
// row; at is the time shown.
func Row(at time.Time, event string, c Counters) []string {
	row := []string{at.Format("15:04:05.000"), c.Target, event, fmt.Sprint(c.Sent), fmt.Sprint(c.Lost),
		fmt.Sprintf("%.2f", c.Availability()), "-", fmt.Sprint(c.Outages), fmt.Sprint(c.Longest.Milliseconds()), "-"}
	if c.LastRTT > 0 {
		row[6] = fmt.Sprintf("%.3f", float64(c.LastRTT.Microseconds())/1000)
	}
	if !c.DownSince.IsZero() {
		row[9] = at.Sub(c.DownSince).Round(time.Millisecond).String()
	}
	return row
}

// Event prints the row for a down or up event, with the target's counters
// after it. Ticks print nothing.
func (rw *RowWriter) Event(e Event, c Counters) error {
	switch e.Kind {
	case Down:
		return rw.append(Row(e.Time, "DOWN", c))
	case Up:
		row := Row(e.Time, "UP", c)
		if e.Outage != nil {
			row[9] = e.Outage.Duration.Round(time.Millisecond).String()
		}
		return rw.append(row)
	}
	return nil
}

// Status prints one status row per target.
func (rw *RowWriter) Status(at time.Time, cs []Counters) error {
	for _, c := range cs {
		ev := "ok"
		switch {
		case !c.Known:
			ev = "-"
		case !c.DownSince.IsZero():
			ev = "down"
		}
		if err := rw.append(Row(at, ev, c)); err != nil {
			return err
		}
	}
	return nil
}

func (rw *RowWriter) append(row []string) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if !rw.started {
		if err := rw.t.Start(); err != nil {
			return fmt.Errorf("watch table: %w", err)
		}
		rw.t.Header(RowColumns)
		rw.started = true
	}
	if err := rw.t.Append(row); err != nil {
		return fmt.Errorf("watch table: %w", err)
	}
	return nil
}

// Close ends the table.
func (rw *RowWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if !rw.started {
		return nil
	}
	return rw.t.Close()
}
