package campaign

import (
	"testing"

	"github.com/postie/postie/internal/store"
)

// A run pauses once its complaints reach the rate of what was delivered, counted after the
// minimum; after a resume from such a pause, only complaints since count.
func TestTooManyComplaints(t *testing.T) {
	t.Parallel()
	s := New(Config{ComplaintRate: 0.01, ComplaintMinSent: 1000})
	prog := func(sent, complained int) store.RunProgress {
		return store.RunProgress{Counts: map[string]int{"sent": sent, "bounced": 0, "complained": complained}}
	}
	rs := &runState{}
	for _, tt := range []struct {
		sent, complained int
		want             bool
	}{
		{500, 100, false}, // too few delivered to judge
		{995, 9, false},   // 9 of 1004
		{990, 10, true},   // 10 of 1000
	} {
		if got := s.tooManyComplaints(rs, prog(tt.sent, tt.complained)); got != tt.want {
			t.Errorf("sent %d complained %d: %v, want %v", tt.sent, tt.complained, got, tt.want)
		}
	}
	rs.base.delivered, rs.base.complained = 1000, 10 // resumed after that pause
	if s.tooManyComplaints(rs, prog(1985, 15)) {
		t.Error("5 complaints in 1000 since the resume paused the run")
	}
	if !s.tooManyComplaints(rs, prog(1980, 20)) {
		t.Error("10 complaints in 1000 since the resume did not pause the run")
	}
	if New(Config{}).tooManyComplaints(rs, prog(100000, 100000)) {
		t.Error("a rate of 0 paused a run")
	}
}
