package postgres

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/storetest"
)

// The driver's own campaign tests: what only PostgreSQL has (several Stores on one database
// claiming runs) and a quick check of the area's steps end to end.

// campaignFixture is a campaign with a started run leased to "node-a", on a fresh database.
type campaignFixture struct {
	s   *Store
	cmp store.Campaign
	run store.Run
}

func newCampaignFixture(t *testing.T, s *Store, c store.FrequencyCap) campaignFixture {
	t.Helper()
	ctx := t.Context()
	cmp, err := s.CampaignCreate(ctx, store.Campaign{ID: id.New(id.Campaign), Name: "May news", Template: "news",
		Lists: []string{"lst_a"}, Data: []byte(`{"b":1,"a":2}`), Tags: []string{"news"},
		Schedule: store.Schedule{Kind: store.ScheduleNow}, Cap: c, State: store.CampaignDraft,
		CreatedAt: t0, UpdatedAt: t0})
	if err != nil {
		t.Fatalf("CampaignCreate: %v", err)
	}
	run, err := s.RunCreate(ctx, store.RunCreateParams{
		Run:          store.Run{ID: id.New(id.Run), CampaignID: cmp.ID, ScheduledAt: t0, TemplateVersion: 1, StartedAt: t0},
		CampaignFrom: []string{store.CampaignDraft}, Owner: "node-a", LeaseUntil: t0.Add(time.Minute)})
	if err != nil {
		t.Fatalf("RunCreate: %v", err)
	}
	return campaignFixture{s: s, cmp: cmp, run: run}
}

func TestCampaignCRUD(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	f := newCampaignFixture(t, s, store.FrequencyCap{})
	got, err := s.CampaignGet(ctx, f.cmp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != `{"b":1,"a":2}` || got.State != store.CampaignRunning || !got.LastRunAt.Equal(t0) ||
		!slices.Equal(got.Lists, []string{"lst_a"}) || got.Schedule.Kind != store.ScheduleNow {
		t.Errorf("campaign after RunCreate = %+v", got)
	}
	// A second run of the same occurrence: ErrConflict.
	_, err = s.RunCreate(ctx, store.RunCreateParams{
		Run:          store.Run{ID: id.New(id.Run), CampaignID: f.cmp.ID, ScheduledAt: t0, StartedAt: t0},
		CampaignFrom: []string{store.CampaignRunning}})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("RunCreate of an existing occurrence: %v, want ErrConflict", err)
	}
	// Update only in the states given.
	got.Name = "June news"
	if _, err := s.CampaignUpdate(ctx, got, []string{store.CampaignDraft}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CampaignUpdate of a running campaign: %v, want ErrConflict", err)
	}
	if u, err := s.CampaignUpdate(ctx, got, []string{store.CampaignRunning}); err != nil || u.Name != "June news" {
		t.Errorf("CampaignUpdate = %+v, %v", u, err)
	}
	c, err := s.CampaignSetState(ctx, store.CampaignSetStateParams{ID: f.cmp.ID, From: []string{store.CampaignRunning},
		To: store.CampaignPaused, PauseReasons: []string{"manual", "daily_quota", "manual"}, Now: t0})
	if err != nil || !slices.Equal(c.PauseReasons, []string{"daily_quota", "manual"}) {
		t.Errorf("CampaignSetState = %+v, %v", c.PauseReasons, err)
	}
	list, next, err := s.CampaignList(ctx, store.CampaignListParams{State: store.CampaignPaused})
	if err != nil || len(list) != 1 || next != "" {
		t.Errorf("CampaignList = %d, %q, %v", len(list), next, err)
	}
	if _, _, err := s.CampaignList(ctx, store.CampaignListParams{Cursor: "nope"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("CampaignList with a bad cursor: %v", err)
	}
	if err := s.CampaignDelete(ctx, f.cmp.ID, []string{store.CampaignPaused}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunGet(ctx, f.run.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("run after its campaign's delete: %v", err)
	}
}

// audience creates lists lst_a, lst_b (double opt-in) and contacts named by their situation.
func audience(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := t.Context()
	for _, l := range []store.List{{ID: "lst_a", Name: "A"}, {ID: "lst_b", Name: "B", DoubleOptIn: true},
		{ID: "lst_c", Name: "C"}} {
		if _, err := s.ListCreate(ctx, store.List{ID: l.ID, Name: l.Name, DoubleOptIn: l.DoubleOptIn, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	items := []struct {
		name  string
		lists []string
		unsub []string
	}{
		{"both", []string{"lst_a", "lst_c"}, nil},
		{"c-only", []string{"lst_c"}, nil},
		{"pending", []string{"lst_b"}, nil},
		{"unsub", []string{"lst_a"}, []string{"lst_a"}},
		{"bounced", []string{"lst_a"}, nil},
		{"left-all", []string{"lst_a"}, nil},
		{"left-list", []string{"lst_a"}, nil},
		{"capped", []string{"lst_a"}, nil},
		{"none", nil, nil},
	}
	ids := map[string]string{}
	for _, it := range items {
		email := it.name + "@example.com"
		res, err := s.ContactsUpsert(ctx, store.ContactsUpsertParams{Now: t0, Items: []store.ContactUpsert{{
			Email: email, EmailKey: email, Lists: it.lists}}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("ContactsUpsert: %v %v", err, res)
		}
		if it.unsub != nil {
			if _, err := s.ContactsUpsert(ctx, store.ContactsUpsertParams{Now: t0, Items: []store.ContactUpsert{{
				Email: email, EmailKey: email, Unsubscribe: it.unsub}}}); err != nil {
				t.Fatal(err)
			}
		}
		ids[it.name] = res[0].ID
	}
	if err := s.SuppressionUpsert(ctx, []store.Suppression{
		{Email: "bounced@example.com", Scope: store.ScopeGlobal, Reason: store.ReasonManual, CreatedAt: t0},
		// Suppressed as well as unsubscribed from all broadcast mail: counted as suppressed.
		{Email: "bounced@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		{Email: "left-all@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		{Email: "left-list@example.com", Scope: "lst_a", Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		// Expired: no longer applies.
		{Email: "both@example.com", Scope: store.ScopeGlobal, Reason: store.ReasonManual, CreatedAt: t0,
			ExpiresAt: t0.Add(-time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestRunMaterialiseAndQueue(t *testing.T) {
	t.Parallel()
	f, ids := audienceFixture(t, store.FrequencyCap{Kind: store.CapDays, Days: 30})
	s, ctx := f.s, t.Context()
	// "capped" had this campaign 10 days ago.
	if _, err := s.pool.Exec(ctx, `INSERT INTO campaign_contacts VALUES ($1, $2, $3)`, f.cmp.ID, ids["capped"],
		t0.Add(-10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	aud := store.RunAudience{Lists: []string{"lst_c", "lst_a", "lst_b"}, CampaignID: f.cmp.ID, Cap: f.cmp.Cap}

	// Not the lease holder: nothing changes.
	if _, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: f.run.ID, Owner: "node-b", Audience: aud,
		Limit: 3, Now: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RunMaterialise by another owner: %v, want ErrConflict", err)
	}
	if _, err := s.RunReleaseLeases(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: f.run.ID, Owner: "", Audience: aud,
		Limit: 3, Now: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RunMaterialise of an unleased run without an owner: %v, want ErrConflict", err)
	}
	if claimed, err := s.RunClaim(ctx, store.RunClaimParams{Owner: "node-a", Limit: 1, Now: t0,
		LeaseUntil: t0.Add(time.Minute)}); err != nil || len(claimed) != 1 {
		t.Fatalf("RunClaim after the release: %v, %v", claimed, err)
	}
	if _, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: "run_x", Owner: "node-a", Audience: aud,
		Limit: 3, Now: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RunMaterialise of an unknown run: %v, want ErrNotFound", err)
	}
	var total store.RunMaterialiseResult
	for chunks := 0; !total.Done; chunks++ {
		if chunks > 5 {
			t.Fatal("materialising never ends")
		}
		r, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: f.run.ID, Owner: "node-a", Audience: aud,
			Limit: 3, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		total.Added += r.Added
		total.Excluded.Unsubscribed += r.Excluded.Unsubscribed
		total.Excluded.Pending += r.Excluded.Pending
		total.Excluded.Suppressed += r.Excluded.Suppressed
		total.Excluded.Capped += r.Excluded.Capped
		total.Done = r.Done
	}
	want := store.ExcludedCounts{Unsubscribed: 2, Pending: 1, Suppressed: 1, Capped: 1}
	if total.Added != 3 || total.Excluded != want {
		t.Errorf("materialised %d, excluded %+v; want 3, %+v", total.Added, total.Excluded, want)
	}
	run, err := s.RunGet(ctx, f.run.ID)
	if err != nil || !run.Materialised || run.Recipients != 3 || run.Excluded != want {
		t.Errorf("run = %+v, %v", run, err)
	}
	recips, next, err := s.RunRecipients(ctx, store.RunRecipientListParams{RunID: f.run.ID})
	if err != nil || next != "" {
		t.Fatal(err)
	}
	lists := map[string]string{}
	for _, r := range recips {
		lists[r.ContactID] = r.ListID
	}
	wantLists := map[string]string{ids["both"]: "lst_a", ids["c-only"]: "lst_c", ids["left-list"]: "lst_a"}
	if fmt.Sprint(lists) != fmt.Sprint(wantLists) {
		t.Errorf("recipients' lists = %v, want %v", lists, wantLists)
	}

	// Queue: a message for two, failed for the third.
	pending, err := s.RunPending(ctx, store.RunPendingParams{RunID: f.run.ID, Limit: 10})
	if err != nil || len(pending) != 3 || pending[0].Contact.Email == "" {
		t.Fatalf("RunPending = %+v, %v", pending, err)
	}
	var items []store.RunQueueItem
	for i, r := range pending {
		if i == 2 {
			items = append(items, store.RunQueueItem{ContactID: r.ContactID, Status: store.CampaignRecipientFailed, Reason: "render"})
			continue
		}
		m := storetest.Message(t0, func(m *store.Message) {
			m.Stream, m.CampaignID, m.RunID, m.ListID = store.StreamBroadcast, f.cmp.ID, f.run.ID, r.ListID
			m.To, m.Recipients = []string{r.Email}, []string{r.Email}
		})
		items = append(items, store.RunQueueItem{ContactID: r.ContactID, Message: &m})
	}
	wake := s.Wakeups(store.StreamBroadcast)
	qp := store.RunQueueParams{RunID: f.run.ID, CampaignID: f.cmp.ID, Owner: "node-a", Items: items, Day: "2026-03-01", Now: t0}
	if err := s.RunQueue(ctx, qp); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Error("RunQueue did not wake the broadcast workers")
	}
	// A repeat (messages composed again) changes nothing.
	for i := range qp.Items {
		if qp.Items[i].Message != nil {
			m := *qp.Items[i].Message
			m.Message.ID = id.New(id.Message)
			qp.Items[i].Message = &m
		}
	}
	if err := s.RunQueue(ctx, qp); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.MessageList(ctx, store.MessageListParams{CampaignID: f.cmp.ID})
	if err != nil || len(msgs) != 2 || msgs[0].RunID != f.run.ID {
		t.Fatalf("messages = %d (%v), run %q", len(msgs), err, msgs[0].RunID)
	}
	if n, err := s.CampaignDayCount(ctx, "2026-03-01"); err != nil || n != 2 {
		t.Errorf("CampaignDayCount = %d, %v", n, err)
	}
	var capped int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM campaign_contacts WHERE last_at = $1`, t0).Scan(&capped); err != nil || capped != 2 {
		t.Errorf("cap records = %d, %v", capped, err)
	}
	if n, err := s.RunInFlight(ctx, f.run.ID); err != nil || n != 2 {
		t.Errorf("RunInFlight = %d, %v; want 2", n, err)
	}
	prog, err := s.RunProgress(ctx, f.run.ID)
	if err != nil || prog.Counts["queued"] != 2 || prog.Counts["failed"] != 1 || prog.InFlight != 2 || prog.Open != 2 {
		t.Errorf("RunProgress = %+v, %v", prog, err)
	}

	// Pause holds the messages; resume makes them due with a new TTL; cancel cancels them.
	later := t0.Add(48 * time.Hour)
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: f.run.ID, From: []string{store.RunRunning},
		To: store.RunPaused, PauseReasons: []string{store.PauseManual}, Campaign: store.CampaignPaused,
		CampaignReasons: []string{store.PauseManual}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.RunQueue(ctx, qp); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RunQueue of a paused run: %v, want ErrConflict", err)
	}
	if due, err := s.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10,
		Now: later, LeaseUntil: later.Add(time.Minute)}); err != nil || len(due) != 0 {
		t.Errorf("claimed %d held messages, %v", len(due), err)
	}
	run, err = s.RunSetState(ctx, store.RunSetStateParams{ID: f.run.ID, From: []string{store.RunPaused},
		To: store.RunRunning, TTL: 24 * time.Hour, Campaign: store.CampaignRunning, Now: later})
	if err != nil || run.State != store.RunRunning || run.PauseReasons != nil {
		t.Fatalf("resume: %+v, %v", run, err)
	}
	m, err := s.MessageGet(ctx, msgs[0].ID)
	if err != nil || !m.NextAttemptAt.Equal(later) || !m.ExpiresAt.Equal(later.Add(24*time.Hour)) {
		t.Errorf("resumed message due %v, expires %v (%v)", m.NextAttemptAt, m.ExpiresAt, err)
	}
	if c, _ := s.CampaignGet(ctx, f.cmp.ID); c.State != store.CampaignRunning || c.PauseReasons != nil {
		t.Errorf("campaign after resume: %s %v", c.State, c.PauseReasons)
	}
	run, err = s.RunSetState(ctx, store.RunSetStateParams{ID: f.run.ID, From: []string{store.RunRunning, store.RunPaused},
		To: store.RunCancelled, Now: later})
	if err != nil || !run.FinishedAt.Equal(later) {
		t.Fatalf("cancel: %+v, %v", run, err)
	}
	evs, err := s.MessageEvents(ctx, msgs[0].ID)
	if err != nil || evs[len(evs)-1].Type != store.EventCancelled {
		t.Errorf("events after cancel = %+v, %v", evs, err)
	}
	prog, err = s.RunProgress(ctx, f.run.ID)
	if err != nil || prog.Counts["cancelled"] != 2 || prog.Open != 0 {
		t.Errorf("RunProgress after cancel = %+v, %v", prog, err)
	}
	if n, err := s.RunInFlight(ctx, f.run.ID); err != nil || n != 0 {
		t.Errorf("RunInFlight after cancel = %d, %v; want 0", n, err)
	}
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: f.run.ID, From: []string{store.RunRunning},
		To: store.RunPaused, Now: later}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("pause of a cancelled run: %v", err)
	}
}

func TestRunMaterialiseSegment(t *testing.T) {
	t.Parallel()
	f, ids := audienceFixture(t, store.FrequencyCap{Kind: store.CapOncePerContact})
	s, ctx := f.s, t.Context()
	if _, err := s.pool.Exec(ctx, `INSERT INTO campaign_contacts VALUES ($1, $2, $3)`, f.cmp.ID, ids["c-only"],
		t0.Add(-1000*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Contacts whose email starts with "c" or "b", on list C or not.
	seg := &store.Filter{Op: store.FilterOr, Nodes: []*store.Filter{
		{Op: store.FilterCond, Field: "email", Type: store.AttrString, Cmp: store.CmpStartsWith, Value: "c"},
		{Op: store.FilterCond, Field: "email", Type: store.AttrString, Cmp: store.CmpStartsWith, Value: "b"},
	}}
	for _, tc := range []struct {
		name  string
		lists []string
		added int
		want  store.ExcludedCounts
	}{
		// both, bounced (suppressed), c-only (capped) and capped (not by this campaign).
		{"segment", nil, 2, store.ExcludedCounts{Suppressed: 1, Capped: 1}},
		// Of list C's: both and c-only (capped).
		{"lists and segment", []string{"lst_c"}, 1, store.ExcludedCounts{Capped: 1}},
	} {
		run, err := s.RunCreate(ctx, store.RunCreateParams{
			Run: store.Run{ID: id.New(id.Run), CampaignID: f.cmp.ID, ScheduledAt: t0.Add(time.Duration(len(tc.lists)+1) * time.Hour),
				StartedAt: t0}, CampaignFrom: []string{store.CampaignRunning}, Owner: "node-a", LeaseUntil: t0.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		var added int
		var ex store.ExcludedCounts
		for done := false; !done; {
			r, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "node-a", Limit: 2, Now: t0,
				Audience: store.RunAudience{Lists: tc.lists, Filter: seg, CampaignID: f.cmp.ID, Cap: f.cmp.Cap}})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			added += r.Added
			ex.Suppressed += r.Excluded.Suppressed
			ex.Capped += r.Excluded.Capped
			ex.Unsubscribed += r.Excluded.Unsubscribed
			ex.Pending += r.Excluded.Pending
			done = r.Done
		}
		if added != tc.added || ex != tc.want {
			t.Errorf("%s: added %d, excluded %+v; want %d, %+v", tc.name, added, ex, tc.added, tc.want)
		}
	}
}

// TestRunClaimNodes: two nodes (Stores) claiming the same runs at once never take one twice,
// and together take them all.
func TestRunClaimNodes(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx := t.Context()
	cmp, err := a.CampaignCreate(ctx, store.Campaign{ID: id.New(id.Campaign), Name: "n", Template: "t",
		Lists: []string{"lst_a"}, Schedule: store.Schedule{Kind: store.ScheduleCron, Cron: "* * * * *"},
		State: store.CampaignScheduled, CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 40
	for i := range runs {
		if _, err := a.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: cmp.ID,
			ScheduledAt: t0.Add(time.Duration(i) * time.Minute), StartedAt: t0.Add(time.Duration(i) * time.Second)},
			CampaignFrom: []string{store.CampaignScheduled, store.CampaignRunning}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu  sync.Mutex
		got = map[string]string{}
		wg  sync.WaitGroup
	)
	for w, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%d", w)
			for {
				claimed, err := s.RunClaim(ctx, store.RunClaimParams{Owner: owner, Limit: 3, Now: t0,
					LeaseUntil: t0.Add(time.Minute)})
				if err != nil {
					t.Error(err)
					return
				}
				if len(claimed) == 0 {
					return
				}
				mu.Lock()
				for _, r := range claimed {
					if prev, ok := got[r.ID]; ok {
						t.Errorf("run %s claimed by %s and %s", r.ID, prev, owner)
					}
					got[r.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != runs {
		t.Errorf("claimed %d runs, want %d", len(got), runs)
	}
	// Leases end: another node takes them over; a release hands them back at once.
	later := t0.Add(2 * time.Minute)
	over, err := b.RunClaim(ctx, store.RunClaimParams{Owner: "node-9", Limit: runs, Now: later, LeaseUntil: later.Add(time.Minute)})
	if err != nil || len(over) != runs {
		t.Fatalf("claims after the leases ended: %d, %v", len(over), err)
	}
	if n, err := a.RunRenewLeases(ctx, store.RunRenewParams{Owner: "node-0", IDs: []string{over[0].ID}, Until: later}); err != nil || n != 0 {
		t.Errorf("renewal of a lease taken over: %d, %v", n, err)
	}
	// By prefix: a restarted node takes back what its previous run held.
	if n, err := a.RunReleaseLeases(ctx, "node-9/"); err != nil || n != 0 {
		t.Errorf("RunReleaseLeases(node-9/) = %d, %v", n, err)
	}
	if n, err := a.RunReleaseLeases(ctx, "node-"); err != nil || n != runs {
		t.Errorf("RunReleaseLeases(node-) = %d, %v", n, err)
	}
}

// roomReceiver is a store.AcceptReceiver with room for a fixed number of messages.
type roomReceiver struct {
	mu             sync.Mutex
	room, reserved int
	got            []store.ClaimedMessage
}

func (r *roomReceiver) Reserve(n int) (int, store.AcceptLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	took := min(n, r.room)
	r.room, r.reserved = r.room-took, r.reserved+took
	return took, store.AcceptLease{Owner: "node-a/1", Until: t0.Add(time.Minute)}
}

func (r *roomReceiver) Receive(c []store.ClaimedMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got, r.reserved = append(r.got, c...), r.reserved-len(c)
}

func (r *roomReceiver) Unreserve(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.room, r.reserved = r.room+n, r.reserved-n
}

// audienceFixture is a campaign fixture on a fresh database holding audience's lists and
// contacts (whose ids it returns).
func audienceFixture(t *testing.T, c store.FrequencyCap) (campaignFixture, map[string]string) {
	t.Helper()
	s := openTest(t)
	ids := audience(t, s)
	return newCampaignFixture(t, s, c), ids
}

// firstItems materialises f's run over lst_a and returns the outcomes of its first two pending
// recipients: a broadcast message each.
func firstItems(t *testing.T, f campaignFixture) []store.RunQueueItem {
	t.Helper()
	ctx := t.Context()
	if _, err := f.s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: f.run.ID, Owner: "node-a", Limit: 100, Now: t0,
		Audience: store.RunAudience{Lists: []string{"lst_a"}, CampaignID: f.cmp.ID}}); err != nil {
		t.Fatal(err)
	}
	pending, err := f.s.RunPending(ctx, store.RunPendingParams{RunID: f.run.ID, Limit: 2})
	if err != nil || len(pending) != 2 {
		t.Fatalf("RunPending: %d, %v", len(pending), err)
	}
	var items []store.RunQueueItem
	for _, p := range pending {
		m := storetest.Message(t0, func(m *store.Message) {
			m.Stream, m.CampaignID, m.RunID = store.StreamBroadcast, f.cmp.ID, f.run.ID
		})
		items = append(items, store.RunQueueItem{ContactID: p.ContactID, Message: &m})
	}
	return items
}

// TestRunQueueClaimsAtAccept: RunQueue hands the messages this node's delivery has room for
// to it as MessagesAccept does, stored leased; the others wait for a claim; a repeat hands over
// nothing and keeps no room.
func TestRunQueueClaimsAtAccept(t *testing.T) {
	t.Parallel()
	f, _ := audienceFixture(t, store.FrequencyCap{})
	s, ctx := f.s, t.Context()
	r := &roomReceiver{room: 1}
	defer s.ClaimAtAccept(store.StreamBroadcast, r)()
	items := firstItems(t, f)
	qp := store.RunQueueParams{RunID: f.run.ID, CampaignID: f.cmp.ID, Owner: "node-a", Items: items, Now: t0}
	for range 2 {
		if err := s.RunQueue(ctx, qp); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.got) != 1 || r.got[0].ID != items[0].Message.Message.ID || r.reserved != 0 || r.room != 0 {
		t.Fatalf("handed over %d, reserved %d, room %d; want the first, 0, 0", len(r.got), r.reserved, r.room)
	}
	for i, want := range []store.Status{store.StatusSending, store.StatusQueued} {
		m, err := s.MessageGet(ctx, items[i].Message.Message.ID)
		if err != nil || m.Status != want || m.RunID != f.run.ID {
			t.Errorf("message %d: %s of run %q (%v); want %s", i, m.Status, m.RunID, err, want)
		}
	}
	if n, err := s.RunInFlight(ctx, f.run.ID); err != nil || n != 2 {
		t.Errorf("RunInFlight = %d, %v; want 2 (sending counts)", n, err)
	}
}

// TestRunPauseAgainHolds: a message in flight when its run paused and deferred since is due
// again; pausing the paused run again (another reason) holds it too.
func TestRunPauseAgainHolds(t *testing.T) {
	t.Parallel()
	f, _ := audienceFixture(t, store.FrequencyCap{})
	s, ctx := f.s, t.Context()
	items := firstItems(t, f)
	if err := s.RunQueue(ctx, store.RunQueueParams{RunID: f.run.ID, CampaignID: f.cmp.ID, Owner: "node-a", Items: items,
		Now: t0}); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("MessageClaim: %d, %v", len(claimed), err)
	}
	pause := func(reasons ...string) {
		t.Helper()
		if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: f.run.ID, From: []string{store.RunRunning, store.RunPaused},
			To: store.RunPaused, PauseReasons: reasons, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	due := func() time.Time {
		t.Helper()
		m, err := s.MessageGet(ctx, claimed[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return m.NextAttemptAt
	}
	pause(store.PauseManual)
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{{ID: claimed[0].ID, Owner: "w",
		Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: t0.Add(time.Minute)}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish: %d, %v", n, err)
	}
	if got := due(); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("deferred while paused: due %v", got)
	}
	pause(store.PauseManual, store.PauseDailyQuota)
	if got := due(); !got.Equal(store.HeldUntil) {
		t.Errorf("after pausing again: due %v, want held", got)
	}
}

// TestRunQueueConcurrent: chunks of the same recipients stored at once (each with messages of
// its own, as a retry composes them again) give each recipient exactly one message.
func TestRunQueueConcurrent(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	if _, err := s.ListCreate(ctx, store.List{ID: "lst_a", Name: "A", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const contacts = 60
	var ups []store.ContactUpsert
	for i := range contacts {
		email := fmt.Sprintf("c%d@example.com", i)
		ups = append(ups, store.ContactUpsert{Email: email, EmailKey: email, Lists: []string{"lst_a"}})
	}
	if _, err := s.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: ups, Now: t0}); err != nil {
		t.Fatal(err)
	}
	f := newCampaignFixture(t, s, store.FrequencyCap{Kind: store.CapOncePerContact})
	if _, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: f.run.ID, Owner: "node-a", Limit: 100, Now: t0,
		Audience: store.RunAudience{Lists: []string{"lst_a"}, CampaignID: f.cmp.ID, Cap: f.cmp.Cap}}); err != nil {
		t.Fatal(err)
	}
	pending, err := s.RunPending(ctx, store.RunPendingParams{RunID: f.run.ID, Limit: contacts})
	if err != nil || len(pending) != contacts {
		t.Fatalf("RunPending: %d, %v", len(pending), err)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker in its own order, so that the chunks meet in every way.
			order := slices.Clone(pending)
			if w%2 == 1 {
				slices.Reverse(order)
			}
			var items []store.RunQueueItem
			for _, p := range order {
				m := storetest.Message(t0, func(m *store.Message) {
					m.Stream, m.CampaignID, m.RunID = store.StreamBroadcast, f.cmp.ID, f.run.ID
				})
				items = append(items, store.RunQueueItem{ContactID: p.ContactID, Message: &m})
			}
			if err := s.RunQueue(ctx, store.RunQueueParams{RunID: f.run.ID, CampaignID: f.cmp.ID, Owner: "node-a",
				Items: items, Now: t0}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var msgs, recips, capped, day int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM messages WHERE run_id = $1),
			(SELECT count(DISTINCT message_id) FROM campaign_recipients WHERE run_id = $1 AND status = 'queued'),
			(SELECT count(*) FROM campaign_contacts WHERE campaign_id = $2),
			(SELECT messages FROM campaign_days)`, f.run.ID, f.cmp.ID).Scan(&msgs, &recips, &capped, &day); err != nil {
		t.Fatal(err)
	}
	if msgs != contacts || recips != contacts || capped != contacts || day != contacts {
		t.Errorf("%d messages, %d recipients queued, %d cap records, day count %d; want %d each",
			msgs, recips, capped, day, contacts)
	}
}
