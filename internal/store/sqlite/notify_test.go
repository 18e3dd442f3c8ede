package sqlite

import (
	"strings"
	"testing"

	"github.com/postie/postie/internal/store"
)

// TestNotifyPlans checks that the notify area's statements on the hot paths read an index,
// never a whole table: the partial indexes are only used when a statement repeats their WHERE.
func TestNotifyPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	list := func(p store.EventListParams) (string, []any) { return eventListQuery(p, 50) }
	q1, a1 := list(store.EventListParams{Cursor: "evt_x"})
	q2, a2 := list(store.EventListParams{Name: "order.paid", Cursor: "evt_x"})
	q3, a3 := list(store.EventListParams{ContactID: "ctc_x"})
	for _, tc := range []struct {
		name, q string
		args    []any
		index   string
	}{
		{"client ids", qEventsByClient, []any{`[["k","c"]]`}, "events_client"},
		{"pending digest", qPendingDigest, []any{"trg_x", "k"}, "actions_digest"},
		{"cancel due", qActionCancelDue, []any{1, 10}, "actions_due"},
		{"claim", qActionClaim, []any{1, "w", 2, 10}, "actions_due"},
		{"cancel lookup", qActionClaim, []any{1, "w", 2, 10}, "event_cancels_key"},
		{"next due", qActionNextDue, nil, "actions_due"},
		{"release", qActionRelease, []any{"n", 1}, "actions_leased"},
		{"purge", qEventPurge, []any{1, 10}, "events_occurred"},
		{"held", qActionsHeld, []any{`["act_x"]`}, "sqlite_autoindex_actions_1"},
		{"actions of events", qActionsOfEvents, []any{`["evt_x"]`}, "actions_event"},
		{"list", q1, a1, "sqlite_autoindex_events_1"},
		{"list by name", q2, a2, "events_name"},
		{"list by contact", q3, a3, "events_contact"},
	} {
		plan := explain(t, s, tc.q, tc.args...)
		if !strings.Contains(plan, tc.index) || fullScan(plan) {
			t.Errorf("%s: plan does not use %s:\n%s", tc.name, tc.index, plan)
		}
	}
}
