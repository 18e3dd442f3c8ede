package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// RunCampaigns runs the campaigns area's cases alone (Run runs them with the others), for a
// driver's test that runs them again in another mode; open is Run's.
func RunCampaigns(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range campaignCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// campaignCases are the conformance cases of the campaigns area (store.Campaigns).
var campaignCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"CampaignCRUD", testCampaignCRUD},
	{"CampaignList", testCampaignList},
	{"CampaignSetState", testCampaignSetState},
	{"CampaignsDue", testCampaignsDue},
	{"CampaignDelete", testCampaignDelete},
	{"RunCreate", testRunCreate},
	{"RunLeases", testRunLeases},
	{"RunMaterialiseLists", testRunMaterialiseLists},
	{"RunMaterialiseSegment", testRunMaterialiseSegment},
	{"RunMaterialiseCap", testRunMaterialiseCap},
	{"RunPending", testRunPending},
	{"RunQueue", testRunQueue},
	{"RunPauseResume", testRunPauseResume},
	{"RunCancel", testRunCancel},
	{"RunProgress", testRunProgress},
	{"RunRecipients", testRunRecipients},
	{"RunContactErase", testRunContactErase},
}

// newCampaign is a draft campaign over lists, created at t0, with mods applied before it is
// stored.
func newCampaign(t *testing.T, s store.Store, lists []string, mods ...func(*store.Campaign)) store.Campaign {
	t.Helper()
	c := store.Campaign{
		ID: id.New(id.Campaign), Name: "May news", Template: "newsletter", Lists: lists,
		Schedule: store.Schedule{Kind: store.ScheduleNow}, State: store.CampaignDraft,
		CreatedAt: t0, UpdatedAt: t0,
	}
	for _, m := range mods {
		m(&c)
	}
	got, err := s.CampaignCreate(t.Context(), c)
	if err != nil {
		t.Fatalf("CampaignCreate: %v", err)
	}
	return got
}

func getCampaign(t *testing.T, s store.Store, cmpID string) store.Campaign {
	t.Helper()
	c, err := s.CampaignGet(t.Context(), cmpID)
	if err != nil {
		t.Fatalf("CampaignGet(%s): %v", cmpID, err)
	}
	return c
}

func getRun(t *testing.T, s store.Store, runID string) store.Run {
	t.Helper()
	r, err := s.RunGet(t.Context(), runID)
	if err != nil {
		t.Fatalf("RunGet(%s): %v", runID, err)
	}
	return r
}

// startRun starts a run of campaign c (in any state but finished or cancelled) scheduled at at,
// leased to owner until a day later.
func startRun(t *testing.T, s store.Store, c store.Campaign, at time.Time, owner string) store.Run {
	t.Helper()
	r, err := s.RunCreate(t.Context(), store.RunCreateParams{
		Run:          store.Run{ID: id.New(id.Run), CampaignID: c.ID, ScheduledAt: at, TemplateVersion: 1, StartedAt: at},
		CampaignFrom: []string{store.CampaignDraft, store.CampaignScheduled, store.CampaignRunning, store.CampaignPaused},
		Owner:        owner, LeaseUntil: at.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("RunCreate(%s at %v): %v", c.ID, at, err)
	}
	return r
}

// materialiseAll materialises the whole audience in chunks of limit contacts and returns the
// sum of the chunks' results; each chunk considers at most limit contacts.
func materialiseAll(t *testing.T, s store.Store, r store.Run, owner string, aud store.RunAudience, limit int, now time.Time) store.RunMaterialiseResult {
	t.Helper()
	var sum store.RunMaterialiseResult
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("RunMaterialise never reported Done")
		}
		res, err := s.RunMaterialise(t.Context(), store.RunMaterialiseParams{RunID: r.ID, Owner: owner, Audience: aud,
			Limit: limit, Now: now})
		if err != nil {
			t.Fatalf("RunMaterialise(%s): %v", r.ID, err)
		}
		x := res.Excluded
		if n := res.Added + x.Unsubscribed + x.Pending + x.Suppressed + x.Capped; n > limit {
			t.Fatalf("a chunk of %d considered %d contacts: %+v", limit, n, res)
		}
		sum.Added += res.Added
		sum.Excluded.Unsubscribed += x.Unsubscribed
		sum.Excluded.Pending += x.Pending
		sum.Excluded.Suppressed += x.Suppressed
		sum.Excluded.Capped += x.Capped
		if res.Done {
			sum.Done = true
			return sum
		}
	}
}

// allRecipients reads every recipient of a run (pages of 2, to cross page boundaries).
func allRecipients(t *testing.T, s store.Store, runID, status string) []store.RunRecipient {
	t.Helper()
	var out []store.RunRecipient
	cursor := ""
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("RunRecipients never ended")
		}
		page, next, err := s.RunRecipients(t.Context(), store.RunRecipientListParams{RunID: runID, Status: status,
			Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatalf("RunRecipients(%s): %v", runID, err)
		}
		if len(page) > 2 {
			t.Fatalf("RunRecipients returned %d rows for a limit of 2", len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

// pending reads every pending recipient of a run, with their contacts.
func pendingRecipients(t *testing.T, s store.Store, runID string) []store.RunRecipient {
	t.Helper()
	rs, err := s.RunPending(t.Context(), store.RunPendingParams{RunID: runID, Limit: 1000})
	if err != nil {
		t.Fatalf("RunPending(%s): %v", runID, err)
	}
	return rs
}

// campaignMessage is the message a run would create for recipient r.
func campaignMessage(r store.RunRecipient, c store.Campaign, now time.Time, mods ...func(*store.Message)) *store.NewMessage {
	m := Message(now, append([]func(*store.Message){func(m *store.Message) {
		m.Stream = store.StreamBroadcast
		m.To = []string{r.Email}
		m.Recipients = []string{strings.ToLower(r.Email)}
		m.Subject = "May news"
		m.Template = c.Template
		m.CampaignID = c.ID
		m.RunID = r.RunID
		m.ListID = r.ListID
	}}, mods...)...)
	return &m
}

// queueAll gives every pending recipient of run a message (at now) and returns them by contact
// id.
func queueAll(t *testing.T, s store.Store, c store.Campaign, run store.Run, owner string, now time.Time) map[string]*store.NewMessage {
	t.Helper()
	msgs := map[string]*store.NewMessage{}
	var items []store.RunQueueItem
	for _, r := range pendingRecipients(t, s, run.ID) {
		m := campaignMessage(r, c, now)
		msgs[r.ContactID] = m
		items = append(items, store.RunQueueItem{ContactID: r.ContactID, Message: m})
	}
	if err := s.RunQueue(t.Context(), store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: owner,
		Items: items, Day: now.Format(time.DateOnly), Now: now}); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	return msgs
}

// audienceContacts is a small audience: list a (plain) with the given addresses subscribed.
func audienceContacts(t *testing.T, s store.Store, emails ...string) (store.List, []string) {
	t.Helper()
	l := newList(t, s, "news", false)
	items := make([]store.ContactUpsert, len(emails))
	for i, e := range emails {
		items[i] = item(e, func(it *store.ContactUpsert) { it.Lists = []string{l.ID} })
	}
	res := upsertOK(t, s, t0.Add(-time.Hour), items...)
	ids := make([]string, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return l, ids
}

func testCampaignCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := store.Campaign{
		ID: id.New(id.Campaign), Name: "Weekly", Template: "newsletter", TemplateVersion: 3,
		Lists: []string{"lst_a", "lst_b"}, Segment: "seg_1", From: "News <news@shop.example>",
		ReplyTo: "help@shop.example", Subject: "This week", Data: json.RawMessage(`{"items":[1,2],"hero":"x"}`),
		Tags: []string{"news", "weekly"}, Rate: 12.5,
		Schedule:      store.Schedule{Kind: store.ScheduleCron, Cron: "0 9 * * 1", Timezone: "Asia/Seoul"},
		Cap:           store.FrequencyCap{Kind: store.CapDays, Days: 30},
		ResumeNextDay: true, State: store.CampaignScheduled, NextRunAt: t0.Add(time.Hour),
		CreatedAt: t0.Add(time.Microsecond), UpdatedAt: t0.Add(time.Second),
	}
	got, err := s.CampaignCreate(ctx, full)
	if err != nil {
		t.Fatalf("CampaignCreate: %v", err)
	}
	if diff := cmp.Diff(full, got, cmpOpts); diff != "" {
		t.Errorf("CampaignCreate returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(full, getCampaign(t, s, full.ID), cmpOpts); diff != "" {
		t.Errorf("CampaignGet (-want +got):\n%s", diff)
	}
	minimal := newCampaign(t, s, nil, func(c *store.Campaign) { c.Segment = "seg_2" })
	if got := getCampaign(t, s, minimal.ID); got.Data != nil || len(got.Lists) != 0 || !got.NextRunAt.IsZero() ||
		!got.LastRunAt.IsZero() || got.Cap.Kind != store.CapNone || len(got.PauseReasons) != 0 {
		t.Errorf("minimal campaign read back as %+v", got)
	}
	_, err = s.CampaignCreate(ctx, full)
	wantErr(t, "CampaignCreate(same id)", err, store.ErrConflict)
	_, err = s.CampaignGet(ctx, id.New(id.Campaign))
	wantErr(t, "CampaignGet(unknown)", err, store.ErrNotFound)

	// Update replaces every field but ID, State, PauseReasons, LastRunAt and CreatedAt.
	upd := minimal
	upd.Name, upd.Template, upd.TemplateVersion = "Renamed", "promo", 2
	upd.Lists, upd.Segment = []string{"lst_c"}, ""
	upd.From, upd.ReplyTo, upd.Subject = "a@shop.example", "b@shop.example", "Hi"
	upd.Data, upd.Tags, upd.Rate = json.RawMessage(`{"a":1}`), []string{"promo"}, 3
	upd.Schedule = store.Schedule{Kind: store.ScheduleAt, At: t0.Add(48 * time.Hour)}
	upd.Cap = store.FrequencyCap{Kind: store.CapOncePerContact}
	upd.ResumeNextDay = true
	upd.NextRunAt = t0.Add(48 * time.Hour)
	upd.UpdatedAt = t0.Add(time.Minute)
	ignored := upd
	ignored.State, ignored.PauseReasons = store.CampaignRunning, []string{store.PauseManual}
	ignored.LastRunAt, ignored.CreatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
	got, err = s.CampaignUpdate(ctx, ignored, []string{store.CampaignDraft, store.CampaignScheduled})
	if err != nil {
		t.Fatalf("CampaignUpdate: %v", err)
	}
	if diff := cmp.Diff(upd, got, cmpOpts); diff != "" {
		t.Errorf("CampaignUpdate returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(upd, getCampaign(t, s, upd.ID), cmpOpts); diff != "" {
		t.Errorf("CampaignGet after update (-want +got):\n%s", diff)
	}

	// Not in one of the states: ErrConflict, with the campaign as stored, and nothing changed.
	again := upd
	again.Name = "Not applied"
	got, err = s.CampaignUpdate(ctx, again, []string{store.CampaignScheduled})
	wantErr(t, "CampaignUpdate(wrong state)", err, store.ErrConflict)
	if diff := cmp.Diff(upd, got, cmpOpts); diff != "" {
		t.Errorf("CampaignUpdate(wrong state) returned (-stored +got):\n%s", diff)
	}
	if diff := cmp.Diff(upd, getCampaign(t, s, upd.ID), cmpOpts); diff != "" {
		t.Errorf("a refused update changed the campaign (-want +got):\n%s", diff)
	}
	unknown := upd
	unknown.ID = id.New(id.Campaign)
	_, err = s.CampaignUpdate(ctx, unknown, []string{store.CampaignDraft})
	wantErr(t, "CampaignUpdate(unknown)", err, store.ErrNotFound)
}

func testCampaignList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []string
	for i := range 5 {
		state := store.CampaignDraft
		if i%2 == 1 {
			state = store.CampaignScheduled
		}
		c := newCampaign(t, s, []string{"lst_a"}, func(c *store.Campaign) {
			c.ID = fmt.Sprintf("cmp_%03d", i) // ordered ids
			c.Name = fmt.Sprintf("c%d", i)
			c.State = state
		})
		ids = append(ids, c.ID)
	}
	slices.Reverse(ids) // newest first
	var got []string
	cursor := ""
	for range 10 {
		page, next, err := s.CampaignList(ctx, store.CampaignListParams{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatalf("CampaignList: %v", err)
		}
		if len(page) > 2 {
			t.Fatalf("CampaignList returned %d for a limit of 2", len(page))
		}
		for _, c := range page {
			got = append(got, c.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, ids) {
		t.Errorf("CampaignList pages = %v, want %v", got, ids)
	}
	page, next, err := s.CampaignList(ctx, store.CampaignListParams{State: store.CampaignScheduled})
	if err != nil {
		t.Fatalf("CampaignList(scheduled): %v", err)
	}
	var sched []string
	for _, c := range page {
		sched = append(sched, c.ID)
	}
	if want := []string{"cmp_003", "cmp_001"}; !slices.Equal(sched, want) || next != "" {
		t.Errorf("CampaignList(scheduled) = %v, %q; want %v", sched, next, want)
	}
	if full, _, err := s.CampaignList(ctx, store.CampaignListParams{}); err != nil || len(full) != 5 {
		t.Errorf("CampaignList(default limit) = %d campaigns, %v", len(full), err)
	}
	_, _, err = s.CampaignList(ctx, store.CampaignListParams{Cursor: "ctc_1"})
	wantErr(t, "CampaignList(a cursor that is no campaign id)", err, store.ErrBadCursor)
}

func testCampaignSetState(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newCampaign(t, s, []string{"lst_a"})
	t1 := t0.Add(time.Minute)
	got, err := s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID, From: []string{store.CampaignDraft},
		To: store.CampaignScheduled, NextRunAt: t0.Add(time.Hour), Now: t1})
	if err != nil {
		t.Fatalf("CampaignSetState(scheduled): %v", err)
	}
	want := c
	want.State, want.NextRunAt, want.UpdatedAt = store.CampaignScheduled, t0.Add(time.Hour), t1
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("CampaignSetState returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, getCampaign(t, s, c.ID), cmpOpts); diff != "" {
		t.Errorf("CampaignGet after CampaignSetState (-want +got):\n%s", diff)
	}

	// From guards the change: ErrConflict with the stored campaign, nothing changed.
	got, err = s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID, From: []string{store.CampaignDraft},
		To: store.CampaignRunning, Now: t0.Add(time.Hour)})
	wantErr(t, "CampaignSetState(wrong from)", err, store.ErrConflict)
	if got.State != store.CampaignScheduled || got.ID != c.ID {
		t.Errorf("CampaignSetState(wrong from) returned %q in state %q, want the stored campaign (scheduled)", got.ID, got.State)
	}
	if diff := cmp.Diff(want, getCampaign(t, s, c.ID), cmpOpts); diff != "" {
		t.Errorf("a refused change changed the campaign (-want +got):\n%s", diff)
	}
	_, err = s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: id.New(id.Campaign), From: store.CampaignStates,
		To: store.CampaignCancelled, Now: t1})
	wantErr(t, "CampaignSetState(unknown)", err, store.ErrNotFound)

	// Pause reasons are stored with the state (sorted), and cleared by nil; zero NextRunAt is none.
	t2 := t0.Add(2 * time.Minute)
	got, err = s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID,
		From: []string{store.CampaignScheduled, store.CampaignRunning}, To: store.CampaignPaused,
		PauseReasons: []string{store.PauseManual, store.PauseDailyQuota}, Now: t2})
	if err != nil {
		t.Fatalf("CampaignSetState(paused): %v", err)
	}
	wantReasons := []string{store.PauseDailyQuota, store.PauseManual}
	if got.State != store.CampaignPaused || !slices.Equal(got.PauseReasons, wantReasons) || !got.NextRunAt.IsZero() ||
		!got.UpdatedAt.Equal(t2) {
		t.Errorf("paused campaign = %+v, want paused for %v with no next run", got, wantReasons)
	}
	if got := getCampaign(t, s, c.ID); !slices.Equal(got.PauseReasons, wantReasons) {
		t.Errorf("stored pause reasons = %v, want %v", got.PauseReasons, wantReasons)
	}
	got, err = s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID, From: []string{store.CampaignPaused},
		To: store.CampaignCancelled, Now: t2})
	if err != nil || got.State != store.CampaignCancelled || len(got.PauseReasons) != 0 {
		t.Errorf("CampaignSetState(cancelled) = %+v, %v; want cancelled without reasons", got, err)
	}
}

func testCampaignsDue(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(state string, next time.Duration) store.Campaign {
		return newCampaign(t, s, []string{"lst_a"}, func(c *store.Campaign) {
			c.State = state
			c.NextRunAt = t0.Add(next)
		})
	}
	late := mk(store.CampaignScheduled, 0)
	early := mk(store.CampaignScheduled, -time.Hour)
	mk(store.CampaignScheduled, time.Hour)                                                              // not yet
	mk(store.CampaignDraft, -2*time.Hour)                                                               // not scheduled
	mk(store.CampaignPaused, -2*time.Hour)                                                              // not scheduled
	newCampaign(t, s, []string{"lst_a"}, func(c *store.Campaign) { c.State = store.CampaignScheduled }) // no next run
	ids := func(cs []store.Campaign) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	due, err := s.CampaignsDue(ctx, t0, 10)
	if err != nil {
		t.Fatalf("CampaignsDue: %v", err)
	}
	if want := []string{early.ID, late.ID}; !slices.Equal(ids(due), want) {
		t.Errorf("CampaignsDue(t0) = %v, want %v (earliest first)", ids(due), want)
	}
	if due, err := s.CampaignsDue(ctx, t0, 1); err != nil || !slices.Equal(ids(due), []string{early.ID}) {
		t.Errorf("CampaignsDue(limit 1) = %v, %v; want %v", ids(due), err, early.ID)
	}
	if due, err := s.CampaignsDue(ctx, t0.Add(-2*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("CampaignsDue(before any) = %v, %v", ids(due), err)
	}
}

func testCampaignDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, _ := audienceContacts(t, s, "ann@example.com")
	c := newCampaign(t, s, []string{l.ID})
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}}, 10, t0)
	msgs := queueAll(t, s, c, run, "n1", t0)

	wantErr(t, "CampaignDelete(wrong state)", s.CampaignDelete(ctx, c.ID, []string{store.CampaignDraft}), store.ErrConflict)
	getCampaign(t, s, c.ID)
	wantErr(t, "CampaignDelete(unknown)", s.CampaignDelete(ctx, id.New(id.Campaign), store.CampaignStates), store.ErrNotFound)
	if err := s.CampaignDelete(ctx, c.ID, []string{store.CampaignRunning}); err != nil {
		t.Fatalf("CampaignDelete: %v", err)
	}
	_, err := s.CampaignGet(ctx, c.ID)
	wantErr(t, "CampaignGet(deleted)", err, store.ErrNotFound)
	_, err = s.RunGet(ctx, run.ID)
	wantErr(t, "RunGet(of a deleted campaign)", err, store.ErrNotFound)
	if runs, err := s.RunList(ctx, c.ID, 10); err != nil || len(runs) != 0 {
		t.Errorf("RunList(deleted campaign) = %v, %v", runs, err)
	}
	if rs, _, err := s.RunRecipients(ctx, store.RunRecipientListParams{RunID: run.ID}); (err != nil && !errors.Is(err, store.ErrNotFound)) || len(rs) != 0 {
		t.Errorf("RunRecipients(deleted run) = %v, %v; want none", rs, err)
	}
	// Its messages stay.
	for _, m := range msgs {
		if got := get(t, s, m.Message.ID); got.CampaignID != c.ID || got.RunID != run.ID {
			t.Errorf("message after delete = campaign %q run %q", got.CampaignID, got.RunID)
		}
	}
	wantErr(t, "CampaignDelete(again)", s.CampaignDelete(ctx, c.ID, store.CampaignStates), store.ErrNotFound)
}

func testRunCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newCampaign(t, s, []string{"lst_a"}, func(c *store.Campaign) {
		c.State = store.CampaignScheduled
		c.Schedule = store.Schedule{Kind: store.ScheduleCron, Cron: "0 9 * * *"}
		c.NextRunAt = t0
	})
	week := 7 * 24 * time.Hour
	p := store.RunCreateParams{
		Run: store.Run{ID: id.New(id.Run), CampaignID: c.ID, ScheduledAt: t0, TemplateVersion: 4,
			StartedAt: t0.Add(time.Second)},
		CampaignFrom: []string{store.CampaignScheduled},
		NextRunAt:    t0.Add(week),
		Owner:        "node-a", LeaseUntil: t0.Add(time.Minute),
	}
	run, err := s.RunCreate(ctx, p)
	if err != nil {
		t.Fatalf("RunCreate: %v", err)
	}
	want := store.Run{ID: p.Run.ID, CampaignID: c.ID, ScheduledAt: t0, State: store.RunRunning, TemplateVersion: 4,
		LeaseOwner: "node-a", LeaseUntil: t0.Add(time.Minute), StartedAt: t0.Add(time.Second),
		UpdatedAt: t0.Add(time.Second)}
	if diff := cmp.Diff(want, run, cmpOpts); diff != "" {
		t.Errorf("RunCreate returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, getRun(t, s, run.ID), cmpOpts); diff != "" {
		t.Errorf("RunGet (-want +got):\n%s", diff)
	}
	got := getCampaign(t, s, c.ID)
	if got.State != store.CampaignRunning || !got.NextRunAt.Equal(t0.Add(week)) || !got.LastRunAt.Equal(t0) {
		t.Errorf("campaign after RunCreate: state %q, next %v, last %v; want running, %v, %v",
			got.State, got.NextRunAt, got.LastRunAt, t0.Add(week), t0)
	}

	// The same occurrence again: ErrConflict, nothing changed (the campaign is made scheduled
	// again first, so that only the occurrence conflicts).
	if _, err := s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID, From: []string{store.CampaignRunning},
		To: store.CampaignScheduled, NextRunAt: t0.Add(week), Now: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	dup := p
	dup.Run.ID = id.New(id.Run)
	dup.NextRunAt = t0.Add(2 * week)
	_, err = s.RunCreate(ctx, dup)
	wantErr(t, "RunCreate(same occurrence)", err, store.ErrConflict)
	if got := getCampaign(t, s, c.ID); got.State != store.CampaignScheduled || !got.NextRunAt.Equal(t0.Add(week)) {
		t.Errorf("a refused RunCreate changed the campaign: %q, next %v", got.State, got.NextRunAt)
	}
	_, err = s.RunGet(ctx, dup.Run.ID)
	wantErr(t, "RunGet(refused run)", err, store.ErrNotFound)

	// The campaign not in CampaignFrom: ErrConflict.
	other := p
	other.Run.ID, other.Run.ScheduledAt = id.New(id.Run), t0.Add(week)
	other.CampaignFrom = []string{store.CampaignDraft}
	_, err = s.RunCreate(ctx, other)
	wantErr(t, "RunCreate(campaign state)", err, store.ErrConflict)
	_, err = s.RunGet(ctx, other.Run.ID)
	wantErr(t, "RunGet(refused run)", err, store.ErrNotFound)

	// The next occurrence, without an owner: no lease; no next occurrence after it.
	next := p
	next.Run.ID, next.Run.ScheduledAt, next.Run.StartedAt = id.New(id.Run), t0.Add(week), t0.Add(week)
	next.NextRunAt, next.Owner, next.LeaseUntil = time.Time{}, "", time.Time{}
	run2, err := s.RunCreate(ctx, next)
	if err != nil {
		t.Fatalf("RunCreate(next): %v", err)
	}
	if run2.LeaseOwner != "" || !run2.LeaseUntil.IsZero() || run2.State != store.RunRunning {
		t.Errorf("run without owner = %+v", run2)
	}
	if got := getCampaign(t, s, c.ID); got.State != store.CampaignRunning || !got.NextRunAt.IsZero() ||
		!got.LastRunAt.Equal(t0.Add(week)) {
		t.Errorf("campaign after the last run: %q next %v last %v", got.State, got.NextRunAt, got.LastRunAt)
	}
	_, err = s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: id.New(id.Campaign),
		ScheduledAt: t0, StartedAt: t0}, CampaignFrom: store.CampaignStates})
	wantErr(t, "RunCreate(unknown campaign)", err, store.ErrNotFound)

	runs, err := s.RunList(ctx, c.ID, 10)
	if err != nil {
		t.Fatalf("RunList: %v", err)
	}
	if len(runs) != 2 || runs[0].ID != run2.ID || runs[1].ID != run.ID {
		t.Errorf("RunList = %v, want [%s %s] (newest scheduled first)", runIDs(runs), run2.ID, run.ID)
	}
	if runs, err := s.RunList(ctx, c.ID, 1); err != nil || len(runs) != 1 || runs[0].ID != run2.ID {
		t.Errorf("RunList(limit 1) = %v, %v", runIDs(runs), err)
	}
	_, err = s.RunGet(ctx, id.New(id.Run))
	wantErr(t, "RunGet(unknown)", err, store.ErrNotFound)
}

func runIDs(rs []store.Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testRunLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	c1 := newCampaign(t, s, []string{"lst_a"})
	c2 := newCampaign(t, s, []string{"lst_a"})
	mk := func(c store.Campaign, started time.Time) store.Run {
		r, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: c.ID,
			ScheduledAt: started, StartedAt: started}, CampaignFrom: store.CampaignStates})
		if err != nil {
			t.Fatalf("RunCreate: %v", err)
		}
		return r
	}
	newer := mk(c1, t0)
	older := mk(c2, t0.Add(-time.Minute))
	lease := time.Minute
	claimRuns := func(owner string, limit int, now time.Time) []string {
		t.Helper()
		rs, err := s.RunClaim(ctx, store.RunClaimParams{Owner: owner, Limit: limit, Now: now, LeaseUntil: now.Add(lease)})
		if err != nil {
			t.Fatalf("RunClaim(%s): %v", owner, err)
		}
		for _, r := range rs {
			if r.LeaseOwner != owner || !r.LeaseUntil.Equal(now.Add(lease)) {
				t.Errorf("claimed run %s leased to %q until %v, want %q until %v", r.ID, r.LeaseOwner, r.LeaseUntil,
					owner, now.Add(lease))
			}
		}
		return runIDs(rs)
	}
	if got := claimRuns("a", 1, t0); !slices.Equal(got, []string{older.ID}) {
		t.Errorf("RunClaim(a, 1) = %v, want the oldest started %s", got, older.ID)
	}
	if got := claimRuns("b", 5, t0); !slices.Equal(got, []string{newer.ID}) {
		t.Errorf("RunClaim(b) = %v, want %s only (the other is leased)", got, newer.ID)
	}
	if got := claimRuns("c", 5, t0.Add(30*time.Second)); len(got) != 0 {
		t.Errorf("RunClaim while leased = %v", got)
	}
	if r := getRun(t, s, older.ID); r.LeaseOwner != "a" {
		t.Errorf("run %s leased to %q, want a", older.ID, r.LeaseOwner)
	}

	// Renew extends the leases still held.
	n, err := s.RunRenewLeases(ctx, store.RunRenewParams{Owner: "a", IDs: []string{older.ID, newer.ID},
		Until: t0.Add(5 * time.Minute)})
	if err != nil || n != 1 {
		t.Errorf("RunRenewLeases(a) = %d, %v; want 1", n, err)
	}
	if r := getRun(t, s, older.ID); !r.LeaseUntil.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("renewed lease until %v", r.LeaseUntil)
	}
	// An ended lease is taken over; its former owner no longer holds it.
	if got := claimRuns("c", 5, t0.Add(2*time.Minute)); !slices.Equal(got, []string{newer.ID}) {
		t.Errorf("RunClaim(c) after b's lease ended = %v, want %s", got, newer.ID)
	}
	if n, err := s.RunRenewLeases(ctx, store.RunRenewParams{Owner: "b", IDs: []string{newer.ID},
		Until: t0.Add(time.Hour)}); err != nil || n != 0 {
		t.Errorf("RunRenewLeases(b, taken over) = %d, %v; want 0", n, err)
	}

	// Release: by owner (a prefix of it: a node's id and "/"), then every lease.
	if n, err := s.RunReleaseLeases(ctx, "c/"); err != nil || n != 0 {
		t.Errorf("RunReleaseLeases(c/) = %d, %v; want 0 (c is not c/…)", n, err)
	}
	if n, err := s.RunReleaseLeases(ctx, "c"); err != nil || n != 1 {
		t.Errorf("RunReleaseLeases(c) = %d, %v; want 1", n, err)
	}
	if r := getRun(t, s, newer.ID); r.LeaseOwner != "" || !r.LeaseUntil.IsZero() {
		t.Errorf("released run leased to %q until %v", r.LeaseOwner, r.LeaseUntil)
	}
	if got := claimRuns("node-1/w", 5, t0.Add(2*time.Minute)); !slices.Equal(got, []string{newer.ID}) {
		t.Errorf("RunClaim(node-1/w) after release = %v, want %s", got, newer.ID)
	}
	if n, err := s.RunReleaseLeases(ctx, "node-2/"); err != nil || n != 0 {
		t.Errorf("RunReleaseLeases(node-2/) = %d, %v; want 0", n, err)
	}
	if n, err := s.RunReleaseLeases(ctx, "node-1/"); err != nil || n != 1 {
		t.Errorf("RunReleaseLeases(node-1/) = %d, %v; want 1", n, err)
	}
	if got := claimRuns("d", 5, t0.Add(2*time.Minute)); !slices.Equal(got, []string{newer.ID}) {
		t.Errorf("RunClaim(d) after release = %v, want %s", got, newer.ID)
	}
	if n, err := s.RunReleaseLeases(ctx, ""); err != nil || n != 2 {
		t.Errorf("RunReleaseLeases(all) = %d, %v; want 2", n, err)
	}

	// Only running runs are claimed.
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: older.ID, From: []string{store.RunRunning},
		To: store.RunPaused, PauseReasons: []string{store.PauseManual}, Now: t0.Add(3 * time.Minute)}); err != nil {
		t.Fatalf("RunSetState(paused): %v", err)
	}
	if got := claimRuns("e", 5, t0.Add(3*time.Minute)); !slices.Equal(got, []string{newer.ID}) {
		t.Errorf("RunClaim with one run paused = %v, want %s", got, newer.ID)
	}
}

// materialiseFixture is an audience on overlapping lists: a, b and e (plain) and c (double
// opt-in), and d outside the campaign's audience, with contacts covering every exclusion.
type materialiseFixture struct {
	a, b, c, d, e string
	ids           map[string]string   // local part → contact id
	emails        map[string]string   // local part → email as given
	listsOf       map[string][]string // the recipients: local part → subscribed audience lists
}

func newMaterialiseFixture(t *testing.T, s store.Store) materialiseFixture {
	t.Helper()
	ctx := t.Context()
	f := materialiseFixture{ids: map[string]string{}, emails: map[string]string{}, listsOf: map[string][]string{}}
	f.a, f.b, f.d, f.e = newList(t, s, "a", false).ID, newList(t, s, "b", false).ID, newList(t, s, "d", false).ID,
		newList(t, s, "e", false).ID
	f.c = newList(t, s, "c", true).ID
	add := func(local string, lists ...string) {
		f.emails[local] = local + "@Example.com"
		res := upsertOK(t, s, t0.Add(-time.Hour), item(f.emails[local], func(it *store.ContactUpsert) {
			it.Lists = lists
		}))
		f.ids[local] = res[0].ID
	}
	unsub := func(local, list string) {
		if _, err := s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: list, Contact: store.ContactRef{ID: f.ids[local]},
			Status: store.SubscriptionUnsubscribed, Consent: store.Consent{Source: "api"}, Now: t0.Add(-time.Hour)}); err != nil {
			t.Fatalf("SubscriptionSet: %v", err)
		}
	}
	add("ann", f.a, f.b, f.c) // subscribed to a and b, pending on c
	add("bob", f.a, f.b)
	unsub("bob", f.a) // subscribed to b only
	add("cat", f.c)   // pending only
	add("dan", f.a)
	unsub("dan", f.a) // unsubscribed only
	add("eli", f.a, f.c)
	unsub("eli", f.a) // unsubscribed from a, pending on c: pending
	add("eve", f.a)   // suppressed, global
	add("fay", f.b)   // suppressed, broadcast (a complaint)
	add("gus", f.a)   // suppressed on list a only: left to delivery
	add("hal", f.e)   // suppressed, expired
	add("kim", f.a)   // unsubscribed from all broadcast mail
	add("ivy", f.d)   // on a list outside the audience
	add("jon")        // on no list
	add("lea", f.e, f.b)
	upsert(t, s,
		store.Suppression{Email: "eve@example.com", Reason: store.ReasonHardBounce, CreatedAt: t0},
		store.Suppression{Email: "fay@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonComplaint, CreatedAt: t0},
		store.Suppression{Email: "gus@example.com", Scope: f.a, Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		store.Suppression{Email: "hal@example.com", Reason: store.ReasonManual, CreatedAt: t0.Add(-48 * time.Hour),
			ExpiresAt: t0.Add(-24 * time.Hour)},
		store.Suppression{Email: "kim@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		store.Suppression{Email: "ivy@example.com", Reason: store.ReasonManual, CreatedAt: t0},
	)
	// Many contacts on the three overlapping plain lists, in every combination.
	combos := [][]string{{f.a}, {f.b}, {f.e}, {f.a, f.b}, {f.a, f.e}, {f.b, f.e}, {f.a, f.b, f.e}}
	var items []store.ContactUpsert
	for i := range 35 {
		lists := combos[i%len(combos)]
		items = append(items, item(fmt.Sprintf("m%02d@example.com", i), func(it *store.ContactUpsert) { it.Lists = lists }))
	}
	for i, r := range upsertOK(t, s, t0.Add(-time.Hour), items...) {
		f.ids[fmt.Sprintf("m%02d", i)] = r.ID
		f.emails[fmt.Sprintf("m%02d", i)] = items[i].Email
		f.listsOf[fmt.Sprintf("m%02d", i)] = combos[i%len(combos)]
	}
	f.listsOf["ann"] = []string{f.a, f.b}
	f.listsOf["bob"] = []string{f.b}
	f.listsOf["gus"] = []string{f.a}
	f.listsOf["hal"] = []string{f.e}
	f.listsOf["lea"] = []string{f.e, f.b}
	return f
}

func testRunMaterialiseLists(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := newMaterialiseFixture(t, s)
	lists := []string{f.a, f.b, f.c, f.e}
	c := newCampaign(t, s, lists)
	run := startRun(t, s, c, t0, "n1")
	aud := store.RunAudience{Lists: lists, CampaignID: c.ID}

	// Another owner changes nothing.
	_, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "n2", Audience: aud, Limit: 100, Now: t0})
	wantErr(t, "RunMaterialise(not the lease's owner)", err, store.ErrConflict)
	if r := getRun(t, s, run.ID); r.Recipients != 0 || r.Materialised || r.Cursor != "" {
		t.Errorf("a refused chunk changed the run: %+v", r)
	}

	sum := materialiseAll(t, s, run, "n1", aud, 7, t0)
	wantX := store.ExcludedCounts{Unsubscribed: 2, Pending: 2, Suppressed: 2} // dan kim; cat eli; eve fay
	if sum.Added != len(f.listsOf) || sum.Excluded != wantX {
		t.Errorf("materialised %d, excluded %+v; want %d, %+v", sum.Added, sum.Excluded, len(f.listsOf), wantX)
	}
	r := getRun(t, s, run.ID)
	if !r.Materialised || r.Recipients != len(f.listsOf) || r.Excluded != wantX || r.Cursor == "" {
		t.Errorf("run after materialising: materialised %v, %d recipients, excluded %+v, cursor %q",
			r.Materialised, r.Recipients, r.Excluded, r.Cursor)
	}
	// Each contact once, on the lowest of its subscribed audience lists.
	got := map[string]store.RunRecipient{}
	for _, rc := range allRecipients(t, s, run.ID, "") {
		if _, dup := got[rc.ContactID]; dup {
			t.Errorf("contact %s materialised twice", rc.ContactID)
		}
		got[rc.ContactID] = rc
	}
	if len(got) != len(f.listsOf) {
		t.Errorf("%d recipients, want %d", len(got), len(f.listsOf))
	}
	for local, ls := range f.listsOf {
		rc, ok := got[f.ids[local]]
		if !ok {
			t.Errorf("%s is not a recipient", local)
			continue
		}
		if want := slices.Min(ls); rc.ListID != want || rc.Status != store.CampaignRecipientPending ||
			rc.Email != f.emails[local] ||
			rc.MessageID != "" || rc.RunID != run.ID || !rc.UpdatedAt.Equal(t0) {
			t.Errorf("recipient %s = %+v, want pending on %s", local, rc, want)
		}
	}

	// Once materialised, a chunk adds nothing.
	res, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "n1", Audience: aud, Limit: 7, Now: t0})
	if err != nil || !res.Done || res.Added != 0 {
		t.Errorf("RunMaterialise after done = %+v, %v; want done, nothing added", res, err)
	}
	if r := getRun(t, s, run.ID); r.Recipients != len(f.listsOf) || r.Excluded != wantX {
		t.Errorf("run after a chunk past done: %d recipients, %+v", r.Recipients, r.Excluded)
	}

	// One chunk for the whole audience is the same.
	run2 := startRun(t, s, c, t0.Add(time.Hour), "n1")
	if sum := materialiseAll(t, s, run2, "n1", aud, 1000, t0); sum.Added != len(f.listsOf) || sum.Excluded != wantX {
		t.Errorf("one chunk: %+v", sum)
	}
	_, err = s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: id.New(id.Run), Owner: "n1", Audience: aud, Limit: 7, Now: t0})
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		t.Errorf("RunMaterialise(unknown run) = %v, want ErrNotFound or ErrConflict", err)
	}
}

func testRunMaterialiseSegment(t *testing.T, s store.Store) {
	f := NewSegmentFixture()
	SeedSegmentFixture(t, s, f)
	upsert(t, s, store.Suppression{Email: "hal@example.com", Reason: store.ReasonManual, CreatedAt: t0})
	english := fieldCond("locale", store.CmpEq, "en") // ann cat dan gus hal
	recipients := func(run store.Run) map[string]string {
		out := map[string]string{}
		for _, rc := range allRecipients(t, s, run.ID, "") {
			local, _, _ := strings.Cut(strings.ToLower(rc.Email), "@")
			out[local] = rc.ListID
		}
		return out
	}

	// A segment alone: every contact it matches, no subscription needed, on no list.
	c := newCampaign(t, s, nil, func(c *store.Campaign) { c.Segment = "seg_en" })
	run := startRun(t, s, c, t0, "n1")
	sum := materialiseAll(t, s, run, "n1", store.RunAudience{Filter: english, CampaignID: c.ID}, 2, f.Now)
	if want := (store.ExcludedCounts{Suppressed: 1}); sum.Added != 4 || sum.Excluded != want {
		t.Errorf("segment alone: %+v, want 4 added and %+v", sum, want)
	}
	if got, want := recipients(run), map[string]string{"ann": "", "cat": "", "dan": "", "gus": ""}; !maps.Equal(got, want) {
		t.Errorf("segment alone: recipients %v, want %v", got, want)
	}

	// Lists and a segment: contacts on a list AND in the segment.
	c2 := newCampaign(t, s, []string{f.News, f.Promo}, func(c *store.Campaign) { c.Segment = "seg_en" })
	run2 := startRun(t, s, c2, t0, "n1")
	sum = materialiseAll(t, s, run2, "n1", store.RunAudience{Lists: []string{f.News, f.Promo}, Filter: english,
		CampaignID: c2.ID}, 3, f.Now)
	if want := (store.ExcludedCounts{Pending: 1}); sum.Added != 2 || sum.Excluded != want {
		t.Errorf("lists and segment: %+v, want 2 added and %+v", sum, want)
	}
	if got, want := recipients(run2), map[string]string{"ann": f.News, "dan": f.Promo}; !maps.Equal(got, want) {
		t.Errorf("lists and segment: recipients %v, want %v", got, want)
	}

	// A relative time is taken back from the chunk's Now.
	inactive := &store.Filter{Op: store.FilterCond, Field: "last_active_at", Type: store.AttrTime, Cmp: store.CmpLt,
		Ago: 30 * 24 * time.Hour} // ann dan eve
	c3 := newCampaign(t, s, nil, func(c *store.Campaign) { c.Segment = "seg_inactive" })
	run3 := startRun(t, s, c3, t0, "n1")
	materialiseAll(t, s, run3, "n1", store.RunAudience{Filter: inactive, CampaignID: c3.ID}, 100, f.Now)
	if got, want := recipients(run3), map[string]string{"ann": "", "dan": "", "eve": ""}; !maps.Equal(got, want) {
		t.Errorf("inactive 30 days: recipients %v, want %v", got, want)
	}
}

func testRunMaterialiseCap(t *testing.T, s store.Store) {
	l, ids := audienceContacts(t, s, "ann@example.com", "bob@example.com", "cat@example.com")
	ann, bob, cat := ids[0], ids[1], ids[2]
	day := 24 * time.Hour
	aud := func(c store.Campaign) store.RunAudience {
		return store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID, Cap: c.Cap}
	}
	// queue runs an occurrence of c at now, giving a message to those in send and failing the
	// others.
	queue := func(c store.Campaign, now time.Time, send ...string) store.RunMaterialiseResult {
		t.Helper()
		run := startRun(t, s, c, now, "n1")
		sum := materialiseAll(t, s, run, "n1", aud(c), 10, now)
		var items []store.RunQueueItem
		for _, r := range pendingRecipients(t, s, run.ID) {
			if slices.Contains(send, r.ContactID) {
				items = append(items, store.RunQueueItem{ContactID: r.ContactID, Message: campaignMessage(r, c, now)})
			} else {
				items = append(items, store.RunQueueItem{ContactID: r.ContactID, Status: store.CampaignRecipientFailed,
					Reason: "template error"})
			}
		}
		if err := s.RunQueue(t.Context(), store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1",
			Items: items, Day: now.Format(time.DateOnly), Now: now}); err != nil {
			t.Fatalf("RunQueue: %v", err)
		}
		return sum
	}
	recipientsOf := func(c store.Campaign, now time.Time) ([]string, store.ExcludedCounts) {
		t.Helper()
		run := startRun(t, s, c, now, "n1")
		sum := materialiseAll(t, s, run, "n1", aud(c), 2, now)
		var out []string
		for _, r := range allRecipients(t, s, run.ID, "") {
			out = append(out, r.ContactID)
		}
		slices.Sort(out)
		return out, sum.Excluded
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }

	// At most once per 30 days: ann had it 40 days ago, bob 20 days ago, cat's failed (no message).
	days := newCampaign(t, s, []string{l.ID}, func(c *store.Campaign) { c.Cap = store.FrequencyCap{Kind: store.CapDays, Days: 30} })
	queue(days, t0.Add(-40*day), ann)
	if sum := queue(days, t0.Add(-20*day), bob); sum.Excluded.Capped != 1 || sum.Added != 2 {
		t.Errorf("second run: %+v, want ann capped", sum)
	}
	got, x := recipientsOf(days, t0)
	if want := sorted(ann, cat); !slices.Equal(got, want) || x.Capped != 1 {
		t.Errorf("cap of 30 days: recipients %v (capped %d), want %v and bob capped", got, x.Capped, want)
	}

	// Once per contact, ever; another campaign's sends do not count.
	once := newCampaign(t, s, []string{l.ID}, func(c *store.Campaign) { c.Cap = store.FrequencyCap{Kind: store.CapOncePerContact} })
	queue(once, t0.Add(-400*day), ann)
	got, x = recipientsOf(once, t0)
	if want := sorted(bob, cat); !slices.Equal(got, want) || x.Capped != 1 {
		t.Errorf("once per contact: recipients %v (capped %d), want %v and ann capped", got, x.Capped, want)
	}

	// No cap: everyone, every time.
	none := newCampaign(t, s, []string{l.ID})
	queue(none, t0.Add(-time.Hour), ann, bob, cat)
	if got, x := recipientsOf(none, t0); !slices.Equal(got, sorted(ann, bob, cat)) || x.Capped != 0 {
		t.Errorf("no cap: recipients %v (capped %d)", got, x.Capped)
	}
}

func testRunPending(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, ids := audienceContacts(t, s, "ann@example.com", "Bob@Example.com", "cat@example.com")
	if _, err := s.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: []store.ContactUpsert{
		item("Bob@Example.com", func(it *store.ContactUpsert) {
			it.Name = strp("Bob")
			it.Attributes = json.RawMessage(`{"plan":"pro"}`)
		})}, Now: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c := newCampaign(t, s, []string{l.ID})
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, 10, t0)
	sorted := slices.Sorted(slices.Values(ids))

	page, err := s.RunPending(ctx, store.RunPendingParams{RunID: run.ID, Limit: 2})
	if err != nil {
		t.Fatalf("RunPending: %v", err)
	}
	if len(page) != 2 || page[0].ContactID != sorted[0] || page[1].ContactID != sorted[1] {
		t.Fatalf("RunPending(limit 2) = %+v, want %v", page, sorted[:2])
	}
	rest, err := s.RunPending(ctx, store.RunPendingParams{RunID: run.ID, After: page[1].ContactID, Limit: 2})
	if err != nil || len(rest) != 1 || rest[0].ContactID != sorted[2] {
		t.Fatalf("RunPending(after) = %+v, %v; want %s", rest, err, sorted[2])
	}
	for _, r := range append(page, rest...) {
		want := contact(t, s, store.ContactRef{ID: r.ContactID})
		if diff := cmp.Diff(want, r.Contact, cmpOpts); diff != "" {
			t.Errorf("RunPending's contact %s (-want +got):\n%s", r.ContactID, diff)
		}
		if r.Email != want.Email || r.ListID != l.ID || r.Status != store.CampaignRecipientPending || r.RunID != run.ID {
			t.Errorf("pending recipient = %+v", r)
		}
	}

	// Queued ones are no longer pending.
	bob := contact(t, s, store.ContactRef{EmailKey: "bob@example.com"})
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Day: "2026-03-01",
		Now: t0, Items: []store.RunQueueItem{{ContactID: bob.ID, Status: store.CampaignRecipientFailed, Reason: "x"}}}); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	all := pendingRecipients(t, s, run.ID)
	if len(all) != 2 || slices.ContainsFunc(all, func(r store.RunRecipient) bool { return r.ContactID == bob.ID }) {
		t.Errorf("pending after bob failed: %v", all)
	}
}

func testRunQueue(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, ids := audienceContacts(t, s, "ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com",
		"eve@example.com")
	ann, bob, cat, dan, eve := ids[0], ids[1], ids[2], ids[3], ids[4]
	c := newCampaign(t, s, []string{l.ID}, func(c *store.Campaign) { c.State = store.CampaignScheduled })
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, 10, t0)
	byID := map[string]store.RunRecipient{}
	for _, r := range pendingRecipients(t, s, run.ID) {
		byID[r.ContactID] = r
	}
	t1 := t0.Add(time.Minute)
	mAnn, mBob := campaignMessage(byID[ann], c, t1), campaignMessage(byID[bob], c, t1)
	items := []store.RunQueueItem{
		{ContactID: ann, Message: mAnn},
		{ContactID: bob, Message: mBob},
		{ContactID: cat, Status: store.CampaignRecipientUnsubscribed, Reason: "unsubscribed from the list"},
		{ContactID: dan, Status: store.CampaignRecipientFailed, Reason: "template: missing key"},
		{ContactID: id.New(id.Contact), Status: store.CampaignRecipientFailed, Reason: "not a recipient"},
	}
	p := store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Items: items, Day: "2026-03-01", Now: t1}

	// Refused: another owner, or the run not running; nothing changes.
	other := p
	other.Owner = "n2"
	wantErr(t, "RunQueue(not the lease's owner)", s.RunQueue(ctx, other), store.ErrConflict)
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning},
		To: store.RunPaused, PauseReasons: []string{store.PauseManual}, Now: t1}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RunQueue(paused run)", s.RunQueue(ctx, p), store.ErrConflict)
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunPaused},
		To: store.RunRunning, TTL: time.Hour, Now: t1}); err != nil {
		t.Fatal(err)
	}
	if got := pendingRecipients(t, s, run.ID); len(got) != 5 {
		t.Fatalf("a refused RunQueue changed recipients: %d pending", len(got))
	}
	_, err := s.MessageGet(ctx, mAnn.Message.ID)
	wantErr(t, "MessageGet(refused queue)", err, store.ErrNotFound)
	if n, err := s.CampaignDayCount(ctx, "2026-03-01"); err != nil || n != 0 {
		t.Errorf("CampaignDayCount after refused queues = %d, %v", n, err)
	}

	wake := s.Wakeups(store.StreamBroadcast)
	for len(wake) > 0 {
		<-wake
	}
	if err := s.RunQueue(ctx, p); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second): // a failure guard, not a wait for time to pass
		t.Error("RunQueue did not wake the broadcast stream")
	}
	for _, m := range []*store.NewMessage{mAnn, mBob} {
		got := get(t, s, m.Message.ID)
		if diff := cmp.Diff(m.Message, got, cmpOpts); diff != "" {
			t.Errorf("message stored by RunQueue (-want +got):\n%s", diff)
		}
		raw, err := s.MessageRaw(ctx, m.Message.ID)
		if err != nil || string(raw) != string(m.Raw) {
			t.Errorf("MessageRaw(%s) = %d octets, %v", m.Message.ID, len(raw), err)
		}
		if types := eventTypes(t, s, m.Message.ID); !slices.Equal(types, []string{store.EventQueued}) {
			t.Errorf("timeline = %v, want [queued]", types)
		}
	}
	want := map[string]store.RunRecipient{
		ann: {Status: store.CampaignRecipientQueued, MessageID: mAnn.Message.ID},
		bob: {Status: store.CampaignRecipientQueued, MessageID: mBob.Message.ID},
		cat: {Status: store.CampaignRecipientUnsubscribed, Reason: "unsubscribed from the list"},
		dan: {Status: store.CampaignRecipientFailed, Reason: "template: missing key"},
		eve: {Status: store.CampaignRecipientPending},
	}
	rs := allRecipients(t, s, run.ID, "")
	if len(rs) != len(want) {
		t.Errorf("%d recipients after RunQueue, want %d", len(rs), len(want))
	}
	for _, r := range rs {
		w := want[r.ContactID]
		wantAt := t1
		if r.ContactID == eve {
			wantAt = t0
		}
		if r.Status != w.Status || r.MessageID != w.MessageID || r.Reason != w.Reason || !r.UpdatedAt.Equal(wantAt) {
			t.Errorf("recipient %s = %+v, want %s/%q/%q at %v", r.ContactID, r, w.Status, w.MessageID, w.Reason, wantAt)
		}
	}
	if n, err := s.CampaignDayCount(ctx, "2026-03-01"); err != nil || n != 2 {
		t.Errorf("CampaignDayCount = %d, %v; want 2", n, err)
	}
	if n, err := s.CampaignDayCount(ctx, "2026-03-02"); err != nil || n != 0 {
		t.Errorf("CampaignDayCount(another day) = %d, %v; want 0", n, err)
	}
	// The messages are broadcast work like any other.
	claimed := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: t1,
		LeaseUntil: t1.Add(time.Minute)})
	if got := slices.Sorted(slices.Values(claimedIDs(claimed))); !slices.Equal(got,
		slices.Sorted(slices.Values([]string{mAnn.Message.ID, mBob.Message.ID}))) {
		t.Errorf("claimed %v, want the two campaign messages", got)
	}
	for _, cm := range claimed {
		if cm.ListID != l.ID {
			t.Errorf("claimed message's list = %q, want %s", cm.ListID, l.ID)
		}
	}

	// A repeat changes nothing and fails nothing: only pending recipients are changed.
	if err := s.RunQueue(ctx, p); err != nil {
		t.Errorf("RunQueue(repeat): %v", err)
	}
	if n, err := s.CampaignDayCount(ctx, "2026-03-01"); err != nil || n != 2 {
		t.Errorf("CampaignDayCount after a repeat = %d, %v; want 2", n, err)
	}
	if ms, err := s.MessageList(ctx, store.MessageListParams{CampaignID: c.ID}); err != nil || len(ms) != 2 {
		t.Errorf("campaign messages after a repeat: %d, %v; want 2", len(ms), err)
	}
	// A recipient without a message is given unsubscribed, suppressed or failed, nothing else.
	for _, st := range []string{store.CampaignRecipientQueued, store.CampaignRecipientPending, ""} {
		if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Day: "2026-03-01",
			Now: t1, Items: []store.RunQueueItem{{ContactID: eve, Status: st}}}); err == nil {
			t.Errorf("RunQueue(state %q without a message) succeeded", st)
		}
	}
	// One outcome per recipient.
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Day: "2026-03-01", Now: t1,
		Items: []store.RunQueueItem{{ContactID: eve, Message: campaignMessage(byID[eve], c, t1)},
			{ContactID: eve, Message: campaignMessage(byID[eve], c, t1)}}}); err == nil {
		t.Error("RunQueue with two messages for one recipient succeeded")
	}
	// The last one, counted on the same day.
	mEve := campaignMessage(byID[eve], c, t1)
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Day: "2026-03-01",
		Now: t1, Items: []store.RunQueueItem{{ContactID: eve, Message: mEve}}}); err != nil {
		t.Fatalf("RunQueue(eve): %v", err)
	}
	if n, err := s.CampaignDayCount(ctx, "2026-03-01"); err != nil || n != 3 {
		t.Errorf("CampaignDayCount = %d, %v; want 3", n, err)
	}
	if got := pendingRecipients(t, s, run.ID); len(got) != 0 {
		t.Errorf("%d still pending", len(got))
	}
}

// progressRun is a run of a campaign over list l whose recipients (contacts ids) were all given
// messages at t0 that are due at t0, t0+1s, … in the order of ids.
func progressRun(t *testing.T, s store.Store, emails ...string) (store.Campaign, store.Run, []string, map[string]*store.NewMessage) {
	t.Helper()
	l, ids := audienceContacts(t, s, emails...)
	c := newCampaign(t, s, []string{l.ID}, func(c *store.Campaign) { c.State = store.CampaignScheduled })
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, 100, t0)
	byID := map[string]store.RunRecipient{}
	for _, r := range pendingRecipients(t, s, run.ID) {
		byID[r.ContactID] = r
	}
	msgs := map[string]*store.NewMessage{}
	var items []store.RunQueueItem
	for i, cid := range ids {
		m := campaignMessage(byID[cid], c, t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(time.Duration(i) * time.Second) })
		msgs[cid] = m
		items = append(items, store.RunQueueItem{ContactID: cid, Message: m})
	}
	if err := s.RunQueue(t.Context(), store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Items: items,
		Day: "2026-03-01", Now: t0}); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	return c, run, ids, msgs
}

func testRunPauseResume(t *testing.T, s store.Store) {
	ctx := t.Context()
	c, run, ids, msgs := progressRun(t, s, "ann@example.com", "bob@example.com", "cat@example.com")
	deferred, sending, queued := msgs[ids[0]].Message.ID, msgs[ids[1]].Message.ID, msgs[ids[2]].Message.ID
	// ann's message deferred to t0+10m, bob's being sent, cat's queued.
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 1, Now: t0,
		LeaseUntil: t0.Add(time.Minute)}); len(got) != 1 || got[0].ID != deferred {
		t.Fatalf("claimed %v, want %s", claimedIDs(got), deferred)
	}
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{{ID: deferred, Owner: "w", Status: store.StatusDeferred,
		Attempts: 1, NextAttemptAt: t0.Add(10 * time.Minute)}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 1, Now: t0.Add(time.Second),
		LeaseUntil: t0.Add(time.Minute)}); len(got) != 1 || got[0].ID != sending {
		t.Fatalf("claimed %v, want %s", claimedIDs(got), sending)
	}
	expires := get(t, s, queued).ExpiresAt // t0 + 24h

	t1 := t0.Add(time.Minute)
	paused, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning}, To: store.RunPaused,
		PauseReasons: []string{store.PauseManual}, Campaign: store.CampaignPaused,
		CampaignReasons: []string{store.PauseManual}, Now: t1})
	if err != nil {
		t.Fatalf("RunSetState(paused): %v", err)
	}
	if paused.State != store.RunPaused || !slices.Equal(paused.PauseReasons, []string{store.PauseManual}) ||
		!paused.UpdatedAt.Equal(t1) || !paused.FinishedAt.IsZero() {
		t.Errorf("paused run = %+v", paused)
	}
	if got := getCampaign(t, s, c.ID); got.State != store.CampaignPaused || !slices.Equal(got.PauseReasons, []string{store.PauseManual}) {
		t.Errorf("campaign of the paused run: %q %v", got.State, got.PauseReasons)
	}
	for _, id := range []string{deferred, queued} {
		if m := get(t, s, id); !m.NextAttemptAt.Equal(store.HeldUntil) || (m.Status != store.StatusQueued && m.Status != store.StatusDeferred) {
			t.Errorf("held message %s: %s, next attempt %v; want %v", id, m.Status, m.NextAttemptAt, store.HeldUntil)
		}
	}
	if m := get(t, s, sending); m.Status != store.StatusSending {
		t.Errorf("the message being sent is %s", m.Status)
	}
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: t0.Add(24 * time.Hour),
		LeaseUntil: t0.Add(25 * time.Hour)}); len(got) != 0 {
		t.Errorf("claimed %v from a paused run", claimedIDs(got))
	}
	_, err = s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning}, To: store.RunPaused, Now: t1})
	wantErr(t, "RunSetState(from running, paused)", err, store.ErrConflict)

	// The message being sent at the pause comes back deferred: paused again, the run holds it too.
	if n, err := s.MessageFinish(ctx, t1, []store.MessageFinishParams{{ID: sending, Owner: "w", Status: store.StatusDeferred,
		Attempts: 1, NextAttemptAt: t1.Add(5 * time.Minute)}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunPaused}, To: store.RunPaused,
		PauseReasons: []string{store.PauseManual}, Now: t1}); err != nil {
		t.Fatalf("RunSetState(paused, again): %v", err)
	}
	if m := get(t, s, sending); !m.NextAttemptAt.Equal(store.HeldUntil) || m.Status != store.StatusDeferred {
		t.Errorf("the message deferred during the pause: %s, next attempt %v; want held", m.Status, m.NextAttemptAt)
	}
	_, err = s.RunSetState(ctx, store.RunSetStateParams{ID: id.New(id.Run), From: []string{store.RunRunning}, To: store.RunPaused, Now: t1})
	wantErr(t, "RunSetState(unknown)", err, store.ErrNotFound)

	// Resumed soon with a short TTL: due at once, the longer expiry kept; then paused again.
	tr := t1.Add(time.Minute)
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunPaused}, To: store.RunRunning,
		TTL: time.Hour, Now: tr}); err != nil {
		t.Fatalf("RunSetState(running): %v", err)
	}
	for _, id := range []string{deferred, sending, queued} {
		if m := get(t, s, id); m.NextAttemptAt.After(tr) || !m.ExpiresAt.Equal(expires) {
			t.Errorf("message %s resumed with a short TTL: next attempt %v, expires %v; want due at %v, expiring at %v",
				id, m.NextAttemptAt, m.ExpiresAt, tr, expires)
		}
	}
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning}, To: store.RunPaused,
		PauseReasons: []string{store.PauseDailyQuota}, Now: tr}); err != nil {
		t.Fatalf("RunSetState(paused again): %v", err)
	}

	// Resumed three days later: due at once, each with at least the TTL from then.
	t2 := t0.Add(72 * time.Hour)
	ttl := 24 * time.Hour
	resumed, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunPaused}, To: store.RunRunning,
		TTL: ttl, Campaign: store.CampaignRunning, Now: t2})
	if err != nil {
		t.Fatalf("RunSetState(running): %v", err)
	}
	if resumed.State != store.RunRunning || len(resumed.PauseReasons) != 0 {
		t.Errorf("resumed run = %+v", resumed)
	}
	if got := getCampaign(t, s, c.ID); got.State != store.CampaignRunning || len(got.PauseReasons) != 0 {
		t.Errorf("campaign of the resumed run: %q %v", got.State, got.PauseReasons)
	}
	for _, id := range []string{deferred, sending, queued} {
		m := get(t, s, id)
		if m.NextAttemptAt.After(t2) || m.ExpiresAt.Before(t2.Add(ttl)) {
			t.Errorf("resumed message %s: next attempt %v, expires %v; want due at %v, expiring at or after %v",
				id, m.NextAttemptAt, m.ExpiresAt, t2, t2.Add(ttl))
		}
	}
	got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: t2,
		LeaseUntil: t2.Add(time.Minute)})
	if ids := slices.Sorted(slices.Values(claimedIDs(got))); !slices.Equal(ids, slices.Sorted(slices.Values([]string{deferred, sending, queued}))) {
		t.Errorf("claimed after resume %v, want all three", ids)
	}
}

func testRunCancel(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, ids := audienceContacts(t, s, "ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com")
	c := newCampaign(t, s, []string{l.ID}, func(c *store.Campaign) { c.State = store.CampaignScheduled })
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, 100, t0)
	byID := map[string]store.RunRecipient{}
	for _, r := range pendingRecipients(t, s, run.ID) {
		byID[r.ContactID] = r
	}
	// ann's message queued, bob's being sent, cat's sent; dan still pending.
	mAnn := campaignMessage(byID[ids[0]], c, t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(time.Hour) })
	mBob := campaignMessage(byID[ids[1]], c, t0)
	mCat := campaignMessage(byID[ids[2]], c, t0)
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Day: "2026-03-01", Now: t0,
		Items: []store.RunQueueItem{{ContactID: ids[0], Message: mAnn}, {ContactID: ids[1], Message: mBob},
			{ContactID: ids[2], Message: mCat}}}); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	claimed := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: t0,
		LeaseUntil: t0.Add(time.Minute)})
	if len(claimed) != 2 {
		t.Fatalf("claimed %v, want bob's and cat's", claimedIDs(claimed))
	}
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{{ID: mCat.Message.ID, Owner: "w", Status: store.StatusSent,
		Attempts: 1, SentAt: t0, Events: []store.Event{{Type: store.EventSent, At: t0}}}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}

	t1 := t0.Add(time.Minute)
	run2, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning, store.RunPaused},
		To: store.RunCancelled, Campaign: store.CampaignCancelled, Now: t1})
	if err != nil {
		t.Fatalf("RunSetState(cancelled): %v", err)
	}
	if run2.State != store.RunCancelled || !run2.FinishedAt.Equal(t1) || !run2.UpdatedAt.Equal(t1) {
		t.Errorf("cancelled run = %+v", run2)
	}
	if got := getCampaign(t, s, c.ID); got.State != store.CampaignCancelled {
		t.Errorf("campaign state %q, want cancelled", got.State)
	}
	for _, tc := range []struct {
		id     string
		status store.Status
		events []string
	}{
		{mAnn.Message.ID, store.StatusCancelled, []string{store.EventQueued, store.EventCancelled}},
		{mBob.Message.ID, store.StatusSending, []string{store.EventQueued}},
		{mCat.Message.ID, store.StatusSent, []string{store.EventQueued, store.EventSent}},
	} {
		if m := get(t, s, tc.id); m.Status != tc.status {
			t.Errorf("message %s is %s after cancel, want %s", tc.id, m.Status, tc.status)
		}
		if got := eventTypes(t, s, tc.id); !slices.Equal(got, tc.events) {
			t.Errorf("timeline of %s = %v, want %v", tc.id, got, tc.events)
		}
	}
	if evs, err := s.MessageEvents(ctx, mAnn.Message.ID); err != nil || !evs[len(evs)-1].At.Equal(t1) {
		t.Errorf("cancelled event: %v, %v; want at %v", evs, err, t1)
	}
	if got := allRecipients(t, s, run.ID, store.CampaignRecipientCancelled); len(got) != 1 || got[0].ContactID != ids[3] ||
		!got[0].UpdatedAt.Equal(t1) {
		t.Errorf("cancelled recipients = %+v, want dan's alone", got)
	}
	if got := pendingRecipients(t, s, run.ID); len(got) != 0 {
		t.Errorf("pending after cancel: %v", got)
	}
	_, err = s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning, store.RunPaused},
		To: store.RunRunning, Now: t1})
	wantErr(t, "RunSetState(resume a cancelled run)", err, store.ErrConflict)
	_, err = s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "n1",
		Audience: store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, Limit: 10, Now: t1})
	wantErr(t, "RunMaterialise(cancelled run)", err, store.ErrConflict)

	// finished: FinishedAt set, the campaign's next occurrence with it.
	c2 := newCampaign(t, s, []string{l.ID})
	r2 := startRun(t, s, c2, t0, "n1")
	fin, err := s.RunSetState(ctx, store.RunSetStateParams{ID: r2.ID, From: []string{store.RunRunning}, To: store.RunFinished,
		Campaign: store.CampaignScheduled, NextRunAt: t0.Add(24 * time.Hour), Now: t1})
	if err != nil || fin.State != store.RunFinished || !fin.FinishedAt.Equal(t1) {
		t.Errorf("RunSetState(finished) = %+v, %v", fin, err)
	}
	if got := getCampaign(t, s, c2.ID); got.State != store.CampaignScheduled || !got.NextRunAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("campaign after its run finished: %q next %v", got.State, got.NextRunAt)
	}
}

func testRunProgress(t *testing.T, s store.Store) {
	ctx := t.Context()
	emails := []string{"a1@example.com", "a2@example.com", "a3@example.com", "a4@example.com", "a5@example.com",
		"a6@example.com", "a7@example.com", "a8@example.com", "a9@example.com"}
	l, ids := audienceContacts(t, s, emails...)
	c := newCampaign(t, s, []string{l.ID})
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, 100, t0)

	empty := func() map[string]int {
		m := map[string]int{store.CampaignRecipientPending: 0, store.CampaignRecipientUnsubscribed: 0}
		for _, st := range store.RecipientStatuses {
			m[string(st)] = 0
		}
		return m
	}
	check := func(what string, counts map[string]int, inFlight, open int) {
		t.Helper()
		p, err := s.RunProgress(ctx, run.ID)
		if err != nil {
			t.Fatalf("RunProgress: %v", err)
		}
		want := empty()
		maps.Copy(want, counts)
		if diff := cmp.Diff(want, p.Counts); diff != "" || p.InFlight != inFlight || p.Open != open {
			t.Errorf("%s: progress in flight %d, open %d, counts (-want +got):\n%s; want in flight %d, open %d",
				what, p.InFlight, p.Open, diff, inFlight, open)
		}
		if n, err := s.RunInFlight(ctx, run.ID); err != nil || n != inFlight {
			t.Errorf("%s: RunInFlight = %d, %v; want %d", what, n, err, inFlight)
		}
	}
	check("materialised", map[string]int{"pending": 9}, 0, 9)

	byID := map[string]store.RunRecipient{}
	for _, r := range pendingRecipients(t, s, run.ID) {
		byID[r.ContactID] = r
	}
	var items []store.RunQueueItem
	msgs := make([]*store.NewMessage, 6)
	for i := range 6 {
		msgs[i] = campaignMessage(byID[ids[i]], c, t0)
		items = append(items, store.RunQueueItem{ContactID: ids[i], Message: msgs[i]})
	}
	items = append(items, store.RunQueueItem{ContactID: ids[6], Status: store.CampaignRecipientUnsubscribed, Reason: "left"},
		store.RunQueueItem{ContactID: ids[7], Status: store.CampaignRecipientFailed, Reason: "render"})
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Items: items,
		Day: "2026-03-01", Now: t0}); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	check("queued", map[string]int{"pending": 1, "unsubscribed": 1, "failed": 1, "queued": 6}, 6, 7)

	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: t0,
		LeaseUntil: t0.Add(time.Minute)}); len(got) != 6 {
		t.Fatalf("claimed %d, want 6", len(got))
	}
	fin := func(i int, st store.Status) store.MessageFinishParams {
		p := store.MessageFinishParams{ID: msgs[i].Message.ID, Owner: "w", Status: st, Attempts: 1}
		switch st {
		case store.StatusSent:
			p.SentAt = t0
		case store.StatusDeferred:
			p.NextAttemptAt = t0.Add(time.Hour)
		case store.StatusQueued:
			p.Attempts = 0
			p.NextAttemptAt = t0
		}
		return p
	}
	// 0 sent, 1 deferred, 2 failed, 3 suppressed, 4 still sending, 5 back to queued.
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{fin(0, store.StatusSent), fin(1, store.StatusDeferred),
		fin(2, store.StatusFailed), fin(3, store.StatusSuppressed), fin(5, store.StatusQueued)}); err != nil || n != 5 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	check("delivering", map[string]int{"pending": 1, "unsubscribed": 1, "failed": 2, "queued": 2, "sent": 1,
		"deferred": 1, "suppressed": 1}, 2, 4)

	// Cancelled: the pending one and the messages not being sent.
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning},
		To: store.RunCancelled, Now: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	check("cancelled", map[string]int{"cancelled": 3, "unsubscribed": 1, "failed": 2, "queued": 1, "sent": 1,
		"suppressed": 1}, 1, 1)
	_, err := s.RunProgress(ctx, id.New(id.Run))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunProgress(unknown) = %v, want ErrNotFound or nothing", err)
	}
	if n, err := s.RunInFlight(ctx, id.New(id.Run)); err != nil || n != 0 {
		t.Errorf("RunInFlight(unknown) = %d, %v; want 0", n, err)
	}
}

func testRunRecipients(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, ids := audienceContacts(t, s, "a1@example.com", "a2@example.com", "a3@example.com", "a4@example.com", "a5@example.com")
	c := newCampaign(t, s, []string{l.ID})
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID}, 100, t0)
	sorted := slices.Sorted(slices.Values(ids))
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: c.ID, Owner: "n1", Day: "2026-03-01", Now: t0,
		Items: []store.RunQueueItem{{ContactID: sorted[1], Status: store.CampaignRecipientFailed, Reason: "x"},
			{ContactID: sorted[3], Status: store.CampaignRecipientFailed, Reason: "y"}}}); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	contactIDs := func(rs []store.RunRecipient) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ContactID)
		}
		return out
	}
	if got := contactIDs(allRecipients(t, s, run.ID, "")); !slices.Equal(got, sorted) {
		t.Errorf("RunRecipients pages = %v, want %v", got, sorted)
	}
	if got := contactIDs(allRecipients(t, s, run.ID, store.CampaignRecipientPending)); !slices.Equal(got,
		[]string{sorted[0], sorted[2], sorted[4]}) {
		t.Errorf("RunRecipients(pending) = %v", got)
	}
	page, next, err := s.RunRecipients(ctx, store.RunRecipientListParams{RunID: run.ID, Status: store.CampaignRecipientFailed})
	if err != nil || next != "" || !slices.Equal(contactIDs(page), []string{sorted[1], sorted[3]}) || page[0].Reason != "x" {
		t.Errorf("RunRecipients(failed) = %+v, %q, %v", page, next, err)
	}
	for _, r := range page {
		if r.Contact.ID != "" {
			t.Errorf("RunRecipients filled the contact: %+v", r.Contact)
		}
	}
	_, _, err = s.RunRecipients(ctx, store.RunRecipientListParams{RunID: run.ID, Cursor: "cmp_1"})
	wantErr(t, "RunRecipients(a cursor that is no contact id)", err, store.ErrBadCursor)
}

func testRunContactErase(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, ids := audienceContacts(t, s, "ann@example.com", "bob@example.com")
	c := newCampaign(t, s, []string{l.ID}, func(c *store.Campaign) { c.Cap = store.FrequencyCap{Kind: store.CapOncePerContact} })
	run := startRun(t, s, c, t0, "n1")
	materialiseAll(t, s, run, "n1", store.RunAudience{Lists: []string{l.ID}, CampaignID: c.ID, Cap: c.Cap}, 100, t0)
	msgs := queueAll(t, s, c, run, "n1", t0)
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: ids[0]}, Erase: true,
		ErasedKey: "erased:00ff", Now: t0.Add(time.Minute)}); err != nil {
		t.Fatalf("ContactDelete(erase): %v", err)
	}
	rs := allRecipients(t, s, run.ID, "")
	if len(rs) != 1 || rs[0].ContactID != ids[1] {
		t.Errorf("recipients after erasing ann: %+v, want bob's alone", rs)
	}
	if m := get(t, s, msgs[ids[0]].Message.ID); m.Status != store.StatusCancelled || len(m.Recipients) != 0 {
		t.Errorf("ann's campaign message after erase: %s to %v", m.Status, m.Recipients)
	}
	// A plain delete removes the contact's rows too.
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: ids[1]}, Now: t0.Add(time.Minute)}); err != nil {
		t.Fatalf("ContactDelete: %v", err)
	}
	if rs := allRecipients(t, s, run.ID, ""); len(rs) != 0 {
		t.Errorf("recipients after deleting bob: %+v", rs)
	}
}
