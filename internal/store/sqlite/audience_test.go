package sqlite

import (
	"strings"
	"testing"
)

// TestAudiencePlans checks that the audience's queries use their indexes: an upsert batch loads
// its contacts by key, and a page of a list's members walks the subscriptions in contact order
// (no sort of the whole list).
func TestAudiencePlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	for _, tc := range []struct {
		name    string
		q       string
		args    []any
		index   string
		ordered bool // no sort: rows come in index order
	}{
		{"contacts by keys", qContactsByKeys, []any{`["a@example.com"]`, `["u-1"]`, `[]`}, "sqlite_autoindex_contacts_2", false},
		{"subscriptions of contacts", qSubscriptionsOf, []any{`["ctc_x"]`}, "subscriptions_contact", false},
		{"list members", qContactListOfList, []any{"", 10, "lst_x"}, "PRIMARY KEY (list_id=? AND contact_id>?)", true},
		{"list members by status", qContactListOfListStatus, []any{"", 10, "lst_x", "subscribed"}, "subscriptions_status", true},
		{"consent", qContactConsent, []any{"ctc_x"}, "consent_records_contact", true},
		{"erase: messages", qEraseMessages, []any{`["a@example.com"]`}, "message_recipients_email", false},
	} {
		plan := explain(t, s, tc.q, tc.args...)
		if !strings.Contains(plan, tc.index) || fullScan(plan) || tc.ordered && strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: plan does not use %s in order:\n%s", tc.name, tc.index, plan)
		}
	}
}
