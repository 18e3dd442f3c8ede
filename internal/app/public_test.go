package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// publicReports records the panics reported.
type publicReports struct {
	mu     sync.Mutex
	panics []string
}

func (r *publicReports) Panic(_ context.Context, where string, v any, _ []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics = append(r.panics, where)
}

func (r *publicReports) Error(context.Context, string, error) {}

func TestPublicPagePanicReported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		h          http.HandlerFunc
		wantStatus int
		wantAbort  bool
	}{
		{"before writing", func(http.ResponseWriter, *http.Request) { panic("boom") }, http.StatusInternalServerError, false},
		{"after writing", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")); panic("boom") }, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := &publicReports{}
			rr := httptest.NewRecorder()
			aborted := func() (aborted bool) {
				defer func() {
					if v := recover(); v != nil {
						if v != http.ErrAbortHandler { //nolint:errorlint // as net/http compares it
							t.Fatalf("panic %v, want http.ErrAbortHandler", v)
						}
						aborted = true
					}
				}()
				recoverPublic(tc.h, rep).ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/u/x", nil))
				return false
			}()
			if aborted != tc.wantAbort || rr.Code != tc.wantStatus {
				t.Errorf("aborted %v status %d, want %v %d", aborted, rr.Code, tc.wantAbort, tc.wantStatus)
			}
			if len(rep.panics) != 1 || rep.panics[0] != "http /u/" {
				t.Errorf("reports %q, want one at http /u/", rep.panics)
			}
		})
	}
}
