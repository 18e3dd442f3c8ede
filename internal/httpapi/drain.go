package httpapi

import (
	"net/http"
	"sync/atomic"
)

// Stopping makes the API's /readyz answer 503 from now on. The app calls it when its shutdown
// starts, so that a load balancer (or Kubernetes, probing this port) stops sending requests
// while the node drains the ones it has; the admin listener's /readyz does the same.
func (s *Server) Stopping() { s.stopping.Store(true) }

// ReadyUnlessStopping serves ready (a readiness check) until stopping is set, then answers 503
// "shutting down".
func ReadyUnlessStopping(stopping *atomic.Bool, ready http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable) // Error adds the newline
			return
		}
		ready.ServeHTTP(w, r)
	})
}
