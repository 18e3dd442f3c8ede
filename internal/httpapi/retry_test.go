package httpapi_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
)

// fail sends a message through the API and drives it to failed with lastErr, as the delivery
// engine would: claim, then finish.
func (b *bundle) fail(msg map[string]any, lastErr *store.DeliveryError) string {
	b.t.Helper()
	r := b.do("POST", "/v1/messages", msg)
	if r.status != 202 {
		b.t.Fatalf("send: %d %s", r.status, r.body)
	}
	id := r.json(b.t)["id"].(string)
	ctx := context.Background()
	stream, _ := msg["stream"].(string)
	if stream == "" {
		stream = store.StreamTransactional
	}
	claimed, err := b.store.MessageClaim(ctx, store.MessageClaimParams{Owner: "test-worker", Stream: stream, Limit: 1000,
		Now: testNow, LeaseUntil: testNow.Add(time.Minute)})
	if err != nil || len(claimed) != 1 || claimed[0].ID != id {
		b.t.Fatalf("claim = %d messages, %v; want %s", len(claimed), err, id)
	}
	lastErr.Attempt, lastErr.At = 1, testNow
	n, err := b.store.MessageFinish(ctx, testNow, []store.MessageFinishParams{{ID: id, Owner: "test-worker",
		Status: store.StatusFailed, Attempts: 1, LastError: lastErr, Events: []store.Event{{Type: store.EventFailed}}}})
	if err != nil || n != 1 {
		b.t.Fatalf("finish = %d, %v", n, err)
	}
	return id
}

func TestRetryOne(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.MessageTTL = 6 * time.Hour })
	id := b.fail(valid(), &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown", Stage: "rcpt"})
	if g := b.do("GET", "/v1/messages/"+id, nil).json(t); g["status"] != "failed" {
		t.Fatalf("before retry: %v", g["status"])
	}

	wake := b.store.Wakeups(store.StreamTransactional)
	for len(wake) > 0 { // drop the signal of the send
		<-wake
	}
	r := b.do("POST", "/v1/messages/"+id+"/retry", nil)
	if r.status != 200 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["id"] != id || m["status"] != "queued" || m["attempts"] != float64(0) ||
		m["expires_at"] != testNow.Add(6*time.Hour).Format(time.RFC3339) || m["next_attempt_at"] != testNow.Format(time.RFC3339) {
		t.Errorf("retried message = %s", r.body)
	}
	if le, _ := m["last_error"].(map[string]any); le["code"] != float64(550) || le["enhanced"] != "5.1.1" {
		t.Errorf("last_error after retry = %v, want the failure kept", m["last_error"])
	}
	var types []string
	for _, e := range m["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if !slices.Equal(types, []string{"queued", "failed", "retried"}) {
		t.Errorf("events = %v, want queued, failed, retried", types)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second): // a failure guard, not a wait for time to pass
		t.Error("the retry did not wake the delivery engine")
	}

	if r := b.do("POST", "/v1/messages/"+id+"/retry", nil); r.status != 409 || r.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("retry of a queued message: %d %s, want 409", r.status, r.body)
	}
	if r := b.do("POST", "/v1/messages/msg_nope/retry", nil); r.status != 404 {
		t.Errorf("retry of an unknown message: %d, want 404", r.status)
	}
}

func TestRetryBulk(t *testing.T) {
	t.Parallel()
	b := setup(t)
	unknown := b.fail(with("tags", []string{"signup"}), &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown", Stage: "rcpt"})
	policy := b.fail(with("stream", "broadcast"), &store.DeliveryError{Code: 554, Enhanced: "5.7.1", Text: "rejected by policy", Stage: "data"})
	queued := b.do("POST", "/v1/messages", valid()).json(t)["id"].(string)

	// The list shows the failures with their reasons and filters by code.
	r := b.do("GET", "/v1/messages?error_code=554", nil)
	data, _ := r.json(t)["data"].([]any)
	if r.status != 200 || len(data) != 1 {
		t.Fatalf("list error_code=554: %d %s", r.status, r.body)
	}
	le, _ := data[0].(map[string]any)["last_error"].(map[string]any)
	want := map[string]any{"code": float64(554), "enhanced": "5.7.1", "text": "rejected by policy", "stage": "data",
		"attempt": float64(1), "at": testNow.Format(time.RFC3339)}
	for k, v := range want {
		if le[k] != v {
			t.Errorf("listed last_error.%s = %v, want %v", k, le[k], v)
		}
	}
	for q, n := range map[string]int{"error_code=5.": 2, "error_code=5.1.1": 1, "error_code=550&status=failed": 1, "error_code=421": 0} {
		if d, _ := b.do("GET", "/v1/messages?"+q, nil).json(t)["data"].([]any); len(d) != n {
			t.Errorf("list %s: %d messages, want %d", q, len(d), n)
		}
	}

	retry := func(body any) (int, []string) {
		t.Helper()
		r := b.do("POST", "/v1/messages/retry", body)
		if r.status != 200 {
			t.Fatalf("retry %v: %d %s", body, r.status, r.body)
		}
		out := r.json(t)
		var ids []string
		for _, id := range out["ids"].([]any) {
			ids = append(ids, id.(string))
		}
		return int(out["retried"].(float64)), ids
	}
	if n, ids := retry(map[string]any{"error_code": "5.1.", "tag": "signup"}); n != 1 || !slices.Equal(ids, []string{unknown}) {
		t.Errorf("retry by error code = %d %v, want %s", n, ids, unknown)
	}
	if r := b.do("POST", "/v1/messages/retry", map[string]any{"error_code": "550"}); r.status != 200 ||
		string(r.body) != `{"retried":0,"ids":[]}`+"\n" {
		t.Errorf("retry again = %d %q, want none retried and an empty list", r.status, r.body)
	}
	// No body: every failed message.
	if n, ids := retry(nil); n != 1 || !slices.Equal(ids, []string{policy}) {
		t.Errorf("retry all = %d %v, want %s", n, ids, policy)
	}
	for _, id := range []string{unknown, policy, queued} {
		if m := b.do("GET", "/v1/messages/"+id, nil).json(t); m["status"] != "queued" {
			t.Errorf("%s is %v, want queued", id, m["status"])
		}
	}
}

// TestRetryBadInput: a 4xx naming the field, and nothing retried.
func TestRetryBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.fail(valid(), &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown"})
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"unknown field", "POST", "/v1/messages/retry", map[string]any{"bogus": 1}, 422, "body.bogus"},
		{"bad error code", "POST", "/v1/messages/retry", map[string]any{"error_code": "55"}, 422, "body.error_code"},
		{"error code with letters", "POST", "/v1/messages/retry", map[string]any{"error_code": "5.x.1"}, 422, "body.error_code"},
		{"bad time", "POST", "/v1/messages/retry", map[string]any{"created_after": "yesterday"}, 422, "body.created_after"},
		{"unknown stream", "POST", "/v1/messages/retry", map[string]any{"stream": "marketing"}, 422, "body.stream"},
		{"malformed JSON", "POST", "/v1/messages/retry", `{"error_code": `, 400, ""},
		{"list by a bad error code", "GET", "/v1/messages?error_code=abc", nil, 422, "query.error_code"},
	} {
		b.wantProblem(tc.name, b.do(tc.method, tc.path, tc.body), tc.status, tc.field)
	}
	if m := b.do("GET", "/v1/messages/"+id, nil).json(t); m["status"] != "failed" || m["attempts"] != float64(1) {
		t.Errorf("bad retries changed the message: %v, %v attempts", m["status"], m["attempts"])
	}
}

// TestRecipientsViewAndRetryOfAPartiallyFailedMessage: a message whose recipients had their own
// outcomes (one sent, one refused with 550 5.7.1, as the delivery engine records them) shows each
// recipient's state, is found by the refused recipient in the failure queue, and its retry
// queues that recipient alone again.
func TestRecipientsViewAndRetryOfAPartiallyFailedMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/messages", with("to", []string{"ok@example.com", "Blocked@example.com"}))
	if r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	ctx := context.Background()
	claimed, err := b.store.MessageClaim(ctx, store.MessageClaimParams{Owner: "test-worker", Stream: store.StreamTransactional,
		Limit: 10, Now: testNow, LeaseUntil: testNow.Add(time.Minute)})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %d messages, %v", len(claimed), err)
	}
	refusal := &store.DeliveryError{Code: 550, Enhanced: "5.7.1", Text: "Blocked for now", Stage: "rcpt", Attempt: 1, At: testNow}
	if n, err := b.store.MessageFinish(ctx, testNow, []store.MessageFinishParams{{ID: id, Owner: "test-worker",
		Status: store.StatusPartiallyFailed, Attempts: 1, SentAt: testNow, Split: true, Recipients: []store.Recipient{
			{Email: "ok@example.com", Status: store.RecipientSent, Attempts: 1, SentAt: testNow},
			{Email: "blocked@example.com", Status: store.RecipientFailed, Attempts: 1, LastError: refusal}},
		Events: []store.Event{{Type: store.EventFailed}}}}); err != nil || n != 1 {
		t.Fatalf("finish = %d, %v", n, err)
	}

	states := func(m map[string]any) string {
		var s []string
		for _, rc := range m["recipients"].([]any) {
			rc := rc.(map[string]any)
			s = append(s, fmt.Sprintf("%s=%s/%v/sent:%v", rc["email"], rc["status"], rc["attempts"], rc["sent_at"] != nil))
		}
		return strings.Join(s, " ")
	}
	m := b.do("GET", "/v1/messages/"+id, nil).json(t)
	if got, want := states(m), "blocked@example.com=failed/1/sent:false ok@example.com=sent/1/sent:true"; m["status"] != "partially_failed" || got != want {
		t.Errorf("view: %s with %s, want partially_failed with %s", m["status"], got, want)
	}
	if rc := m["recipients"].([]any)[0].(map[string]any); rc["last_error"] == nil {
		t.Errorf("the refused recipient's last error is not shown: %v", rc)
	}
	for _, tc := range []struct {
		query string
		found bool
	}{
		{"status=failed&recipient=blocked@example.com", true},
		{"status=failed&recipient=BLOCKED@Example.com", true},
		{"status=failed&recipient=ok@example.com", false},
		{"status=sent&recipient=ok@example.com", true},
		{"status=partially_failed", true},
		{"status=failed", false},
	} {
		var found bool
		for _, d := range b.do("GET", "/v1/messages?"+tc.query, nil).json(t)["data"].([]any) {
			found = found || d.(map[string]any)["id"] == id
		}
		if found != tc.found {
			t.Errorf("GET /v1/messages?%s found it: %v, want %v", tc.query, found, tc.found)
		}
	}

	r = b.do("POST", "/v1/messages/"+id+"/retry", nil)
	if r.status != 200 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	m = r.json(t)
	if got, want := states(m), "blocked@example.com=queued/0/sent:false ok@example.com=sent/1/sent:true"; m["status"] != "queued" || got != want {
		t.Errorf("after retry: %s with %s, want queued with %s", m["status"], got, want)
	}
}

// A message whose body retention purged: /raw and a retry answer 410 naming when and why, its
// metadata and timeline stay readable, and a retry by filter leaves it alone.
func TestBodyPurged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.fail(valid(), &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown", Stage: "rcpt"})
	purgedAt := testNow.Add(30 * 24 * time.Hour)
	if n, err := b.store.MessageBodyPurge(context.Background(), store.PurgeParams{Before: testNow.Add(time.Second), Limit: 10, Now: purgedAt}); err != nil || n != 1 {
		t.Fatalf("MessageBodyPurge = %d, %v", n, err)
	}
	for _, r := range []response{b.do("GET", "/v1/messages/"+id+"/raw", nil), b.do("POST", "/v1/messages/"+id+"/retry", nil)} {
		p := r.json(t)
		detail, _ := p["detail"].(string)
		if r.status != 410 || !strings.Contains(detail, purgedAt.Format(time.RFC3339)) || !strings.Contains(detail, "POSTIE_RETAIN_BODIES") {
			t.Errorf("on a purged body: %d %s; want 410 saying when and why", r.status, r.body)
		}
	}
	if r := b.do("GET", "/v1/messages/"+id, nil); r.status != 200 || r.json(t)["status"] != "failed" {
		t.Errorf("GET a purged message: %d %s; want it, failed", r.status, r.body)
	}
	if r := b.do("POST", "/v1/messages/retry", nil); r.status != 200 || r.json(t)["retried"] != float64(0) {
		t.Errorf("retry by filter: %d %s; want none retried", r.status, r.body)
	}
	if r := b.do("GET", "/v1/messages/msg_nope/raw", nil); r.status != 404 {
		t.Errorf("raw of no message: %d, want 404", r.status)
	}
}
