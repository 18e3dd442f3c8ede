package httpapi

// HoldInflight takes n bytes of the in-flight budget, as a request being handled does, and
// returns the function that gives them back.
func (s *Server) HoldInflight(n int64) (release func()) {
	if !s.inflight.TryAcquire(n) {
		panic("the in-flight budget is not free")
	}
	return func() { s.inflight.Release(n) }
}
