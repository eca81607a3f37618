// Package ops is a node's operations listener: plain HTTP on a loopback
// port, for operators and scripts rather than peers.
//
//	GET /healthz   200 {"status":"OK"}, or 503 naming each failing component
//	GET /readyz    200 when the node is useful (enough peers, not far behind), else 503 with the reason
//	GET /metrics   the node's own Prometheus registry
//	GET /logspec   {"spec":"info"}; PUT /logspec {"spec":"debug"} changes the level at once
//	GET /status    the node's status as JSON (what `network up` shows in its table)
//
// The server owns one goroutine, started by Start and stopped by Close.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the operations listener's configuration.
type Config struct {
	// ListenAddress is host:port; keep it on 127.0.0.1 (the endpoints are
	// unauthenticated). Port 0 picks a free port.
	ListenAddress string `yaml:"listenAddress"`
	// ShutdownTimeout bounds how long Close waits for requests in flight.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ListenAddress:   "127.0.0.1:9443", // Fabric's operations port; loopback only: no auth here
		ShutdownTimeout: 2 * time.Second,  // requests are tiny; do not hold up a node's exit
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		return fmt.Errorf("operations.listenAddress %q is not host:port: %v", c.ListenAddress, err)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("operations.shutdownTimeout must be positive, got %v", c.ShutdownTimeout)
	}
	return nil
}

// Check is one health check: a named component and a function that
// returns nil when it is healthy. Checks must be quick and safe to call
// from any goroutine.
type Check struct {
	Component string
	Check     func() error
}

// Options are what the endpoints report on. Nil fields serve defaults: no
// checks (healthy, ready), an empty registry, a fixed info level, no status.
type Options struct {
	Health   []Check
	Ready    func() error
	Gatherer prometheus.Gatherer
	Level    *slog.LevelVar
	Status   func() any
	Logger   *slog.Logger
}

// Server is the operations HTTP server.
type Server struct {
	cfg  Config
	opts Options
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// ErrListen means the operations port could not be opened.
var ErrListen = errors.New("cannot open operations listener")

// New builds the server; it listens on nothing until Start.
func New(cfg Config, opts Options) *Server {
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.NewRegistry()
	}
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, opts: opts, done: make(chan struct{})}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Handler returns the endpoints as one handler (used by Start, and by tests).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/logspec", s.logspec)
	mux.HandleFunc("/status", s.status)
	return mux
}

// Start opens the listener and serves in a goroutine that Close stops. A
// port in use is reported at once, naming the address and the key to change.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddress)
	if err != nil {
		return fmt.Errorf("%w on %s: %v (is another node using this port? change operations.listenAddress or --operations)", ErrListen, s.cfg.ListenAddress, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("operations listener stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address actually listened on (useful with port 0); empty
// before Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops serving, waiting up to ShutdownTimeout for requests in
// flight, and returns when the serving goroutine has exited. Idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		if s.ln == nil {
			return
		}
		timeout := s.cfg.ShutdownTimeout
		if timeout <= 0 {
			timeout = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
		<-s.done
	})
	return err
}

type failure struct {
	Component string `json:"component"`
	Reason    string `json:"reason"`
}

type healthResponse struct {
	Status   string    `json:"status"`
	Failures []failure `json:"failed_checks,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	resp := healthResponse{Status: "OK"}
	for _, c := range s.opts.Health {
		if err := c.Check(); err != nil {
			resp.Failures = append(resp.Failures, failure{Component: c.Component, Reason: err.Error()})
		}
	}
	code := http.StatusOK
	if len(resp.Failures) > 0 {
		resp.Status, code = "Service Unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, resp)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type logSpec struct {
	Spec string `json:"spec"`
}

func (s *Server) logspec(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, logSpec{Spec: strings.ToLower(s.opts.Level.Level().String())})
	case http.MethodPut:
		var spec logSpec
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&spec); err != nil {
			writeError(w, http.StatusBadRequest, `body must be JSON like {"spec":"debug"}: `+err.Error())
			return
		}
		lvl, err := ParseLevel(spec.Spec)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.opts.Level.Set(lvl)
		s.opts.Logger.Info("log level changed", "level", lvl.String())
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT")
		writeError(w, http.StatusMethodNotAllowed, "use GET or PUT")
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	if s.opts.Status == nil {
		writeError(w, http.StatusNotFound, "this node reports no status")
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Status())
}

// ParseLevel reads a log level name: debug, info, warn (warning) or error,
// any case.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	name := strings.ToLower(strings.TrimSpace(s))
	if name == "warning" {
		name = "warn"
	}
	if err := l.UnmarshalText([]byte(name)); err != nil || name == "" {
		return 0, fmt.Errorf("unknown log level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, http.StatusMethodNotAllowed, "use "+method)
	return false
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
