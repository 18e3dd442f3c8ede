package sqlite

import (
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// TestCampaignContactsErased: erasing a contact removes its frequency-cap rows (and its
// recipients, which the suite sees), by the foreign keys' cascade.
func TestCampaignContactsErased(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l, err := s.ListCreate(ctx, store.List{ID: id.New(id.List), Name: "news", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	var items []store.ContactUpsert
	for _, e := range []string{"ann@example.com", "bob@example.com"} {
		items = append(items, store.ContactUpsert{Email: e, EmailKey: e, Lists: []string{l.ID}})
	}
	res, err := s.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: items, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CampaignCreate(ctx, store.Campaign{ID: id.New(id.Campaign), Name: "n", Template: "t", Lists: []string{l.ID},
		Cap: store.FrequencyCap{Kind: store.CapOncePerContact}, State: store.CampaignDraft, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: c.ID, ScheduledAt: now,
		StartedAt: now}, CampaignFrom: []string{store.CampaignDraft}, Owner: "n1", LeaseUntil: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "n1", Limit: 10, Now: now,
		Audience: store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID, Cap: c.Cap}}); err != nil {
		t.Fatal(err)
	}
	var queue []store.RunQueueItem
	for i, r := range res {
		m := storetest.Message(now, func(m *store.Message) {
			m.Stream, m.CampaignID, m.RunID, m.ListID = store.StreamBroadcast, c.ID, run.ID, l.ID
			m.To, m.Recipients = []string{items[i].Email}, []string{items[i].Email}
		})
		queue = append(queue, store.RunQueueItem{ContactID: r.ID, Message: &m})
	}
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Items: queue,
		Day: "2026-03-01", Now: now}); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		n, err := readOne(ctx, s, q, args, scanValue[int])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: res[0].ID}, Erase: true,
		ErasedKey: "erased:00", Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ table, contact string }{
		{"campaign_contacts", res[0].ID}, {"campaign_recipients", res[0].ID},
	} {
		if n := count(`SELECT count(*) FROM `+tc.table+` WHERE contact_id = ?`, tc.contact); n != 0 {
			t.Errorf("%d rows of %s left in %s", n, tc.contact, tc.table)
		}
	}
	if n := count(`SELECT count(*) FROM campaign_contacts WHERE contact_id = ?`, res[1].ID); n != 1 {
		t.Errorf("bob's cap rows: %d, want 1", n)
	}
}

// TestRunInFlight: the run's messages scheduled, queued or sending, as RunProgress counts them.
func TestRunInFlight(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	run := id.New(id.Run)
	msgs := make([]store.NewMessage, 4)
	for i := range msgs {
		msgs[i] = storetest.Message(now, func(m *store.Message) {
			m.Stream, m.RunID, m.NextAttemptAt = store.StreamBroadcast, run, now.Add(time.Duration(i)*time.Second)
		})
	}
	msgs[3].Message.RunID = id.New(id.Run) // another run's
	if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: msgs, Now: now}); err != nil {
		t.Fatal(err)
	}
	// The first two claimed, the first sent: the second sending and the third queued are in flight.
	claimed, err := s.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 2,
		Now: now.Add(time.Minute), LeaseUntil: now.Add(2 * time.Minute)})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("MessageClaim = %d, %v", len(claimed), err)
	}
	if _, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{{ID: msgs[0].Message.ID, Owner: "w",
		Status: store.StatusSent, Attempts: 1, SentAt: now}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.RunProgress(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.RunInFlight(ctx, run); err != nil || n != 2 || p.InFlight != 2 {
		t.Errorf("RunInFlight = %d, %v, RunProgress.InFlight = %d; want 2", n, err, p.InFlight)
	}
	if n, err := s.RunInFlight(ctx, id.New(id.Run)); err != nil || n != 0 {
		t.Errorf("RunInFlight(unknown run) = %d, %v", n, err)
	}
}
