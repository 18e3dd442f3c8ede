package audience

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

var testAttrs = map[string]string{"plan": store.AttrString, "score": store.AttrNumber, "vip": store.AttrBool, "signup": store.AttrTime}

const news = "lst_01m95typprednrt6eqqbewzs09"

func TestParseFilter(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	cases := []struct {
		name string
		in   string
		want *store.Filter
	}{
		{"the example", `{"and":[{"attr":"plan","eq":"pro"},{"field":"last_active_at","before":{"ago":"30d"}},{"list":"` + news + `","status":"subscribed"}]}`,
			&store.Filter{Op: store.FilterAnd, Nodes: []*store.Filter{
				{Op: store.FilterCond, Attribute: "plan", Type: store.AttrString, Cmp: store.CmpEq, Value: "pro"},
				{Op: store.FilterCond, Field: "last_active_at", Type: store.AttrTime, Cmp: store.CmpLt, Ago: 30 * day},
				{Op: store.FilterInList, ListID: news, SubscriptionStatus: store.SubscriptionSubscribed},
			}}},
		{"list defaults to subscribed", `{"list":"` + news + `"}`,
			&store.Filter{Op: store.FilterInList, ListID: news, SubscriptionStatus: store.SubscriptionSubscribed}},
		{"any status", `{"list":"` + news + `","status":"any"}`,
			&store.Filter{Op: store.FilterInList, ListID: news, SubscriptionStatus: store.SubscriptionAny}},
		{"or and not", `{"or":[{"not":{"attr":"vip","eq":true}},{"attr":"score","in":[1,2.5]}]}`,
			&store.Filter{Op: store.FilterOr, Nodes: []*store.Filter{
				{Op: store.FilterNot, Nodes: []*store.Filter{{Op: store.FilterCond, Attribute: "vip", Type: store.AttrBool, Cmp: store.CmpEq, Value: true}}},
				{Op: store.FilterCond, Attribute: "score", Type: store.AttrNumber, Cmp: store.CmpIn, Values: []any{1.0, 2.5}},
			}}},
		{"empty and", `{"and":[]}`, &store.Filter{Op: store.FilterAnd, Nodes: []*store.Filter{}}},
		{"absolute time in UTC", `{"attr":"signup","after":"2026-03-01T14:00:00+02:00"}`,
			&store.Filter{Op: store.FilterCond, Attribute: "signup", Type: store.AttrTime, Cmp: store.CmpGt, Value: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}},
		{"ago with units", `{"field":"created_at","ge":{"ago":"1w2d12h30m15s"}}`,
			&store.Filter{Op: store.FilterCond, Field: "created_at", Type: store.AttrTime, Cmp: store.CmpGe, Ago: 9*day + 12*time.Hour + 30*time.Minute + 15*time.Second}},
		{"email is lower-cased", `{"field":"email","eq":"Ann@Example.COM"}`,
			&store.Filter{Op: store.FilterCond, Field: "email", Type: store.AttrString, Cmp: store.CmpEq, Value: "ann@example.com"}},
		{"exists", `{"attr":"plan","exists":true}`,
			&store.Filter{Op: store.FilterCond, Attribute: "plan", Type: store.AttrString, Cmp: store.CmpExists}},
		{"missing field", `{"field":"last_active_at","missing":true}`,
			&store.Filter{Op: store.FilterCond, Field: "last_active_at", Type: store.AttrTime, Cmp: store.CmpMissing}},
		{"starts_with", `{"field":"name","starts_with":"A"}`,
			&store.Filter{Op: store.FilterCond, Field: "name", Type: store.AttrString, Cmp: store.CmpStartsWith, Value: "A"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFilter(json.RawMessage(tc.in), testAttrs)
			if err != nil {
				t.Fatalf("ParseFilter(%s): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseFilter(%s) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestParseFilterErrors checks that every bad filter is refused with the JSON path of what is
// wrong.
func TestParseFilterErrors(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat(`{"not":`, 20) + `{"attr":"plan","eq":"x"}` + strings.Repeat(`}`, 20)
	cases := []struct{ in, path, msg string }{
		{`nope`, "filter", "not JSON"},
		{`{"and":[]} {}`, "filter", "more than one"},
		{`[]`, "filter", "must be an object"},
		{`{}`, "filter", "exactly one of"},
		{`{"and":[],"or":[]}`, "filter", "exactly one of"},
		{`{"and":{}}`, "filter.and", "array"},
		{`{"and":[{"attr":"plan","eq":"pro"},{"field":"last_active_at","before":{"ago":"30 days"}}]}`, "filter.and[1].before.ago", "duration"},
		{`{"and":[{"attr":"plan","eq":"pro"},{"field":"last_active_at","before":{"ago":"0d"}}]}`, "filter.and[1].before.ago", "more than 0"},
		{`{"field":"last_active_at","before":{"ago":"30d","x":1}}`, "filter.before.x", "unknown key"},
		{`{"field":"last_active_at","before":"yesterday"}`, "filter.before", "RFC 3339"},
		{`{"field":"last_active_at","before":"2026-03-01T12:00:00"}`, "filter.before", "RFC 3339"},
		{`{"or":[{"attr":"nope","eq":"x"}]}`, "filter.or[0].attr", "not declared"},
		{`{"attr":5,"eq":"x"}`, "filter.attr", "string"},
		{`{"field":"password","eq":"x"}`, "filter.field", "unknown field"},
		{`{"attr":"plan","eq":5}`, "filter.eq", "must be a string"},
		{`{"attr":"score","eq":"5"}`, "filter.eq", "must be a number"},
		{`{"attr":"score","gt":1e400}`, "filter.gt", "finite"},
		{`{"attr":"vip","eq":"true"}`, "filter.eq", "true or false"},
		{`{"attr":"vip","gt":true}`, "filter.gt", "not an operator of a bool"},
		{`{"attr":"score","contains":"1"}`, "filter.contains", "not an operator of a number"},
		{`{"attr":"plan","like":"p%"}`, "filter.like", "unknown operator"},
		{`{"attr":"plan","eq":"a","ne":"b"}`, "filter", "exactly one operator"},
		{`{"attr":"plan"}`, "filter", "exactly one operator"},
		{`{"attr":"plan","in":"pro"}`, "filter.in", "array"},
		{`{"attr":"plan","in":["pro",5]}`, "filter.in[1]", "must be a string"},
		{`{"attr":"plan","exists":false}`, "filter.exists", "must be true"},
		{`{"attr":"signup","in":["2026-03-01T12:00:00Z"]}`, "filter.in", "not an operator of a time"},
		{`{"not":{"list":"news"}}`, "filter.not.list", "list id"},
		{`{"list":"` + news + `","status":"gone"}`, "filter.status", "one of"},
		{`{"list":"` + news + `","eq":1}`, "filter.eq", "unknown key"},
		{`{"not":{"and":[]},"x":1}`, "filter.x", "unknown key"},
		{`{"not":[]}`, "filter.not", "must be an object"},
		{deep, "filter" + strings.Repeat(".not", 17), "nested deeper"},
		{`{"attr":"plan","eq":"a\u0000b"}`, "filter.eq", "U+0000"},
	}
	for _, tc := range cases {
		_, err := ParseFilter(json.RawMessage(tc.in), testAttrs)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("ParseFilter(%s) = %v, want a *FilterError", tc.in, err)
			continue
		}
		if fe.Path != tc.path || !strings.Contains(fe.Message, tc.msg) {
			t.Errorf("ParseFilter(%s) = %q at %q; want %q at %q", tc.in, fe.Message, fe.Path, tc.msg, tc.path)
		}
	}
}

func TestParseFilterTooManyNodes(t *testing.T) {
	t.Parallel()
	nodes := strings.TrimSuffix(strings.Repeat(`{"attr":"plan","eq":"x"},`, MaxFilterNodes), ",")
	_, err := ParseFilter(json.RawMessage(`{"or":[`+nodes+`]}`), testAttrs)
	var fe *FilterError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "nodes") {
		t.Errorf("ParseFilter(%d nodes) = %v, want a too-many-nodes error", MaxFilterNodes+1, err)
	}
}

func TestCastAttribute(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ, raw string
		want     any
		err      bool
	}{
		{store.AttrString, " pro ", " pro ", false},
		{store.AttrString, "", nil, false},
		{store.AttrNumber, " 42 ", 42.0, false},
		{store.AttrNumber, "-1.5e3", -1500.0, false},
		{store.AttrNumber, "", nil, false},
		{store.AttrNumber, "12 apples", nil, true},
		{store.AttrNumber, "NaN", nil, true},
		{store.AttrNumber, "1e400", nil, true},
		{store.AttrBool, "Yes", true, false},
		{store.AttrBool, "0", false, false},
		{store.AttrBool, "FALSE", false, false},
		{store.AttrBool, "maybe", nil, true},
		{store.AttrTime, "2026-03-01T14:00:00+02:00", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), false},
		{store.AttrTime, "2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{store.AttrTime, "03/01/2026", nil, true},
		{store.AttrTime, "2026-02-30", nil, true},
		{"date", "x", nil, true},
	}
	for _, tc := range cases {
		got, err := CastAttribute(tc.typ, tc.raw)
		if (err != nil) != tc.err || !cmp.Equal(got, tc.want) {
			t.Errorf("CastAttribute(%s, %q) = %v, %v; want %v (error %v)", tc.typ, tc.raw, got, err, tc.want, tc.err)
		}
	}
	// A cast time encodes as the RFC 3339 form both drivers compare.
	v, _ := CastAttribute(store.AttrTime, "2026-03-01T14:00:00.5+02:00")
	if b, _ := json.Marshal(v); string(b) != `"2026-03-01T12:00:00.5Z"` {
		t.Errorf("cast time encodes as %s", b)
	}
}

func TestCheckAttribute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, typ, path string }{
		{"plan", store.AttrString, ""},
		{"signed_up_at", store.AttrTime, ""},
		{"first-name", store.AttrString, "name"},
		{"", store.AttrString, "name"},
		{strings.Repeat("a", store.MaxAttributeName+1), store.AttrString, "name"},
		{"plan", "date", "type"},
	} {
		err := CheckAttribute(tc.name, tc.typ)
		var fe *FilterError
		if tc.path == "" && err != nil || tc.path != "" && (!errors.As(err, &fe) || fe.Path != tc.path) {
			t.Errorf("CheckAttribute(%q, %q) = %v, want an error at %q", tc.name, tc.typ, err, tc.path)
		}
	}
}
