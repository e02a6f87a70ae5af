package main

import (
	"sync"
	"time"

	"github.com/jedib0t/go-pretty/v6/progress"
)

// progressBar draws bytes read of total on stderr while a long run goes on.
// It is a no-op when showProgress is false (not a terminal, JSON output).
type progressBar struct {
	pw      progress.Writer
	tracker *progress.Tracker
	once    sync.Once
	done    chan struct{}
}

func startProgress(g *globalOptions, message string) *progressBar {
	b := &progressBar{}
	if !g.showProgress() {
		return b
	}
	pw := progress.NewWriter()
	pw.SetOutputWriter(g.stderr)
	pw.SetAutoStop(false)
	pw.SetTrackerLength(30)
	pw.SetUpdateFrequency(200 * time.Millisecond)
	pw.SetStyle(progress.StyleDefault)
	pw.Style().Visibility.ETA = true
	pw.Style().Visibility.Speed = true
	t := &progress.Tracker{Message: message, Units: progress.UnitsBytes}
	pw.AppendTracker(t)
	b.pw, b.tracker, b.done = pw, t, make(chan struct{})
	go func() { pw.Render(); close(b.done) }()
	return b
}

// update is an analyze.ProgressFunc.
func (b *progressBar) update(read, total int64) {
	if b.tracker == nil {
		return
	}
	if total > 0 && b.tracker.Total != total {
		b.tracker.UpdateTotal(total)
	}
	b.tracker.SetValue(read)
}

func (b *progressBar) stop() {
	if b.pw == nil {
		return
	}
	b.once.Do(func() {
		b.tracker.MarkAsDone()
		time.Sleep(10 * time.Millisecond)
		b.pw.Stop()
		<-b.done
	})
}
