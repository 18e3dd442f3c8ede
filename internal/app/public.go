package app

import (
	"net/http"
	"runtime/debug"

	"github.com/postie/postie/internal/errtrack"
)

// recoverPublic serves h (the public /u/ pages, which do not go through the API's observer) and
// turns a panic into a report to rep and a 500, as the observer does for the API: net/http
// alone would only log it. A panic after part of the page went out aborts the response, so the
// visitor does not take half a page for the whole.
func recoverPublic(h http.Handler, rep errtrack.Reporter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &wroteRecorder{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it so too
				panic(v)
			}
			rep.Panic(r.Context(), "http /u/", v, debug.Stack())
			if rec.wrote {
				panic(http.ErrAbortHandler)
			}
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}()
		h.ServeHTTP(rec, r)
	})
}

// wroteRecorder remembers whether anything of the response was written. Unwrap lets
// http.ResponseController reach the connection.
type wroteRecorder struct {
	http.ResponseWriter
	wrote bool
}

func (w *wroteRecorder) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *wroteRecorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *wroteRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
