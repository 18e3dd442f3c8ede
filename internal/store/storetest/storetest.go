// Package storetest is the conformance suite of store.Store: every driver runs it, unchanged, and
// must pass it. It uses only the Store interface.
//
// A driver's test calls Run with a function that opens a fresh, empty, migrated store for one
// subtest and closes it when that subtest ends (t.Cleanup):
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "postie.db"), sqlite.Options{Migrate: true})
//			…
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// All subtests run in parallel. Times handed to the store have microsecond precision, the finest
// both SQLite (unix µs) and PostgreSQL (timestamptz) keep. Message builds the test message the
// suite and the drivers' own tests share.
package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// t0 is the suite's "now"; tests move time by adding to it, never by sleeping.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Run runs the conformance suite. open must return a fresh, empty, migrated store and close it
// when its test ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"AcceptGetRoundTrip", testAcceptGetRoundTrip},
		{"AcceptRaw", testAcceptRaw},
		{"AcceptEvents", testAcceptEvents},
		{"AcceptAtomic", testAcceptAtomic},
		{"AcceptRejectsStatus", testAcceptRejectsStatus},
		{"IdempotencyReplay", testIdempotencyReplay},
		{"IdempotencyMismatch", testIdempotencyMismatch},
		{"IdempotencyExpiry", testIdempotencyExpiry},
		{"IdempotencyPerAPIKey", testIdempotencyPerAPIKey},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"IdempotencyPurge", testIdempotencyPurge},
		{"ListFilters", testListFilters},
		{"ListPagination", testListPagination},
		{"ListLimits", testListLimits},
		{"Cancel", testCancel},
		{"Claim", testClaim},
		{"ClaimConcurrent", testClaimConcurrent},
		{"Finish", testFinish},
		{"FinishRejects", testFinishRejects},
		{"Rescue", testRescue},
		{"ReleaseLeases", testReleaseLeases},
		{"ReleaseLeasesByPrefix", testReleaseLeasesByPrefix},
		{"NextDue", testNextDue},
		{"Wakeups", testWakeups},
		{"APIKeys", testAPIKeys},
		{"APIKeyListDelete", testAPIKeyListDelete},
		{"Suppressions", testSuppressions},
		{"SuppressionList", testSuppressionList},
		{"FinishSuppress", testFinishSuppress},
		{"RenewLeases", testRenewLeases},
		{"Retry", testRetry},
		{"RetryFilter", testRetryFilter},
		{"RetryMany", testRetryMany},
		{"TemplatePutGet", testTemplatePutGet},
		{"TemplatePutConcurrent", testTemplatePutConcurrent},
		{"TemplateList", testTemplateList},
		{"TemplateOrigin", testTemplateOrigin},
		{"TemplateDelete", testTemplateDelete},
		{"MessageRecipients", testMessageRecipients},
		{"FinishSplit", testFinishSplit},
		{"EventDetails", testEventDetails},
		{"ListRecipientState", testListRecipientState},
		{"RetrySplit", testRetrySplit},
		{"CancelSplit", testCancelSplit},
		{"SourceCRUD", testSourceCRUD},
		{"SourceClaim", testSourceClaim},
		{"SourceClaimConcurrent", testSourceClaimConcurrent},
		{"ContactUpsert", testContactUpsert},
		{"ContactIdentity", testContactIdentity},
		{"ContactAttributes", testContactAttributes},
		{"Subscriptions", testSubscriptions},
		{"Lists", testLists},
		{"ContactList", testContactList},
		{"ContactDelete", testContactDelete},
		{"ContactErase", testContactErase},
		{"ContactConcurrent", testContactConcurrent},
		{"ContactUpsertTwice", testContactUpsertTwice},
		{"AcceptClaims", testAcceptClaims},
		{"AcceptClaimsBroadcast", testAcceptClaimsBroadcast},
		{"EventOrder", testEventOrder},
		{"Attributes", testAttributes},
		{"SegmentCRUD", testSegmentCRUD},
		{"Secrets", testSecrets},
		{"SuppressionScopes", testSuppressionScopes},
		{"MessageListID", testMessageListID},
	}
	tests = append(tests, importCases...)
	tests = append(tests, campaignCases...)
	tests = append(tests, webhookCases...)
	tests = append(tests, notifyCases...)
	tests = append(tests, inboundCases...)
	tests = append(tests, queueStatsCases...)
	tests = append(tests, retentionCases...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
	t.Run("Segments", func(t *testing.T) { RunSegments(t, open, SeedSegmentFixture) })
}

// ---- helpers ----

func accept(t *testing.T, s store.Store, now time.Time, msgs ...store.NewMessage) {
	t.Helper()
	res, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: msgs, Now: now})
	if err != nil {
		t.Fatalf("MessagesAccept: %v", err)
	}
	if res.Replayed {
		t.Fatal("MessagesAccept without idempotency key replayed")
	}
}

func get(t *testing.T, s store.Store, msgID string) store.Message {
	t.Helper()
	m, err := s.MessageGet(t.Context(), msgID)
	if err != nil {
		t.Fatalf("MessageGet(%s): %v", msgID, err)
	}
	return m
}

func claim(t *testing.T, s store.Store, p store.MessageClaimParams) []store.ClaimedMessage {
	t.Helper()
	got, err := s.MessageClaim(t.Context(), p)
	if err != nil {
		t.Fatalf("MessageClaim(%+v): %v", p, err)
	}
	return got
}

// claimedOf is what MessageClaim returns for m, stored with raw and claimed.
func claimedOf(m store.Message, raw []byte) store.ClaimedMessage {
	return store.ClaimedMessage{ID: m.ID, Stream: m.Stream, ListID: m.ListID, EnvelopeFrom: m.EnvelopeFrom,
		Recipients: m.Recipients, Attempts: m.Attempts, MaxAttempts: m.MaxAttempts,
		NextAttemptAt: m.NextAttemptAt, ExpiresAt: m.ExpiresAt, LastError: m.LastError, Raw: raw}
}

func claimedIDs(c []store.ClaimedMessage) []string {
	ids := make([]string, len(c))
	for i := range c {
		ids[i] = c[i].ID
	}
	return ids
}

func messageIDs(ms []store.Message) []string {
	ids := make([]string, len(ms))
	for i := range ms {
		ids[i] = ms[i].ID
	}
	return ids
}

func eventTypes(t *testing.T, s store.Store, msgID string) []string {
	t.Helper()
	evs, err := s.MessageEvents(t.Context(), msgID)
	if err != nil {
		t.Fatalf("MessageEvents(%s): %v", msgID, err)
	}
	types := make([]string, len(evs))
	for i, e := range evs {
		types[i] = e.Type
	}
	return types
}

// cmpOpts compares rows semantically: JSON by value (a driver may normalise it), empty and nil
// slices and maps alike, times with time.Time.Equal (go-cmp's default for types with Equal).
var cmpOpts = cmp.Options{
	cmp.Comparer(jsonEqual),
	cmp.FilterValues(bothEmpty, cmp.Comparer(func(_, _ any) bool { return true })),
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

func bothEmpty(x, y any) bool {
	vx, vy := reflect.ValueOf(x), reflect.ValueOf(y)
	if !vx.IsValid() || !vy.IsValid() || vx.Type() != vy.Type() || vx.Type() == rawMessageType {
		return false
	}
	switch vx.Kind() {
	case reflect.Slice, reflect.Map:
		return vx.Len() == 0 && vy.Len() == 0
	}
	return false
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// ---- tests ----

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testAcceptGetRoundTrip(t *testing.T, s store.Store) {
	full := Message(t0, func(m *store.Message) {
		m.Stream = store.StreamBroadcast
		m.Status = store.StatusScheduled
		m.From = `"Shop, Inc." <news@shop.example>`
		m.To = []string{"Ann <ann@example.com>", "bo@example.com"}
		m.Cc = []string{"Cy <cy@example.net>"}
		m.Bcc = []string{"audit@shop.example"}
		m.ReplyTo = "help@shop.example"
		m.Subject = "Ünïcode — subject ✓"
		m.Template = "newsletter"
		m.TemplateVersion = 7
		m.Locale = "pt-BR"
		m.Data = json.RawMessage(`{"items":[1,2,3],"name":"Ann","nested":{"ok":true}}`)
		m.Headers = map[string]string{"X-Order": "A-1", "List-Unsubscribe": "<https://u.example/x>"}
		m.Tags = []string{"news", "weekly"}
		m.Metadata = map[string]string{"customer": "c-42", "source": "crm"}
		m.Attachments = []store.AttachmentInfo{
			{Filename: "invoice.pdf", ContentType: "application/pdf", Size: 12345},
			{Filename: "logo.png", ContentType: "image/png", ContentID: "logo@shop", Size: 999},
		}
		m.EnvelopeFrom = "bounces+news@shop.example"
		m.Recipients = []string{"ann@example.com", "bo@example.com", "cy@example.net", "audit@shop.example"}
		m.Attempts = 1
		m.MaxAttempts = 6
		m.NextAttemptAt = t0.Add(2 * time.Hour)
		m.LeaseOwner = "node-a/3"
		m.LeaseUntil = t0.Add(90 * time.Second)
		m.LastError = &store.DeliveryError{Code: 451, Enhanced: "4.3.0", Text: "try later", Stage: "data",
			Attempt: 1, At: t0.Add(-time.Minute)}
		m.ProviderID = "relay-queue-123"
		m.IdempotencyKey = "idem-1"
		m.APIKeyID = "key_abc"
		m.CampaignID = "cmp_123"
		m.CreatedAt = t0.Add(123456 * time.Microsecond)
		m.SendAt = t0.Add(2 * time.Hour)
		m.SentAt = t0.Add(3 * time.Hour)
		m.ExpiresAt = t0.Add(26 * time.Hour)
		m.UpdatedAt = t0.Add(time.Second)
	})
	minimal := store.NewMessage{Message: store.Message{
		ID: id.New(id.Message), Stream: store.StreamTransactional, Status: store.StatusQueued,
		From: "a@example.com", To: []string{"b@example.com"}, EnvelopeFrom: "a@example.com",
		Recipients: []string{"b@example.com"}, Size: 3, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0,
	}, Raw: []byte("x\r\n")}
	accept(t, s, t0, full, minimal)

	for _, want := range []store.Message{full.Message, minimal.Message} {
		got := get(t, s, want.ID)
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("MessageGet(%s) mismatch (-want +got):\n%s", want.ID, diff)
		}
	}
	if got := get(t, s, minimal.Message.ID); got.LastError != nil || !got.SentAt.IsZero() ||
		!got.LeaseUntil.IsZero() || !got.SendAt.IsZero() || got.Data != nil {
		t.Errorf("zero fields did not read back as zero: %+v", got)
	}

	_, err := s.MessageGet(t.Context(), id.New(id.Message))
	wantErr(t, "MessageGet(unknown)", err, store.ErrNotFound)
}

func testAcceptRaw(t *testing.T, s store.Store) {
	binary := Message(t0)
	binary.Raw = append([]byte("Subject: bytes\r\n\r\n"), 0x00, 0xff, 0xfe, '\r', '\n', 0x80)
	big := Message(t0)
	big.Raw = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	plain := Message(t0)
	accept(t, s, t0, binary, big, plain)

	for _, m := range []store.NewMessage{binary, big, plain} {
		raw, err := s.MessageRaw(t.Context(), m.Message.ID)
		if err != nil {
			t.Fatalf("MessageRaw: %v", err)
		}
		if !bytes.Equal(raw, m.Raw) {
			t.Errorf("MessageRaw(%s): %d bytes, want the %d bytes stored", m.Message.ID, len(raw), len(m.Raw))
		}
	}
	_, err := s.MessageRaw(t.Context(), id.New(id.Message))
	wantErr(t, "MessageRaw(unknown)", err, store.ErrNotFound)

	// MessageRawPart: the MIME read in parts of several sizes is the MIME stored; a part past
	// the end is empty.
	for _, m := range []store.NewMessage{binary, big, plain} {
		for _, n := range []int{7, 300 << 10, 4 << 20} {
			if n < 1024 && len(m.Raw) > 1024 {
				continue // a query per 7 octets of 1 MiB: slow, and no different
			}
			var got []byte
			for {
				part, size, err := s.MessageRawPart(t.Context(), m.Message.ID, int64(len(got)), n)
				if err != nil {
					t.Fatalf("MessageRawPart(%s, %d, %d): %v", m.Message.ID, len(got), n, err)
				}
				if size != int64(len(m.Raw)) {
					t.Fatalf("MessageRawPart(%s): size %d, want %d", m.Message.ID, size, len(m.Raw))
				}
				if len(part) > n {
					t.Fatalf("MessageRawPart(%s, %d, %d): %d octets", m.Message.ID, len(got), n, len(part))
				}
				got = append(got, part...)
				if len(part) < n || len(got) == len(m.Raw) {
					break
				}
			}
			if !bytes.Equal(got, m.Raw) {
				t.Errorf("MessageRawPart(%s) in parts of %d: %d bytes, want the %d bytes stored", m.Message.ID, n, len(got), len(m.Raw))
			}
		}
		part, _, err := s.MessageRawPart(t.Context(), m.Message.ID, int64(len(m.Raw))+10, 100)
		if err != nil || len(part) != 0 {
			t.Errorf("MessageRawPart past the end: %d octets, %v; want none", len(part), err)
		}
	}
	_, _, err = s.MessageRawPart(t.Context(), id.New(id.Message), 0, 100)
	wantErr(t, "MessageRawPart(unknown)", err, store.ErrNotFound)
}

func testAcceptEvents(t *testing.T, s store.Store) {
	queued := Message(t0.Add(time.Second))
	scheduled := Message(t0.Add(2*time.Second), func(m *store.Message) {
		m.Status = store.StatusScheduled
		m.SendAt = t0.Add(time.Hour)
		m.NextAttemptAt = m.SendAt
	})
	accept(t, s, t0.Add(5*time.Second), queued, scheduled)

	for _, tc := range []struct {
		m    store.NewMessage
		want string
	}{{queued, store.EventQueued}, {scheduled, store.EventScheduled}} {
		evs, err := s.MessageEvents(t.Context(), tc.m.Message.ID)
		if err != nil {
			t.Fatalf("MessageEvents: %v", err)
		}
		if len(evs) != 1 {
			t.Fatalf("MessageEvents(%s) = %+v, want one %q event", tc.m.Message.ID, evs, tc.want)
		}
		e := evs[0]
		// A driver may derive this first event from the row instead of storing it (ID 0).
		if e.Type != tc.want || e.MessageID != tc.m.Message.ID || !e.At.Equal(tc.m.Message.CreatedAt) ||
			len(e.Detail) != 0 {
			t.Errorf("event = %+v, want type %q for %s at %v (CreatedAt), with no detail",
				e, tc.want, tc.m.Message.ID, tc.m.Message.CreatedAt)
		}
	}

	// The timeline is oldest first.
	if _, err := s.MessageCancel(t.Context(), scheduled.Message.ID, t0.Add(time.Minute)); err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	evs, err := s.MessageEvents(t.Context(), scheduled.Message.ID)
	if err != nil {
		t.Fatalf("MessageEvents: %v", err)
	}
	if len(evs) != 2 || evs[0].Type != store.EventScheduled || evs[1].Type != store.EventCancelled ||
		evs[1].ID <= evs[0].ID || !evs[1].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("timeline after cancel = %+v, want scheduled then cancelled (at now)", evs)
	}
}

func testAcceptAtomic(t *testing.T, s store.Store) {
	a := Message(t0)
	dup := Message(t0, func(m *store.Message) { m.ID = a.Message.ID })
	_, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{
		Messages: []store.NewMessage{Message(t0), a, dup}, Now: t0})
	if err == nil {
		t.Fatal("MessagesAccept with a duplicate id succeeded")
	}
	got, err := s.MessageList(t.Context(), store.MessageListParams{})
	if err != nil {
		t.Fatalf("MessageList: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("a failed MessagesAccept stored %d messages, want none", len(got))
	}

	// An id that is already stored fails the second accept and changes nothing.
	accept(t, s, t0, a)
	_, err = s.MessagesAccept(t.Context(), store.MessagesAcceptParams{
		Messages: []store.NewMessage{Message(t0), dup}, Now: t0})
	if err == nil {
		t.Fatal("MessagesAccept of an existing id succeeded")
	}
	if got, _ := s.MessageList(t.Context(), store.MessageListParams{}); len(got) != 1 {
		t.Fatalf("after a failed accept the store holds %d messages, want 1", len(got))
	}
	if diff := cmp.Diff(a.Message, get(t, s, a.Message.ID), cmpOpts); diff != "" {
		t.Errorf("stored message changed (-want +got):\n%s", diff)
	}
}

func testAcceptRejectsStatus(t *testing.T, s store.Store) {
	for _, st := range []store.Status{store.StatusSending, store.StatusSent, store.StatusFailed, ""} {
		m := Message(t0, func(m *store.Message) { m.Status = st })
		_, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0})
		if err == nil {
			t.Errorf("MessagesAccept with status %q succeeded", st)
		}
		if _, err := s.MessageGet(t.Context(), m.Message.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("message with status %q was stored (MessageGet: %v)", st, err)
		}
	}
}

func idem(apiKey, key, hash string, now time.Time) *store.Idempotency {
	return &store.Idempotency{
		APIKeyID: apiKey, Key: key, RequestHash: []byte(hash), StatusCode: 202,
		Response:  []byte(`{"hash":"` + hash + `","at":"` + now.Format(time.RFC3339) + `"}`),
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
}

func acceptIdem(t *testing.T, s store.Store, now time.Time, k *store.Idempotency, msgs ...store.NewMessage) (store.MessagesAcceptResult, error) {
	t.Helper()
	return s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: msgs, Idempotency: k, Now: now})
}

func testIdempotencyReplay(t *testing.T, s store.Store) {
	first := idem("key_a", "order-A-1", "h1", t0)
	m1 := Message(t0)
	res, err := acceptIdem(t, s, t0, first, m1)
	if err != nil || res.Replayed {
		t.Fatalf("first accept = %+v, %v; want stored, not replayed", res, err)
	}

	again := idem("key_a", "order-A-1", "h1", t0.Add(time.Hour)) // same request, later
	again.StatusCode = 500                                       // what the retry would have answered
	m2 := Message(t0.Add(time.Hour))
	res, err = acceptIdem(t, s, t0.Add(time.Hour), again, m2)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	want := store.MessagesAcceptResult{Replayed: true, StatusCode: first.StatusCode, Response: first.Response}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("replay result mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.MessageGet(t.Context(), m2.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a replayed request inserted its message (MessageGet: %v)", err)
	}
	get(t, s, m1.Message.ID)
}

func testIdempotencyMismatch(t *testing.T, s store.Store) {
	if _, err := acceptIdem(t, s, t0, idem("key_a", "k", "h1", t0), Message(t0)); err != nil {
		t.Fatalf("first accept: %v", err)
	}
	m := Message(t0)
	_, err := acceptIdem(t, s, t0.Add(time.Minute), idem("key_a", "k", "h2", t0.Add(time.Minute)), m)
	wantErr(t, "accept with the same key and another body", err, store.ErrIdempotencyMismatch)
	if _, err := s.MessageGet(t.Context(), m.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused request inserted its message (MessageGet: %v)", err)
	}
}

func testIdempotencyExpiry(t *testing.T, s store.Store) {
	if _, err := acceptIdem(t, s, t0, idem("key_a", "k", "h1", t0), Message(t0)); err != nil {
		t.Fatalf("first accept: %v", err)
	}
	// At ExpiresAt the record is expired: a different request with the key is accepted and
	// replaces it.
	later := t0.Add(24 * time.Hour)
	second := idem("key_a", "k", "h2", later)
	m := Message(later)
	res, err := acceptIdem(t, s, later, second, m)
	if err != nil || res.Replayed {
		t.Fatalf("accept after expiry = %+v, %v; want stored", res, err)
	}
	get(t, s, m.Message.ID)

	res, err = acceptIdem(t, s, later.Add(time.Hour), idem("key_a", "k", "h2", later.Add(time.Hour)), Message(later))
	if err != nil || !res.Replayed || !bytes.Equal(res.Response, second.Response) {
		t.Fatalf("repeat of the replacing request = %+v, %v; want the replacing response replayed", res, err)
	}
	_, err = acceptIdem(t, s, later.Add(time.Hour), idem("key_a", "k", "h1", later.Add(time.Hour)), Message(later))
	wantErr(t, "the expired request again", err, store.ErrIdempotencyMismatch)
}

func testIdempotencyPerAPIKey(t *testing.T, s store.Store) {
	a, b := Message(t0), Message(t0)
	if _, err := acceptIdem(t, s, t0, idem("key_a", "same", "h1", t0), a); err != nil {
		t.Fatalf("accept for key_a: %v", err)
	}
	res, err := acceptIdem(t, s, t0, idem("key_b", "same", "h2", t0), b)
	if err != nil || res.Replayed {
		t.Fatalf("accept for key_b with key_a's idempotency key = %+v, %v; want stored", res, err)
	}
	get(t, s, a.Message.ID)
	get(t, s, b.Message.ID)
}

func testIdempotencyConcurrent(t *testing.T, s store.Store) {
	const n = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stored   int
		replayed int
		errs     []error
	)
	for i := range n {
		wg.Go(func() {
			res, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{
				Messages:    []store.NewMessage{Message(t0)},
				Idempotency: idem("key_a", "burst", "h1", t0),
				Now:         t0.Add(time.Duration(i) * time.Millisecond),
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case res.Replayed:
				replayed++
			default:
				stored++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || stored != 1 || replayed != n-1 {
		t.Fatalf("%d concurrent accepts with one key: %d stored, %d replayed, errors %v; want 1 and %d",
			n, stored, replayed, errs, n-1)
	}
	got, err := s.MessageList(t.Context(), store.MessageListParams{})
	if err != nil || len(got) != 1 {
		t.Fatalf("MessageList = %d messages, %v; want exactly 1", len(got), err)
	}
}

func testIdempotencyPurge(t *testing.T, s store.Store) {
	for i, ttl := range []time.Duration{time.Hour, 2 * time.Hour, 48 * time.Hour} {
		k := idem("key_a", fmt.Sprintf("k%d", i), "h1", t0)
		k.ExpiresAt = t0.Add(ttl)
		if _, err := acceptIdem(t, s, t0, k, Message(t0)); err != nil {
			t.Fatalf("accept: %v", err)
		}
	}
	n, err := s.IdempotencyPurge(t.Context(), t0.Add(3*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("IdempotencyPurge = %d, %v; want 2", n, err)
	}
	// The purged key is free again, even for a request "in the past".
	if res, err := acceptIdem(t, s, t0, idem("key_a", "k0", "other", t0), Message(t0)); err != nil || res.Replayed {
		t.Fatalf("accept with a purged key = %+v, %v; want stored", res, err)
	}
	// The unexpired one is kept.
	_, err = acceptIdem(t, s, t0.Add(3*time.Hour), idem("key_a", "k2", "other", t0), Message(t0))
	wantErr(t, "accept with the kept key", err, store.ErrIdempotencyMismatch)
	if n, err := s.IdempotencyPurge(t.Context(), t0.Add(3*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second IdempotencyPurge = %d, %v; want 0", n, err)
	}
}

func testListFilters(t *testing.T, s store.Store) {
	a := Message(t0, func(m *store.Message) {
		m.Recipients = []string{"Ann@Example.com"}
	})
	b := Message(t0.Add(time.Minute), func(m *store.Message) {
		m.Stream = store.StreamBroadcast
		m.Tags = []string{"news", "weekly"}
		m.Recipients = []string{"bob@example.com"}
		m.CampaignID = "cmp_1"
	})
	c := Message(t0.Add(2*time.Minute), func(m *store.Message) {
		m.Status = store.StatusScheduled
		m.NextAttemptAt = t0.Add(time.Hour)
		m.SendAt = m.NextAttemptAt
		m.Tags = []string{"vip", "orders"}
		m.Recipients = []string{"carl@example.com", "ann@example.com"}
	})
	d := Message(t0.Add(3*time.Minute), func(m *store.Message) {
		m.Tags = nil
		m.Recipients = []string{"dora@example.com"}
	})
	accept(t, s, t0.Add(3*time.Minute), a, b, c, d)
	if _, err := s.MessageCancel(t.Context(), d.Message.ID, t0.Add(4*time.Minute)); err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	A, B, C, D := a.Message.ID, b.Message.ID, c.Message.ID, d.Message.ID

	for _, tc := range []struct {
		name string
		p    store.MessageListParams
		want []string
	}{
		{"all", store.MessageListParams{}, []string{D, C, B, A}},
		{"status", store.MessageListParams{Statuses: []store.Status{store.StatusQueued}}, []string{B, A}},
		{"statuses", store.MessageListParams{Statuses: []store.Status{store.StatusScheduled, store.StatusCancelled}}, []string{D, C}},
		{"status none", store.MessageListParams{Statuses: []store.Status{store.StatusSent}}, nil},
		{"stream", store.MessageListParams{Stream: store.StreamBroadcast}, []string{B}},
		{"tag", store.MessageListParams{Tag: "orders"}, []string{C, A}},
		{"tag exact", store.MessageListParams{Tag: "order"}, nil},
		{"recipient case-insensitive", store.MessageListParams{Recipient: "ANN@example.COM"}, []string{C, A}},
		{"recipient", store.MessageListParams{Recipient: "bob@example.com"}, []string{B}},
		{"campaign", store.MessageListParams{CampaignID: "cmp_1"}, []string{B}},
		{"created after (inclusive)", store.MessageListParams{CreatedAfter: t0.Add(time.Minute)}, []string{D, C, B}},
		{"created before (exclusive)", store.MessageListParams{CreatedBefore: t0.Add(2 * time.Minute)}, []string{B, A}},
		{"created range", store.MessageListParams{CreatedAfter: t0.Add(time.Minute), CreatedBefore: t0.Add(3 * time.Minute)}, []string{C, B}},
		{"combined", store.MessageListParams{Stream: store.StreamTransactional, Tag: "orders",
			Statuses: []store.Status{store.StatusQueued}, Recipient: "ann@example.com"}, []string{A}},
		{"limit", store.MessageListParams{Limit: 2}, []string{D, C}},
		{"cursor", store.MessageListParams{Cursor: C}, []string{B, A}},
		{"cursor and filter", store.MessageListParams{Cursor: D, Tag: "orders", Limit: 1}, []string{C}},
	} {
		got, err := s.MessageList(t.Context(), tc.p)
		if err != nil {
			t.Fatalf("%s: MessageList: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, messageIDs(got), cmpOpts); diff != "" {
			t.Errorf("%s: MessageList(%+v) ids (-want +got):\n%s", tc.name, tc.p, diff)
		}
	}

	// Listed rows are complete rows.
	got, err := s.MessageList(t.Context(), store.MessageListParams{Stream: store.StreamBroadcast})
	if err != nil || len(got) != 1 {
		t.Fatalf("MessageList = %v, %v", got, err)
	}
	if diff := cmp.Diff(b.Message, got[0], cmpOpts); diff != "" {
		t.Errorf("listed row mismatch (-want +got):\n%s", diff)
	}
}

func testListPagination(t *testing.T, s store.Store) {
	const n = 120
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = Message(t0.Add(time.Duration(i) * time.Second))
	}
	accept(t, s, t0.Add(n*time.Second), msgs...)

	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		got, err := s.MessageList(t.Context(), store.MessageListParams{Cursor: cursor, Limit: 25})
		if err != nil {
			t.Fatalf("MessageList: %v", err)
		}
		if len(got) == 0 {
			break
		}
		if len(got) > 25 {
			t.Fatalf("page %d has %d rows, want at most 25", page, len(got))
		}
		seen = append(seen, messageIDs(got)...)
		cursor = got[len(got)-1].ID
		if page > n {
			t.Fatal("pagination does not end")
		}
	}
	want := make([]string, n)
	for i := range msgs {
		want[n-1-i] = msgs[i].Message.ID
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("pages together (-want +got):\n%s", diff)
	}
}

func testListLimits(t *testing.T, s store.Store) {
	const n = 1005
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = Message(t0)
	}
	accept(t, s, t0, msgs...)
	for _, tc := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {7, 7}, {1000, 1000}, {5000, 1000}} {
		got, err := s.MessageList(t.Context(), store.MessageListParams{Limit: tc.limit})
		if err != nil {
			t.Fatalf("MessageList: %v", err)
		}
		if len(got) != tc.want {
			t.Errorf("MessageList(Limit: %d) returned %d rows, want %d", tc.limit, len(got), tc.want)
		}
	}
}

func testCancel(t *testing.T, s store.Store) {
	ctx := t.Context()
	queued := Message(t0)
	scheduled := Message(t0, func(m *store.Message) {
		m.Status = store.StatusScheduled
		m.NextAttemptAt = t0.Add(time.Hour)
		m.SendAt = m.NextAttemptAt
	})
	deferred := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-time.Minute) })
	sending := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-10 * time.Second) })
	sent := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-30 * time.Second) })
	accept(t, s, t0, queued, scheduled, deferred, sending, sent)

	// Claim deferred, sent and sending (in due order); finish the first two as deferred and sent.
	got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 3,
		Now: t0.Add(-5 * time.Second), LeaseUntil: t0.Add(time.Minute)})
	if diff := cmp.Diff([]string{deferred.Message.ID, sent.Message.ID, sending.Message.ID}, claimedIDs(got)); diff != "" {
		t.Fatalf("claim (-want +got):\n%s", diff)
	}
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{
		{ID: deferred.Message.ID, Owner: "w", Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: t0.Add(10 * time.Minute)},
		{ID: sent.Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: t0},
	}); err != nil || n != 2 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}

	now := t0.Add(5 * time.Minute)
	for _, m := range []store.NewMessage{queued, scheduled, deferred} {
		before := get(t, s, m.Message.ID)
		got, err := s.MessageCancel(ctx, m.Message.ID, now)
		if err != nil {
			t.Fatalf("MessageCancel(%s, %s): %v", m.Message.ID, before.Status, err)
		}
		want := before
		want.Status = store.StatusCancelled
		want.UpdatedAt = now
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("MessageCancel of a %s message returned (-want +got):\n%s", before.Status, diff)
		}
		if diff := cmp.Diff(want, get(t, s, m.Message.ID), cmpOpts); diff != "" {
			t.Errorf("cancelled %s message reads back (-want +got):\n%s", before.Status, diff)
		}
		types := eventTypes(t, s, m.Message.ID)
		if len(types) == 0 || types[len(types)-1] != store.EventCancelled {
			t.Errorf("events of cancelled message = %v, want cancelled last", types)
		}
	}
	for _, m := range []store.NewMessage{sending, sent, queued} { // queued is cancelled by now
		before := get(t, s, m.Message.ID)
		_, err := s.MessageCancel(ctx, m.Message.ID, now)
		wantErr(t, fmt.Sprintf("MessageCancel of a %s message", before.Status), err, store.ErrConflict)
		if diff := cmp.Diff(before, get(t, s, m.Message.ID), cmpOpts); diff != "" {
			t.Errorf("a refused cancel changed the message (-want +got):\n%s", diff)
		}
	}
	_, err := s.MessageCancel(ctx, id.New(id.Message), now)
	wantErr(t, "MessageCancel(unknown)", err, store.ErrNotFound)

	// Cancelled messages are never claimed.
	if c := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 10,
		Now: t0.Add(48 * time.Hour), LeaseUntil: t0.Add(49 * time.Hour)}); len(c) != 0 {
		t.Errorf("claim after cancel = %v, want nothing", claimedIDs(c))
	}
}

func testClaim(t *testing.T, s store.Store) {
	due1 := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-2 * time.Minute) })
	due2 := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-time.Minute) })
	due3 := Message(t0, func(m *store.Message) {
		m.Status = store.StatusScheduled // accepted an hour ago for now
		m.CreatedAt = t0.Add(-time.Hour)
		m.NextAttemptAt = t0
		m.SendAt = t0
	})
	future := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(time.Hour) })
	other := Message(t0, func(m *store.Message) {
		m.Stream = store.StreamBroadcast
		m.NextAttemptAt = t0.Add(-5 * time.Minute)
	})
	// Accepted in an order unrelated to their due times.
	accept(t, s, t0, future, due3, other, due2, due1)

	lease := t0.Add(time.Minute)
	p := store.MessageClaimParams{Owner: "node-a/1", Stream: store.StreamTransactional, Limit: 2, Now: t0, LeaseUntil: lease}
	got := claim(t, s, p)
	if diff := cmp.Diff([]string{due1.Message.ID, due2.Message.ID}, claimedIDs(got)); diff != "" {
		t.Fatalf("first claim, oldest due first (-want +got):\n%s", diff)
	}
	for i, src := range []store.NewMessage{due1, due2} {
		want := src.Message
		want.Status = store.StatusSending
		want.LeaseOwner = p.Owner
		want.LeaseUntil = lease
		want.UpdatedAt = t0
		if diff := cmp.Diff(claimedOf(want, src.Raw), got[i], cmpOpts); diff != "" {
			t.Errorf("claimed message (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, get(t, s, want.ID), cmpOpts); diff != "" {
			t.Errorf("claimed message reads back (-want +got):\n%s", diff)
		}
	}

	// Leased rows are not claimed again; the due scheduled one is; the future one and the other
	// stream's are not.
	p.Limit = 10
	got = claim(t, s, p)
	if diff := cmp.Diff([]string{due3.Message.ID}, claimedIDs(got)); diff != "" {
		t.Fatalf("second claim (-want +got):\n%s", diff)
	}
	if got := claim(t, s, p); len(got) != 0 {
		t.Fatalf("third claim = %v, want nothing", claimedIDs(got))
	}

	// Due later.
	p.Now = t0.Add(time.Hour)
	p.LeaseUntil = p.Now.Add(time.Minute)
	got = claim(t, s, p)
	if diff := cmp.Diff([]string{future.Message.ID}, claimedIDs(got)); diff != "" {
		t.Fatalf("claim at +1h (-want +got):\n%s", diff)
	}

	// The other stream.
	p.Stream = store.StreamBroadcast
	got = claim(t, s, p)
	if diff := cmp.Diff([]string{other.Message.ID}, claimedIDs(got)); diff != "" {
		t.Fatalf("broadcast claim (-want +got):\n%s", diff)
	}
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	const n = 200
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-time.Duration(i) * time.Millisecond) })
	}
	accept(t, s, t0, msgs...)

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]string{}
		dups []string
		errs []error
	)
	for w := range 6 {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%d", w)
			for {
				got, err := s.MessageClaim(t.Context(), store.MessageClaimParams{Owner: owner,
					Stream: store.StreamTransactional, Limit: 7, Now: t0, LeaseUntil: t0.Add(time.Minute)})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, c := range got {
					if prev, ok := seen[c.ID]; ok {
						dups = append(dups, c.ID+" ("+prev+", "+owner+")")
					}
					seen[c.ID] = owner
				}
				mu.Unlock()
				if err != nil || len(got) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || len(dups) > 0 || len(seen) != n {
		t.Fatalf("concurrent claims: %d distinct of %d, duplicates %v, errors %v", len(seen), n, dups, errs)
	}
	for id, owner := range seen {
		if m := get(t, s, id); m.Status != store.StatusSending || m.LeaseOwner != owner {
			t.Fatalf("%s is %s leased by %q, want sending leased by %q", id, m.Status, m.LeaseOwner, owner)
		}
	}
}

func testFinish(t *testing.T, s store.Store) {
	ctx := t.Context()
	m1, m2, m3, m4 := Message(t0), Message(t0), Message(t0), Message(t0)
	accept(t, s, t0, m1, m2, m3, m4)
	if got := claim(t, s, store.MessageClaimParams{Owner: "w1", Stream: store.StreamTransactional, Limit: 4,
		Now: t0, LeaseUntil: t0.Add(time.Minute)}); len(got) != 4 {
		t.Fatalf("claim = %v, want 4", claimedIDs(got))
	}

	now := t0.Add(time.Second)
	deferErr := &store.DeliveryError{Code: 451, Enhanced: "4.3.0", Text: "mailbox busy", Stage: "rcpt", Attempt: 1, At: now}
	sentDetail := json.RawMessage(`{"code": 250, "text": "2.0.0 Ok: queued as ABC"}`)
	n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{
		{ID: m1.Message.ID, Owner: "w1", Status: store.StatusSent, Attempts: 1, ProviderID: "ABC", SentAt: now,
			Events: []store.Event{{Type: store.EventSent, At: now, Detail: sentDetail}}},
		{ID: m2.Message.ID, Owner: "w1", Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: t0.Add(time.Minute),
			LastError: deferErr, Events: []store.Event{{Type: store.EventDeferred, At: now}}},
		{ID: m3.Message.ID, Owner: "w2", Status: store.StatusSent, Attempts: 1, SentAt: now,
			Events: []store.Event{{Type: store.EventSent, At: now}}}, // not w2's lease
		{ID: id.New(id.Message), Owner: "w1", Status: store.StatusSent}, // no such message
		// Handed back without an attempt (e.g. the transport was down).
		{ID: m4.Message.ID, Owner: "w1", Status: store.StatusQueued, NextAttemptAt: t0},
	})
	if err != nil || n != 3 {
		t.Fatalf("MessageFinish = %d, %v; want 3 applied", n, err)
	}
	want4 := m4.Message
	want4.UpdatedAt = now
	if diff := cmp.Diff(want4, get(t, s, m4.Message.ID), cmpOpts); diff != "" {
		t.Errorf("message handed back to the queue (-want +got):\n%s", diff)
	}

	want1 := m1.Message
	want1.Status, want1.Attempts, want1.ProviderID, want1.SentAt, want1.UpdatedAt = store.StatusSent, 1, "ABC", now, now
	want1.NextAttemptAt = time.Time{}
	if diff := cmp.Diff(want1, get(t, s, m1.Message.ID), cmpOpts); diff != "" {
		t.Errorf("sent message (-want +got):\n%s", diff)
	}
	want2 := m2.Message
	want2.Status, want2.Attempts, want2.LastError, want2.UpdatedAt = store.StatusDeferred, 1, deferErr, now
	want2.NextAttemptAt = t0.Add(time.Minute)
	if diff := cmp.Diff(want2, get(t, s, m2.Message.ID), cmpOpts); diff != "" {
		t.Errorf("deferred message (-want +got):\n%s", diff)
	}
	if m := get(t, s, m3.Message.ID); m.Status != store.StatusSending || m.LeaseOwner != "w1" {
		t.Errorf("finish by the wrong owner applied: %s leased by %q", m.Status, m.LeaseOwner)
	}

	evs, err := s.MessageEvents(ctx, m1.Message.ID)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events of sent message = %+v, %v; want queued and sent", evs, err)
	}
	wantEv := store.Event{ID: evs[1].ID, MessageID: m1.Message.ID, Type: store.EventSent, At: now, Detail: sentDetail}
	if diff := cmp.Diff(wantEv, evs[1], cmpOpts); diff != "" || evs[1].ID <= evs[0].ID {
		t.Errorf("sent event (-want +got):\n%s", diff)
	}
	if got := eventTypes(t, s, m3.Message.ID); !slices.Equal(got, []string{store.EventQueued}) {
		t.Errorf("events of skipped message = %v, want only queued", got)
	}

	// Finishing again (no longer sending) is skipped.
	if n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{{ID: m1.Message.ID, Owner: "w1",
		Status: store.StatusFailed, Attempts: 2}}); err != nil || n != 0 {
		t.Fatalf("second finish = %d, %v; want 0", n, err)
	}
	if m := get(t, s, m1.Message.ID); m.Status != store.StatusSent {
		t.Errorf("second finish changed the message to %s", m.Status)
	}

	// The deferred message is due again at NextAttemptAt; sending it clears its last error.
	later := t0.Add(time.Minute)
	got := claim(t, s, store.MessageClaimParams{Owner: "w2", Stream: store.StreamTransactional, Limit: 10,
		Now: later, LeaseUntil: later.Add(time.Minute)})
	if diff := cmp.Diff([]string{m4.Message.ID, m2.Message.ID}, claimedIDs(got)); diff != "" {
		t.Fatalf("claim of the requeued and deferred messages (-want +got):\n%s", diff)
	}
	got = got[1:]
	if got[0].LastError == nil || got[0].Attempts != 1 {
		t.Errorf("claimed deferred message lost its attempts or last error: %+v", got[0])
	}
	if n, err := s.MessageFinish(ctx, later, []store.MessageFinishParams{{ID: m2.Message.ID, Owner: "w2",
		Status: store.StatusSent, Attempts: 2, SentAt: later}}); err != nil || n != 1 {
		t.Fatalf("finish = %d, %v", n, err)
	}
	if m := get(t, s, m2.Message.ID); m.LastError != nil || m.Attempts != 2 || m.Status != store.StatusSent {
		t.Errorf("after success: status %s, attempts %d, last error %+v", m.Status, m.Attempts, m.LastError)
	}
	if got := eventTypes(t, s, m2.Message.ID); !slices.Equal(got, []string{store.EventQueued, store.EventDeferred}) {
		t.Errorf("events = %v (a finish without events adds none)", got)
	}
}

// testFinishRejects: an outcome that may not be applied (the message left sending, or a
// suppression without a reason) fails the whole call before anything is written.
func testFinishRejects(t *testing.T, s store.Store) {
	ctx := t.Context()
	m1, m2 := Message(t0), Message(t0)
	accept(t, s, t0, m1, m2)
	claim(t, s, store.MessageClaimParams{Owner: "w1", Stream: store.StreamTransactional, Limit: 2,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})

	now := t0.Add(time.Second)
	sent := store.MessageFinishParams{ID: m1.Message.ID, Owner: "w1", Status: store.StatusSent, Attempts: 1,
		SentAt: now, Events: []store.Event{{Type: store.EventSent}},
		Suppress: []store.Suppression{{Email: "ok@example.com", Reason: store.ReasonManual}}}
	for _, bad := range []store.MessageFinishParams{
		{ID: m2.Message.ID, Owner: "w1", Status: store.StatusSending, Attempts: 1},
		{ID: m2.Message.ID, Owner: "w1", Status: "", Attempts: 1},
		{ID: m2.Message.ID, Owner: "w1", Status: store.StatusFailed, Attempts: 1,
			Suppress: []store.Suppression{{Email: "Ann@Example.com"}}}, // no reason
	} {
		n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{sent, bad})
		if err == nil || n != 0 || !strings.Contains(err.Error(), m2.Message.ID) {
			t.Errorf("MessageFinish with status %q, suppressions %v = %d, %v; want an error naming %s",
				bad.Status, bad.Suppress, n, err, m2.Message.ID)
		}
	}
	for _, m := range []store.NewMessage{m1, m2} {
		if got := get(t, s, m.Message.ID); got.Status != store.StatusSending || got.LeaseOwner != "w1" {
			t.Errorf("message %s after refused finishes: %s leased by %q", m.Message.ID, got.Status, got.LeaseOwner)
		}
	}
	if got := eventTypes(t, s, m1.Message.ID); !slices.Equal(got, []string{store.EventQueued}) {
		t.Errorf("events after refused finishes = %v, want only queued", got)
	}
	_, err := s.SuppressionGet(ctx, "ok@example.com", "", time.Time{})
	wantErr(t, "suppression of a refused finish", err, store.ErrNotFound)
}

func testRescue(t *testing.T, s store.Store) {
	ctx := t.Context()
	short := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-time.Second) })
	long := Message(t0)
	accept(t, s, t0, short, long)
	claim(t, s, store.MessageClaimParams{Owner: "dead-node", Stream: store.StreamTransactional, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	claim(t, s, store.MessageClaimParams{Owner: "live-node", Stream: store.StreamTransactional, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(10 * time.Minute)})

	if ids, err := s.MessageRescue(ctx, t0.Add(30*time.Second)); err != nil || len(ids) != 0 {
		t.Fatalf("MessageRescue before expiry = %v, %v; want none", ids, err)
	}
	now := t0.Add(2 * time.Minute)
	ids, err := s.MessageRescue(ctx, now)
	if err != nil {
		t.Fatalf("MessageRescue: %v", err)
	}
	if diff := cmp.Diff([]string{short.Message.ID}, ids); diff != "" {
		t.Fatalf("MessageRescue ids (-want +got):\n%s", diff)
	}
	m := get(t, s, short.Message.ID)
	if m.Status != store.StatusQueued || m.LeaseOwner != "" || !m.LeaseUntil.IsZero() || !m.UpdatedAt.Equal(now) {
		t.Errorf("rescued message: status %s, lease %q until %v, updated %v; want queued, no lease, updated now",
			m.Status, m.LeaseOwner, m.LeaseUntil, m.UpdatedAt)
	}
	if m := get(t, s, long.Message.ID); m.Status != store.StatusSending || m.LeaseOwner != "live-node" {
		t.Errorf("unexpired lease was rescued: %s %q", m.Status, m.LeaseOwner)
	}
	evs, err := s.MessageEvents(ctx, short.Message.ID)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events = %+v, %v; want queued, lease_expired", evs, err)
	}
	wantEv := store.Event{ID: evs[1].ID, MessageID: short.Message.ID, Type: store.EventLeaseExpired, At: now,
		Detail: json.RawMessage(`{"owner":"dead-node"}`)}
	if diff := cmp.Diff(wantEv, evs[1], cmpOpts); diff != "" {
		t.Errorf("lease_expired event (-want +got):\n%s", diff)
	}

	// Rescued work is claimable again, and rescue is idempotent.
	if ids, err := s.MessageRescue(ctx, now); err != nil || len(ids) != 0 {
		t.Fatalf("second MessageRescue = %v, %v; want none", ids, err)
	}
	got := claim(t, s, store.MessageClaimParams{Owner: "live-node", Stream: store.StreamTransactional, Limit: 5,
		Now: now, LeaseUntil: now.Add(time.Minute)})
	if diff := cmp.Diff([]string{short.Message.ID}, claimedIDs(got)); diff != "" {
		t.Errorf("claim after rescue (-want +got):\n%s", diff)
	}
}

func testReleaseLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	msgs := []store.NewMessage{Message(t0), Message(t0), Message(t0), Message(t0, func(m *store.Message) {
		m.Stream = store.StreamBroadcast
	})}
	accept(t, s, t0, msgs...)
	a := claim(t, s, store.MessageClaimParams{Owner: "node-a", Stream: store.StreamTransactional, Limit: 2,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	b := claim(t, s, store.MessageClaimParams{Owner: "node-b", Stream: store.StreamTransactional, Limit: 2,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	b = append(b, claim(t, s, store.MessageClaimParams{Owner: "node-b", Stream: store.StreamBroadcast, Limit: 2,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})...)
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("claims: node-a %v, node-b %v", claimedIDs(a), claimedIDs(b))
	}

	now := t0.Add(10 * time.Second)
	n, err := s.MessageReleaseLeases(ctx, store.MessageReleaseParams{Owner: "node-a", Now: now})
	if err != nil || n != 2 {
		t.Fatalf("MessageReleaseLeases(node-a) = %d, %v; want 2", n, err)
	}
	for _, c := range a {
		m := get(t, s, c.ID)
		if m.Status != store.StatusQueued || m.LeaseOwner != "" || !m.LeaseUntil.IsZero() {
			t.Errorf("released message: %s leased by %q until %v", m.Status, m.LeaseOwner, m.LeaseUntil)
		}
		evs, err := s.MessageEvents(ctx, c.ID)
		if err != nil || len(evs) == 0 {
			t.Fatalf("events: %v, %v", evs, err)
		}
		last := evs[len(evs)-1]
		if last.Type != store.EventReleased || !last.At.Equal(now) {
			t.Errorf("last event = %+v, want released at %v", last, now)
		}
	}
	for _, c := range b {
		if m := get(t, s, c.ID); m.Status != store.StatusSending || m.LeaseOwner != "node-b" {
			t.Errorf("node-b's lease was released by node-a's release: %s %q", m.Status, m.LeaseOwner)
		}
	}

	n, err = s.MessageReleaseLeases(ctx, store.MessageReleaseParams{Now: now})
	if err != nil || n != 2 {
		t.Fatalf("MessageReleaseLeases(all) = %d, %v; want 2", n, err)
	}
	if n, err := s.MessageReleaseLeases(ctx, store.MessageReleaseParams{Now: now}); err != nil || n != 0 {
		t.Fatalf("second MessageReleaseLeases(all) = %d, %v; want 0", n, err)
	}
	got := claim(t, s, store.MessageClaimParams{Owner: "node-c", Stream: store.StreamTransactional, Limit: 10,
		Now: now, LeaseUntil: now.Add(time.Minute)})
	if len(got) != 3 {
		t.Errorf("claim after release = %v, want the 3 transactional messages", claimedIDs(got))
	}
}

// testReleaseLeasesByPrefix: OwnerPrefix releases the leases of every owner that begins with it,
// byte for byte ("_" is no wildcard), and only those.
func testReleaseLeasesByPrefix(t *testing.T, s store.Store) {
	ctx := t.Context()
	owners := []string{"node_1/100/aa", "node_1/200/bb", "nodeX1/300/cc", "node_10/400/dd", "other/1/ee"}
	for range owners {
		accept(t, s, t0, Message(t0))
	}
	leased := map[string]string{} // message id → owner
	for _, o := range owners {
		got := claim(t, s, store.MessageClaimParams{Owner: o, Stream: store.StreamTransactional, Limit: 1,
			Now: t0, LeaseUntil: t0.Add(time.Hour)})
		if len(got) != 1 {
			t.Fatalf("claim for %s: %v", o, claimedIDs(got))
		}
		leased[got[0].ID] = o
	}
	now := t0.Add(time.Second)
	n, err := s.MessageReleaseLeases(ctx, store.MessageReleaseParams{OwnerPrefix: "node_1/", Now: now})
	if err != nil || n != 2 {
		t.Fatalf("MessageReleaseLeases(prefix node_1/) = %d, %v; want 2", n, err)
	}
	for id, o := range leased {
		m := get(t, s, id)
		released := strings.HasPrefix(o, "node_1/")
		switch {
		case released && (m.Status != store.StatusQueued || m.LeaseOwner != ""):
			t.Errorf("lease of %s not released: %s %q", o, m.Status, m.LeaseOwner)
		case !released && (m.Status != store.StatusSending || m.LeaseOwner != o):
			t.Errorf("lease of %s released by prefix node_1/: %s %q", o, m.Status, m.LeaseOwner)
		}
		if !released {
			continue
		}
		evs, err := s.MessageEvents(ctx, id)
		if err != nil || len(evs) == 0 {
			t.Fatalf("events: %v, %v", evs, err)
		}
		last := evs[len(evs)-1]
		var detail struct{ Owner string }
		_ = json.Unmarshal(last.Detail, &detail)
		if last.Type != store.EventReleased || !last.At.Equal(now) || detail.Owner != o {
			t.Errorf("last event = %+v %s, want released at %v from %s", last, last.Detail, now, o)
		}
	}
}

func testNextDue(t *testing.T, s store.Store) {
	ctx := t.Context()
	next := func(stream string) (time.Time, bool) {
		t.Helper()
		at, ok, err := s.MessageNextDue(ctx, stream)
		if err != nil {
			t.Fatalf("MessageNextDue(%s): %v", stream, err)
		}
		return at, ok
	}
	if _, ok := next(store.StreamTransactional); ok {
		t.Fatal("MessageNextDue on an empty store reported a message")
	}
	later := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(5 * time.Minute) })
	sched := Message(t0, func(m *store.Message) {
		m.Status = store.StatusScheduled
		m.NextAttemptAt = t0.Add(time.Minute)
		m.SendAt = m.NextAttemptAt
	})
	bulk := Message(t0, func(m *store.Message) {
		m.Stream = store.StreamBroadcast
		m.NextAttemptAt = t0.Add(-time.Hour)
	})
	accept(t, s, t0, later, sched, bulk)

	if at, ok := next(store.StreamTransactional); !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("MessageNextDue(transactional) = %v, %v; want %v", at, ok, t0.Add(time.Minute))
	}
	if at, ok := next(store.StreamBroadcast); !ok || !at.Equal(t0.Add(-time.Hour)) {
		t.Errorf("MessageNextDue(broadcast) = %v, %v; want %v", at, ok, t0.Add(-time.Hour))
	}
	// A leased message is not claimable.
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: t0.Add(time.Minute), LeaseUntil: t0.Add(2 * time.Minute)})
	if at, ok := next(store.StreamTransactional); !ok || !at.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("MessageNextDue after claim = %v, %v; want %v", at, ok, t0.Add(5*time.Minute))
	}
	if _, err := s.MessageCancel(ctx, later.Message.ID, t0); err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	if at, ok := next(store.StreamTransactional); ok {
		t.Errorf("MessageNextDue with nothing claimable = %v, want none", at)
	}
}

func testWakeups(t *testing.T, s store.Store) {
	tx := s.Wakeups(store.StreamTransactional)
	if tx == nil || s.Wakeups(store.StreamTransactional) != tx {
		t.Fatal("Wakeups must return the same non-nil channel for a stream on every call")
	}
	bc := s.Wakeups(store.StreamBroadcast)
	if bc == tx {
		t.Fatal("streams share a wake-up channel")
	}
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second): // a failure guard, not a wait for time to pass
			t.Fatalf("no wake-up after %s", what)
		}
	}
	accept(t, s, t0, Message(t0))
	wait(tx, "accepting a transactional message")

	// Signals coalesce: many accepts never block the accepting side.
	for range 5 {
		accept(t, s, t0, Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast }))
	}
	wait(bc, "accepting broadcast messages")
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n, err := s.APIKeyCount(ctx); err != nil || n != 0 {
		t.Fatalf("APIKeyCount on an empty store = %d, %v", n, err)
	}
	k1 := store.APIKey{ID: id.New(id.APIKey), Name: "CRM", Hash: bytes.Repeat([]byte{0xa1}, 32), Prefix: "pk_live_a1",
		CreatedAt: t0}
	if err := s.APIKeyCreate(ctx, k1); err != nil {
		t.Fatalf("APIKeyCreate: %v", err)
	}
	got, err := s.APIKeyByHash(ctx, k1.Hash)
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if diff := cmp.Diff(k1, got, cmpOpts); diff != "" {
		t.Errorf("APIKeyByHash (-want +got):\n%s", diff)
	}

	// Creating the same hash again is a no-op, whatever the other fields say.
	again := store.APIKey{ID: id.New(id.APIKey), Name: "other", Hash: k1.Hash, Prefix: "x", CreatedAt: t0.Add(time.Hour)}
	if err := s.APIKeyCreate(ctx, again); err != nil {
		t.Fatalf("APIKeyCreate of an existing hash: %v", err)
	}
	if got, err := s.APIKeyByHash(ctx, k1.Hash); err != nil || got.ID != k1.ID || got.Name != k1.Name {
		t.Errorf("after re-create APIKeyByHash = %+v, %v; want the original key", got, err)
	}
	k2 := store.APIKey{ID: id.New(id.APIKey), Name: "signup", Hash: bytes.Repeat([]byte{0xb2}, 32), Prefix: "pk_live_b2",
		CreatedAt: t0.Add(time.Minute)}
	if err := s.APIKeyCreate(ctx, k2); err != nil {
		t.Fatalf("APIKeyCreate: %v", err)
	}
	if n, err := s.APIKeyCount(ctx); err != nil || n != 2 {
		t.Fatalf("APIKeyCount = %d, %v; want 2", n, err)
	}
	_, err = s.APIKeyByHash(ctx, bytes.Repeat([]byte{0xc3}, 32))
	wantErr(t, "APIKeyByHash(unknown)", err, store.ErrNotFound)
}

// testAPIKeyListDelete: the listing an operator reads (postie keys list) and revocation.
func testAPIKeyListDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if ks, err := s.APIKeyList(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("APIKeyList on an empty store = %v, %v", ks, err)
	}
	// Created out of order: the listing is oldest first.
	newer := store.APIKey{ID: id.New(id.APIKey), Name: "signup", Hash: bytes.Repeat([]byte{0xb2}, 32), Prefix: "pk_b2", CreatedAt: t0.Add(time.Minute)}
	older := store.APIKey{ID: id.New(id.APIKey), Name: "CRM", Hash: bytes.Repeat([]byte{0xa1}, 32), Prefix: "pk_a1", CreatedAt: t0}
	for _, k := range []store.APIKey{newer, older} {
		if err := s.APIKeyCreate(ctx, k); err != nil {
			t.Fatalf("APIKeyCreate: %v", err)
		}
	}
	ks, err := s.APIKeyList(ctx)
	if err != nil {
		t.Fatalf("APIKeyList: %v", err)
	}
	if diff := cmp.Diff([]store.APIKey{older, newer}, ks, cmpOpts); diff != "" {
		t.Errorf("APIKeyList (-want +got):\n%s", diff)
	}

	if err := s.APIKeyDelete(ctx, older.ID); err != nil {
		t.Fatalf("APIKeyDelete: %v", err)
	}
	_, err = s.APIKeyByHash(ctx, older.Hash)
	wantErr(t, "APIKeyByHash(deleted)", err, store.ErrNotFound)
	wantErr(t, "APIKeyDelete(deleted)", s.APIKeyDelete(ctx, older.ID), store.ErrNotFound)
	wantErr(t, "APIKeyDelete(unknown)", s.APIKeyDelete(ctx, "key_unknown"), store.ErrNotFound)
	if ks, err := s.APIKeyList(ctx); err != nil || len(ks) != 1 || ks[0].ID != newer.ID {
		t.Errorf("APIKeyList after delete = %+v, %v; want only %s", ks, err, newer.ID)
	}
	if n, err := s.APIKeyCount(ctx); err != nil || n != 1 {
		t.Errorf("APIKeyCount after delete = %d, %v; want 1", n, err)
	}
}
