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

// TestChunkPacer: a chunk is as large as the writer gets through in chunkBudget at the pace of
// the last chunks, within bounds.
func TestChunkPacer(t *testing.T) {
	t.Parallel()
	var c chunkPacer
	if got, want := c.size(), int(chunkBudget/firstChunkPer); got != want {
		t.Errorf("first chunk: %d contacts, want %d", got, want)
	}
	c.took(1000, 30*time.Millisecond) // 30 µs a contact
	if got, want := c.size(), 500; got != want {
		t.Errorf("after a chunk at 30 µs a contact: %d, want %d", got, want)
	}
	c.took(1000, 10*time.Millisecond) // averaged: (3×30 + 10) / 4 = 25 µs
	if got, want := c.size(), 600; got != want {
		t.Errorf("after a faster chunk: %d, want %d", got, want)
	}
	c.took(10, time.Second) // too few contacts to tell
	if got, want := c.size(), 600; got != want {
		t.Errorf("after a chunk of 10: %d, want %d", got, want)
	}
	for range 20 {
		c.took(1000, time.Second)
	}
	if got := c.size(); got != minChunk {
		t.Errorf("very slow chunks: %d, want %d", got, minChunk)
	}
	for range 40 {
		c.took(1000, time.Microsecond)
	}
	if got := c.size(); got != maxChunk {
		t.Errorf("very fast chunks: %d, want %d", got, maxChunk)
	}
}
