package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// GET /metrics serves the handler it is given, outside /api/v1 and
// without a token, as Prometheus scrapes.
func TestMetricsRoute(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("rbdgw_gateway_info{gateway=\"gw1\"} 1\n"))
	})
	get := func(s *Server, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	rec := get(New(Options{Version: "v1", Metrics: metrics}), "/metrics")
	if rec.Code != http.StatusOK || rec.Body.String() != "rbdgw_gateway_info{gateway=\"gw1\"} 1\n" {
		t.Errorf("GET /metrics: %d %q", rec.Code, rec.Body)
	}
	if rec := get(New(Options{Version: "v1"}), "/metrics"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /metrics without a metrics handler: %d", rec.Code)
	}
}
