package driverkit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// testDialect writes what each hook was given, to show where values and names end up.
type testDialect struct{}

func (testDialect) Placeholder(n int) string          { return fmt.Sprintf("$%d", n) }
func (testDialect) Field(name string) string          { return name }
func (testDialect) Attr(name, typ string) string      { return "attr(" + name + "," + typ + ")" }
func (testDialect) Value(_ string, _ bool, v any) any { return v }
func (testDialect) Contains(x, p string) string       { return "contains(" + x + "," + p + ")" }
func (testDialect) StartsWith(x, p string) string     { return "starts(" + x + "," + p + ")" }

func (testDialect) ListsJoin() bool { return false }

// TestFilterWhereBindsValues checks that every value of a filter is a bind parameter, never
// text of the statement, and how each node is written.
func TestFilterWhereBindsValues(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	evil := "'); DROP TABLE contacts; --"
	f := &store.Filter{Op: store.FilterAnd, Nodes: []*store.Filter{
		{Op: store.FilterCond, Attribute: "plan", Type: store.AttrString, Cmp: store.CmpEq, Value: evil},
		{Op: store.FilterCond, Field: "name", Type: store.AttrString, Cmp: store.CmpIn, Values: []any{evil, "x"}},
		{Op: store.FilterCond, Field: "last_active_at", Type: store.AttrTime, Cmp: store.CmpLt, Ago: time.Hour},
		{Op: store.FilterInList, ListID: evil},
		{Op: store.FilterNot, Nodes: []*store.Filter{{Op: store.FilterOr, Nodes: []*store.Filter{
			{Op: store.FilterInList, ListID: "lst_1", SubscriptionStatus: store.SubscriptionAny},
			{Op: store.FilterCond, Attribute: "plan", Type: store.AttrString, Cmp: store.CmpContains, Value: evil},
		}}}},
	}}
	q, err := FilterWhere(testDialect{}, f, now, 3)
	if err != nil {
		t.Fatal(err)
	}
	where, args := q.Where, q.Args
	if strings.Contains(where, "DROP") {
		t.Errorf("a value reached the statement: %s", where)
	}
	want := "((attr(plan,string) IS NOT NULL AND attr(plan,string) = $3)" +
		" AND ((name IS NOT NULL AND name <> '') AND name IN ($4, $5))" +
		" AND (last_active_at IS NOT NULL AND last_active_at < $6)" +
		" AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.contact_id = contacts.id AND s.list_id = $7 AND s.status = $8)" +
		" AND NOT ((id IN (SELECT s.contact_id FROM subscriptions s WHERE s.list_id = $9)" +
		" OR (attr(plan,string) IS NOT NULL AND contains(attr(plan,string),$10)))))"
	if where != want {
		t.Errorf("FilterWhere =\n%s\nwant\n%s", where, want)
	}
	wantArgs := []any{evil, evil, "x", now.Add(-time.Hour), evil, store.SubscriptionSubscribed, "lst_1", evil}
	if diff := cmp.Diff(wantArgs, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}

	// Names are checked, not trusted.
	for _, bad := range []*store.Filter{
		{Op: store.FilterCond, Attribute: "plan') OR 1=1 --", Type: store.AttrString, Cmp: store.CmpExists},
		{Op: store.FilterCond, Field: "password", Type: store.AttrString, Cmp: store.CmpExists},
		{Op: store.FilterCond, Attribute: "plan", Type: store.AttrString, Cmp: "like", Value: "x"},
		{Op: store.FilterNot},
	} {
		if q, err := FilterWhere(testDialect{}, bad, now, 1); err == nil {
			t.Errorf("FilterWhere(%+v) = %+v, want an error", bad, q)
		}
	}
}

func TestAttrIndexName(t *testing.T) {
	t.Parallel()
	a, b := AttrIndexName("plan"), AttrIndexName("Plan")
	if a == b || !strings.HasPrefix(a, "contacts_attr_plan_") || len(AttrIndexName(strings.Repeat("x", store.MaxAttributeName))) > 63 {
		t.Errorf("AttrIndexName: %s, %s", a, b)
	}
}

type joinDialect struct{ testDialect }

func (joinDialect) ListsJoin() bool { return true }

// TestFilterWhereJoins checks the LEFT JOIN form of list memberships standing alone.
func TestFilterWhereJoins(t *testing.T) {
	t.Parallel()
	f := &store.Filter{Op: store.FilterOr, Nodes: []*store.Filter{
		{Op: store.FilterCond, Attribute: "vip", Type: store.AttrBool, Cmp: store.CmpEq, Value: true},
		{Op: store.FilterNot, Nodes: []*store.Filter{{Op: store.FilterInList, ListID: "lst_1"}}},
		{Op: store.FilterInList, ListID: "lst_2", SubscriptionStatus: store.SubscriptionAny},
	}}
	q, err := FilterWhere(joinDialect{}, f, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := FilterSQL{
		Joins: " LEFT JOIN subscriptions s1 ON s1.contact_id = contacts.id AND s1.list_id = $2 AND s1.status = $3" +
			" LEFT JOIN subscriptions s2 ON s2.contact_id = contacts.id AND s2.list_id = $4",
		Where: "((attr(vip,bool) IS NOT NULL AND attr(vip,bool) = $1) OR NOT (s1.contact_id IS NOT NULL) OR s2.contact_id IS NOT NULL)",
		Args:  []any{true, "lst_1", store.SubscriptionSubscribed, "lst_2"},
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("FilterWhere (-want +got):\n%s", diff)
	}
}
