package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// What every request goes through before the routes: its route pattern, status and duration
// counted (Config.Metrics), one log line, a request id, and a panic turned into a 500.

// unmatchedRoute is the route label of a request no route matches: the raw path is never a
// label (unbounded, and it may hold ids or addresses).
const unmatchedRoute = "unmatched"

// methodLabel is the method label of a request matching pattern ("" when none did): the
// pattern's own method when it names one, else the request's when it is a standard method, else
// "other". The request line's method is the client's to choose (any token): as a label it
// would make a series per made-up method.
func methodLabel(pattern, method string) string {
	if m, _, ok := strings.Cut(pattern, " "); ok && m != "" && !strings.Contains(m, "/") {
		return m
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// requestInfo is what the layers below tell the observer about a request.
type requestInfo struct {
	id    string // X-Request-Id
	keyID string // the API key that authenticated it, "" when none did
}

type infoKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside a request): the
// X-Request-Id the client sent when usable, or one generated. It is echoed in the response and
// written in the request's log line.
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// ServeHTTP serves a request through the observer: it finds the route pattern, gives the
// request an id, calls the routes, recovers a panic into a 500 problem (reported to
// Config.Errors; the other 500s are reported where they are made: storeError and
// reportUnexpected), counts the answer (Config.Metrics) and logs one line: method, route, status,
// duration, request id and API key id. Never the query string, a body or an address.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	route := unmatchedRoute
	_, pattern := s.mux.Handler(r)
	if pattern != "" {
		route = pattern
	}
	info := &requestInfo{id: requestID(r.Header.Get("X-Request-Id"))}
	w.Header().Set("X-Request-Id", info.id)
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	rec := &statusRecorder{ResponseWriter: w}

	func() {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it so too
				panic(v) // the handler's way to abort the response: net/http stays quiet about it
			}
			s.cfg.Errors.Panic(r.Context(), "http "+route, v, debug.Stack())
			if !rec.wrote {
				writeProblem(rec, http.StatusInternalServerError, internalDetail)
			} else {
				// Part of an answer went out: the client must not take it for the whole one.
				panic(http.ErrAbortHandler)
			}
		}()
		s.route(rec, r)
	}()

	status := rec.status
	if !rec.wrote {
		status = http.StatusOK // nothing written: net/http answers 200 with an empty body
	}
	d := time.Since(start)
	s.cfg.Metrics.Request(route, methodLabel(pattern, r.Method), status, d)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "request", slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", status), slog.Duration("duration", d), slog.String("request_id", info.id),
		slog.String("api_key_id", info.keyID))
}

// setKeyID records the API key that authenticated the request of ctx, for its log line.
func setKeyID(ctx context.Context, keyID string) {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		info.keyID = keyID
	}
}

// requestID returns the client's X-Request-Id when it is a usable one (1 to 128 printable
// ASCII characters, no spaces), else a new random one: a header that could forge a log line or
// grow without bound is replaced, not echoed.
func requestID(sent string) string {
	ok := len(sent) > 0 && len(sent) <= 128
	for i := 0; ok && i < len(sent); i++ {
		ok = sent[i] > ' ' && sent[i] < 0x7f
	}
	if ok {
		return sent
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status of the response written through it. Unwrap lets
// http.ResponseController reach the connection (deadlines, flushes).
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered, for the handlers that stream (http.Flusher).
func (w *statusRecorder) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// internalDetail is the detail of the 500s whose cause was reported already (storeError, a
// recovered panic).
const internalDetail = "internal error; see the server log"

// reportUnexpected is a huma transformer: a 500 that no handler made on purpose (an error of no
// known kind returned to huma) is reported to Config.Errors with what huma says of it. Those made
// on purpose carry internalDetail and were reported with their cause.
func (s *Server) reportUnexpected(ctx huma.Context, status string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok || status != "500" || em.Detail == internalDetail {
		return v, nil
	}
	msg := em.Detail
	for _, d := range em.Errors {
		msg += "; " + d.Message
	}
	where := "http"
	if op := ctx.Operation(); op != nil {
		where += " " + op.Method + " " + op.Path
	}
	s.cfg.Errors.Error(ctx.Context(), where, errors.New(msg))
	return v, nil
}
