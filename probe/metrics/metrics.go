// Package metrics exports a Prometheus registry the two ways every vpndiag
// live mode does: a file for node_exporter's textfile collector, written
// atomically, and an HTTP /metrics endpoint.
package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// WriteTextfile writes g's metrics to dir/name atomically (a temporary file
// in dir renamed into place), so the textfile collector never reads half a
// file. dir must exist; name should end in .prom.
func WriteTextfile(dir, name string, g prometheus.Gatherer) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("textfile directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("textfile directory %s: not a directory", dir)
	}
	path := filepath.Join(dir, name)
	if err := prometheus.WriteToTextfile(path, g); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Server serves /metrics until closed.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen starts serving g at http://addr/metrics. The listener is bound
// before Listen returns, so a bad or busy address is reported at once.
func Listen(addr string, g prometheus.Gatherer) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }
