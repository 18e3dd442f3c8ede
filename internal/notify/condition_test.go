package notify

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
)

func TestConditionMatch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	data := decode(json.RawMessage(`{"order": {"total": 120.5, "id": "A-1", "paid": true,
		"placed_at": "2026-12-06T11:00:00Z", "items": [{"sku": "x1"}, {"sku": "y2"}]},
		"plan": "pro", "nothing": null}`))
	cases := []struct {
		cond string
		want bool
	}{
		{`{"data": "order.total", "gt": 100}`, true},
		{`{"data": "order.total", "le": 100}`, false},
		{`{"data": "order.total", "eq": 120.5}`, true},
		{`{"data": "order.total", "in": [1, 120.5]}`, true},
		{`{"data": "order.total", "eq": "120.5"}`, false}, // a string is not a number
		{`{"data": "order.id", "starts_with": "A-"}`, true},
		{`{"data": "order.id", "contains": "-1"}`, true},
		{`{"data": "order.id", "in": ["B-2", "A-1"]}`, true},
		{`{"data": "order.id", "lt": "B"}`, true},
		{`{"data": "order.paid", "eq": true}`, true},
		{`{"data": "order.paid", "ne": true}`, false},
		{`{"data": "order.items.1.sku", "eq": "y2"}`, true},
		{`{"data": "order.items.2.sku", "exists": true}`, false},
		{`{"data": "order.placed_at", "after": {"ago": "2h"}}`, true},
		{`{"data": "order.placed_at", "before": {"ago": "2h"}}`, false},
		{`{"data": "order.placed_at", "before": "2026-12-06T11:30:00Z"}`, true},
		{`{"data": "order.placed_at", "ge": {"ago": "1h"}}`, true},
		{`{"data": "plan", "ne": "free"}`, true},
		{`{"data": "coupon", "ne": "free"}`, false}, // ne needs a value
		{`{"not": {"data": "coupon", "eq": "free"}}`, true},
		{`{"data": "coupon", "missing": true}`, true},
		{`{"data": "nothing", "missing": true}`, true}, // null is no value
		{`{"data": "plan", "exists": true}`, true},
		{`{"and": []}`, true},
		{`{"or": []}`, false},
		{`{"and": [{"data": "plan", "eq": "pro"}, {"or": [{"data": "order.total", "gt": 1000}, {"data": "order.paid", "eq": true}]}]}`, true},
		{`null`, true},
	}
	for _, c := range cases {
		cond, err := ParseCondition(json.RawMessage(c.cond))
		if err != nil {
			t.Errorf("%s: %v", c.cond, err)
			continue
		}
		if got := cond.Match(data, now); got != c.want {
			t.Errorf("%s: matched %v, want %v", c.cond, got, c.want)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ cond, path string }{
		{`[]`, "condition"},
		{`{"data": "a", "eq": 1} {}`, "condition"},
		{`{`, "condition"},
		{`{}`, "condition"},
		{`{"field": "email", "eq": "x"}`, "condition"},
		{`{"data": "a", "and": []}`, "condition"},
		{`{"and": {}}`, "condition.and"},
		{`{"and": [], "x": 1}`, "condition.x"},
		{`{"or": [{"data": 1, "eq": 1}]}`, "condition.or[0].data"},
		{`{"data": "a..b", "eq": 1}`, "condition.data"},
		{`{"data": "", "eq": 1}`, "condition.data"},
		{`{"data": "a"}`, "condition"},
		{`{"data": "a", "eq": 1, "ne": 2}`, "condition"},
		{`{"data": "a", "like": "x"}`, "condition.like"},
		{`{"data": "a", "contains": 3}`, "condition.contains"},
		{`{"data": "a", "gt": true}`, "condition.gt"},
		{`{"data": "a", "eq": [1]}`, "condition.eq"},
		{`{"data": "a", "exists": false}`, "condition.exists"},
		{`{"data": "a", "in": "x"}`, "condition.in"},
		{`{"data": "a", "in": [1, "x"]}`, "condition.in[1]"},
		{`{"data": "a", "before": "yesterday"}`, "condition.before"},
		{`{"data": "a", "after": {"ago": "30 days"}}`, "condition.after.ago"},
		{`{"data": "a", "gt": {"ago": "1d", "x": 1}}`, "condition.gt.x"},
		{`{"not": {"not": {"data": "a", "eq": 1e999}}}`, "condition.not.not.eq"},
	}
	for _, c := range cases {
		_, err := ParseCondition(json.RawMessage(c.cond))
		var fe *audience.FilterError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err %v, want a FilterError", c.cond, err)
			continue
		}
		if fe.Path != c.path {
			t.Errorf("%s: path %q (%s), want %q", c.cond, fe.Path, fe.Message, c.path)
		}
	}
}

func TestConditionTooDeep(t *testing.T) {
	t.Parallel()
	s := `{"data": "a", "eq": 1}`
	for range maxCondDepth + 1 {
		s = `{"not": ` + s + `}`
	}
	var fe *audience.FilterError
	if _, err := ParseCondition(json.RawMessage(s)); !errors.As(err, &fe) {
		t.Fatalf("err %v, want a FilterError", err)
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"0": 0, "0s": 0, "0d0h": 0, "90s": 90 * time.Second,
		"1h": time.Hour, "1d12h": 36 * time.Hour, "2w": 14 * 24 * time.Hour} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5h", "h", "-1h", "1y", "10"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): no error", in)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 90 * time.Second: "1m30s", 36 * time.Hour: "1d12h", time.Hour: "1h"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
