package ops

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func do(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestHealthzNamesFailingComponent(t *testing.T) {
	var ledgerErr atomic.Pointer[error]
	s := New(DefaultConfig(), Options{Health: []Check{
		{Component: "ledger", Check: func() error {
			if p := ledgerErr.Load(); p != nil {
				return *p
			}
			return nil
		}},
		{Component: "gossip", Check: func() error { return nil }},
	}})
	code, body := do(t, s.Handler(), http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"OK"}`, body)

	err := errors.New("leveldb: closed")
	ledgerErr.Store(&err)
	code, body = do(t, s.Handler(), http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	var resp healthResponse
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Equal(t, []failure{{Component: "ledger", Reason: "leveldb: closed"}}, resp.Failures)

	code, _ = do(t, s.Handler(), http.MethodPost, "/healthz", "")
	require.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestReadyz(t *testing.T) {
	var behind atomic.Bool
	s := New(DefaultConfig(), Options{Ready: func() error {
		if behind.Load() {
			return errors.New("height 3, peers report 40")
		}
		return nil
	}})
	code, _ := do(t, s.Handler(), http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusOK, code)
	behind.Store(true)
	code, body := do(t, s.Handler(), http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "peers report 40")
}

func TestMetricsServesTheNodeRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "blockgossip_ledger_height", Help: "h"})
	reg.MustRegister(g)
	g.Set(42)
	code, body := do(t, New(DefaultConfig(), Options{Gatherer: reg}).Handler(), http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "blockgossip_ledger_height 42")
}

func TestLogspecGetPut(t *testing.T) {
	lvl := new(slog.LevelVar)
	h := New(DefaultConfig(), Options{Level: lvl}).Handler()
	code, body := do(t, h, http.MethodGet, "/logspec", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"spec":"info"}`, body)

	code, _ = do(t, h, http.MethodPut, "/logspec", `{"spec":"DEBUG"}`)
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, slog.LevelDebug, lvl.Level())
	_, body = do(t, h, http.MethodGet, "/logspec", "")
	require.JSONEq(t, `{"spec":"debug"}`, body)

	for _, bad := range []string{`{"spec":"loud"}`, `{"spec":""}`, `not json`} {
		code, body = do(t, h, http.MethodPut, "/logspec", bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Contains(t, body, "error")
	}
	require.Equal(t, slog.LevelDebug, lvl.Level(), "a rejected PUT leaves the level alone")
	code, _ = do(t, h, http.MethodDelete, "/logspec", "")
	require.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestStatus(t *testing.T) {
	code, _ := do(t, New(DefaultConfig(), Options{}).Handler(), http.MethodGet, "/status", "")
	require.Equal(t, http.StatusNotFound, code)
	s := New(DefaultConfig(), Options{Status: func() any { return map[string]int{"height": 7} }})
	code, body := do(t, s.Handler(), http.MethodGet, "/status", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"height":7}`, body)
}

func TestStartServesAndReportsPortInUse(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ListenAddress = "127.0.0.1:0"
	s := New(cfg, Options{})
	require.NoError(t, s.Start())
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cfg.ListenAddress = s.Addr()
	err = New(cfg, Options{}).Start()
	require.ErrorIs(t, err, ErrListen)
	require.ErrorContains(t, err, s.Addr())
	require.ErrorContains(t, err, "operations.listenAddress")

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = net.Dial("tcp", cfg.ListenAddress)
	require.Error(t, err, "the port is released after Close")
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.ListenAddress = "9443"
	require.ErrorContains(t, c.Validate(), "operations.listenAddress")
	c = DefaultConfig()
	c.ShutdownTimeout = 0
	require.Error(t, c.Validate())
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "Info": slog.LevelInfo, "warning": slog.LevelWarn, "ERROR": slog.LevelError} {
		got, err := ParseLevel(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseLevel("verbose")
	require.ErrorContains(t, err, "use debug, info, warn or error")
}
