package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

func TestInboundList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Entries only (no reports): what the intake records for unparseable and forged mail.
	for i, e := range []store.InboundEntry{
		{Kind: "unparseable", Outcome: store.InboundIgnored, Detail: "not a report"},
		{Kind: "forged", Outcome: store.InboundUnmatched, Detail: "bounce address b-x@bounce.shop.example does not verify"},
		{Kind: "dsn", Outcome: store.InboundUnmatched, Detail: "names no bounce address and no Message-ID"},
	} {
		e.Channel, e.At, e.RcptTo, e.Size = store.InboundSMTP, testNow.Add(time.Duration(i)*time.Minute), "b-x@bounce.shop.example", 100+i
		if _, err := b.store.InboundApply(ctx, store.InboundApplyParams{Entry: e, Now: e.At}); err != nil {
			t.Fatal(err)
		}
	}

	r := b.do("GET", "/v1/inbound", nil)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	data := r.json(t)["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("%d entries, want 3: %s", len(data), r.body)
	}
	first := data[0].(map[string]any)
	if first["kind"] != "dsn" || first["outcome"] != "unmatched" || first["channel"] != "smtp" || first["size"] != 102.0 ||
		first["mail_from"] != "" || first["rcpt_to"] != "b-x@bounce.shop.example" || fmt.Sprint(first["message_ids"]) != "[]" {
		t.Errorf("newest entry %v", first)
	}

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"kind=forged", 1},
		{"outcome=unmatched", 2},
		{"kind=dsn&outcome=ignored", 0},
	} {
		r := b.do("GET", "/v1/inbound?"+tc.query, nil)
		if got := len(r.json(t)["data"].([]any)); r.status != 200 || got != tc.want {
			t.Errorf("%s: status %d, %d entries, want %d", tc.query, r.status, got, tc.want)
		}
	}

	// Pages of one.
	seen, cursor := 0, ""
	for {
		r := b.do("GET", "/v1/inbound?limit=1&cursor="+url.QueryEscape(cursor), nil)
		body := r.json(t)
		seen += len(body["data"].([]any))
		cursor, _ = body["next_cursor"].(string)
		if cursor == "" || seen > 3 {
			break
		}
	}
	if seen != 3 {
		t.Errorf("paging saw %d entries, want 3", seen)
	}

	for _, tc := range []struct{ query, field string }{
		{"kind=bounce", "query.kind"},
		{"outcome=done", "query.outcome"},
		{"limit=0", "query.limit"},
		{"limit=1001", "query.limit"},
		{"cursor=nonsense", "query.cursor"},
	} {
		b.wantProblem(tc.query, b.do("GET", "/v1/inbound?"+tc.query, nil), 422, tc.field)
	}
	if r := b.do("GET", "/v1/inbound", nil, "Authorization", ""); r.status != 401 {
		t.Errorf("without a key: status %d, want 401", r.status)
	}
}
