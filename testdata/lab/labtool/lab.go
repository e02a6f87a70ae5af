package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// labCmd brings the topology in -f up, prints "HOST NAMESPACE" lines and
// then "ready", and keeps it until SIGINT/SIGTERM or -duration, then takes
// it down. Scripts (bench.sh) use it to reuse the lab language.
func labCmd(args []string) (any, error) {
	fs := flags("lab")
	file := fs.String("f", "", "topology description file")
	dur := fs.Duration("duration", 30*time.Minute, "take the topology down after this long")
	_ = fs.Parse(args)
	if *file == "" {
		return nil, errors.New("need -f FILE")
	}
	text, err := os.ReadFile(*file)
	if err != nil {
		return nil, err
	}
	t, err := lab.Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *file, err)
	}
	if removed, err := lab.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "labtool lab: sweep: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "labtool lab: swept leftover namespaces %v\n", removed)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err = t.Up(ctx)
	cancel()
	if err != nil {
		return nil, err
	}
	for _, h := range t.Hosts {
		fmt.Printf("%s %s\n", h.Name, t.NS(h.Name))
	}
	fmt.Println("ready")
	select {
	case <-sig:
	case <-time.After(bound(*dur)):
	}
	return nil, t.Down()
}
