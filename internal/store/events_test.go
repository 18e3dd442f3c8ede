package store

import (
	"encoding/json"
	"testing"
	"time"
)

// TestEventDetailRoundTrip: every detail postie writes, and the details earlier versions wrote
// (rejected, suppressed), decode into EventDetail and encode back to the same JSON, so events
// already stored read as they were written.
func TestEventDetailRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ typ, json string }{
		{EventSent, `{"transport":"smtp","response":"250 2.0.0 Ok: queued as 1A2B","provider_id":"1A2B","attempt":1,"recipients":[{"recipient":"a@example.com"}]}`},
		{EventDeferred, `{"transport":"smtp","attempt":2,"error":{"code":452,"enhanced":"4.2.2","text":"Mailbox full","stage":"rcpt","attempt":2,"at":"2026-12-06T10:00:00Z"},"class":"temporary","next_attempt_at":"2026-12-06T10:10:00Z","possible_duplicate":true,"recipients":[{"recipient":"b@example.com","error":{"code":452,"enhanced":"4.2.2","text":"Mailbox full","stage":"rcpt","attempt":2,"at":"2026-12-06T10:00:00Z"}}]}`},
		{EventDeferred, `{"transport":"smtp","error":{"text":"connection refused","stage":"connect","at":"2026-12-06T10:00:00Z"},"class":"unreachable","attempt_counted":false,"next_attempt_at":"2026-12-06T10:00:02Z","recipients":[{"recipient":"a@example.com","error":{"text":"connection refused","stage":"connect","at":"2026-12-06T10:00:00Z"}}]}`},
		{EventFailed, `{"transport":"smtp","attempt":1,"error":{"code":550,"enhanced":"5.1.1","text":"no such user","stage":"rcpt","attempt":1,"at":"2026-12-06T10:00:00Z"},"class":"permanent","recipients":[{"recipient":"c@example.com","error":{"code":550,"enhanced":"5.1.1","text":"no such user","stage":"rcpt","attempt":1,"at":"2026-12-06T10:00:00Z"},"suppressed":true}]}`},
		{EventFailed, `{"error":{"enhanced":"4.4.7","text":"message expired before it could be delivered","stage":"queue","at":"2026-12-06T10:00:00Z"},"reason":"expired","recipients":[{"recipient":"a@example.com","error":{"enhanced":"4.4.7","text":"message expired before it could be delivered","stage":"queue","at":"2026-12-06T10:00:00Z"}}]}`},
		{EventSuppressed, `{"recipients":[{"recipient":"d@example.com","reason":"complaint"}]}`},
		{EventCancelled, `{"recipients":[{"recipient":"b@example.com"}]}`},
		{EventRetried, `{"attempts":0}`},
		{EventRetried, `{"attempts":4,"recipients":[{"recipient":"b@example.com"}]}`},
		{EventLeaseExpired, `{"owner":"web-1:8080/4242/0a1b"}`},
		{EventReleased, `{"owner":"web-1:8080/4242/0a1b"}`},
		// Written before each recipient had its own state.
		{EventSent, `{"transport":"smtp","response":"250 ok","attempt":1,"rejected":[{"recipient":"x@example.com","error":{"code":550,"text":"no","at":"2026-12-01T10:00:00Z"},"suppressed":true}]}`},
		{EventFailed, `{"transport":"smtp","attempt":1,"error":{"code":550,"enhanced":"5.1.1","text":"no","at":"2026-12-01T10:00:00Z"},"class":"permanent","suppressed":["x@example.com"]}`},
	} {
		e := Event{Type: tc.typ, Detail: json.RawMessage(tc.json)}
		d, err := e.DecodeDetail()
		if err != nil || d == nil {
			t.Fatalf("%s %s: %v, %v", tc.typ, tc.json, d, err)
		}
		back := NewEvent(tc.typ, time.Time{}, d)
		if !sameJSON(t, back.Detail, []byte(tc.json)) {
			t.Errorf("%s detail changed in a round trip:\n got  %s\n want %s", tc.typ, back.Detail, tc.json)
		}
	}
	if d, err := (Event{Type: EventQueued}).DecodeDetail(); d != nil || err != nil {
		t.Errorf("an event without a detail decodes to %v, %v", d, err)
	}
	if _, err := (Event{Type: EventSent, Detail: json.RawMessage(`["a"]`)}).DecodeDetail(); err == nil {
		t.Error("a detail that is not an object decoded")
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
