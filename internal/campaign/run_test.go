package campaign_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// deliver plays the delivery engine for the tests that do not need a relay: it claims every
// due broadcast message at now and records it sent, and returns the recipients it sent to.
func (b *bundle) deliver(t *testing.T, now time.Time) []string {
	t.Helper()
	ctx := t.Context()
	claimed, err := b.st.MessageClaim(ctx, store.MessageClaimParams{Owner: "sender", Stream: store.StreamBroadcast,
		Limit: 10000, Now: now, LeaseUntil: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var to []string
	fin := make([]store.MessageFinishParams, len(claimed))
	for i, m := range claimed {
		fin[i] = store.MessageFinishParams{ID: m.ID, Owner: "sender", Status: store.StatusSent, Attempts: m.Attempts + 1,
			SentAt: now, Events: []store.Event{{Type: store.EventSent, At: now}}}
		to = append(to, m.Recipients...)
	}
	if len(fin) > 0 {
		if _, err := b.st.MessageFinish(ctx, now, fin); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(to)
	return to
}

// tick runs one pass of svc at now.
func tick(t *testing.T, svc *campaign.Service, now time.Time) {
	t.Helper()
	if err := svc.Tick(t.Context(), now); err != nil {
		t.Fatalf("Tick(%s): %v", now.Format(time.RFC3339), err)
	}
}

// drain ticks svc at now and delivers what it creates until its campaign c is no longer
// running, and returns everyone sent to, sorted.
func (b *bundle) drain(t *testing.T, svc *campaign.Service, cmpID string, now time.Time) []string {
	t.Helper()
	var sent []string
	for range 100 {
		tick(t, svc, now)
		got := b.deliver(t, now)
		sent = append(sent, got...)
		c, err := svc.Get(t.Context(), cmpID)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != store.CampaignRunning && len(got) == 0 {
			slices.Sort(sent)
			return sent
		}
	}
	t.Fatalf("campaign %s still running after 100 passes", cmpID)
	return nil
}

func (b *bundle) create(t *testing.T, in campaign.Input) store.Campaign {
	t.Helper()
	if in.Name == nil {
		in.Name = ptr("test")
	}
	if in.Template == nil {
		in.Template = ptr("news")
	}
	if in.Data == nil {
		in.Data = json.RawMessage(`{"issue":1}`)
	}
	c, err := b.svc.Create(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b *bundle) runs(t *testing.T, cmpID string) []campaign.RunView {
	t.Helper()
	rs, err := b.svc.Runs(t.Context(), cmpID)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// kindOf is the Kind of a *message.Error (0 for another error).
func kindOf(err error) message.Kind {
	var me *message.Error
	if errors.As(err, &me) {
		return me.Kind
	}
	return 0
}

// A campaign now over overlapping lists: each contact gets one message, rendered with its
// contact and the campaign's data, as list mail; the run finishes with every recipient sent and
// the campaign finished. Wrong transitions are conflicts naming the state.
func TestRunNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	news, promo := b.list(t, "News"), b.list(t, "Promo")
	b.contact(t, "ann@example.com", "Ann", news, promo)
	b.contact(t, "bob@example.com", "Bob", news)
	b.contact(t, "cat@example.com", "Cat", promo)
	c := b.create(t, campaign.Input{Lists: &[]string{news, promo}, Tags: &[]string{"news"}})
	if c.State != store.CampaignDraft {
		t.Fatalf("created %s", c.State)
	}
	c, err := b.svc.Start(ctx, c.ID)
	if err != nil || c.State != store.CampaignRunning {
		t.Fatalf("Start: %v, %s", err, c.State)
	}
	if _, err := b.svc.Start(ctx, c.ID); kindOf(err) != message.KindConflict || !strings.Contains(err.Error(), "running") {
		t.Fatalf("second Start: %v", err)
	}
	if _, err := b.svc.Update(ctx, c.ID, campaign.Input{Name: ptr("x")}); kindOf(err) != message.KindConflict {
		t.Fatalf("Update while running: %v", err)
	}
	if err := b.svc.Delete(ctx, c.ID); kindOf(err) != message.KindConflict {
		t.Fatalf("Delete while running: %v", err)
	}

	sent := b.drain(t, b.svc, c.ID, start)
	if want := []string{"ann@example.com", "bob@example.com", "cat@example.com"}; !slices.Equal(sent, want) {
		t.Fatalf("sent to %v, want %v", sent, want)
	}
	c, _ = b.svc.Get(ctx, c.ID)
	if c.State != store.CampaignFinished {
		t.Fatalf("campaign %s after its run", c.State)
	}
	runs := b.runs(t, c.ID)
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	r := runs[0]
	if r.State != store.RunFinished || r.Recipients != 3 || r.Progress.Counts["sent"] != 3 || r.Progress.Open != 0 ||
		r.TemplateVersion != 1 || !r.ScheduledAt.Equal(start) {
		t.Fatalf("run %+v", r)
	}
	msgs, err := b.st.MessageList(ctx, store.MessageListParams{CampaignID: c.ID, Limit: 10})
	if err != nil || len(msgs) != 3 {
		t.Fatalf("messages %d, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if m.RunID != r.ID || m.Stream != store.StreamBroadcast || m.ListID == "" || m.Subject != "Issue 1" ||
			!slices.Equal(m.Tags, []string{"news"}) {
			t.Errorf("message %+v", m)
		}
		raw, err := b.st.MessageRaw(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToUpper(m.Recipients[0][:1]) + m.Recipients[0][1:3]
		if !strings.Contains(string(raw), "Hello "+name+", issue 1 of test") || !strings.Contains(string(raw), "List-Unsubscribe-Post") {
			t.Errorf("message to %s does not greet %s or is not list mail:\n%s", m.Recipients[0], name, raw)
		}
	}
	if _, err := b.svc.Resume(ctx, c.ID, nil); kindOf(err) != message.KindConflict || !strings.Contains(err.Error(), "finished") {
		t.Fatalf("Resume of a finished campaign: %v", err)
	}
}

// The template's version is pinned when the run starts: a new version stored during the run
// does not change its messages.
func TestTemplatePinnedAtRunStart(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *campaign.Config) { c.Window = 1 })
	ctx := t.Context()
	news := b.list(t, "News")
	b.contact(t, "ann@example.com", "Ann", news)
	b.contact(t, "bob@example.com", "Bob", news)
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, b.svc, start) // the first message, from version 1
	b.template(t, "news", "", "Changed {{.data.issue}}", "<p>changed</p>")
	b.deliver(t, start)
	b.drain(t, b.svc, c.ID, start)
	msgs, err := b.st.MessageList(ctx, store.MessageListParams{CampaignID: c.ID, Limit: 10})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("messages %d, %v", len(msgs), err)
	}
	for _, m := range msgs {
		if m.TemplateVersion != 1 || m.Subject != "Issue 1" {
			t.Errorf("message to %v: version %d, subject %q", m.Recipients, m.TemplateVersion, m.Subject)
		}
	}
}

// A test send goes to the given addresses as list mail, tagged test, with no run.
func TestTestSend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	news := b.list(t, "News")
	c := b.create(t, campaign.Input{Lists: &[]string{news}, Subject: ptr("Preview"), Tags: &[]string{"news"}})
	res, err := b.svc.Test(ctx, c.ID, campaign.TestParams{To: []string{"me@example.com", "you@example.com"},
		Contact: map[string]any{"name": "Tester"}})
	if err != nil || len(res) != 2 {
		t.Fatalf("Test: %v %v", res, err)
	}
	for _, r := range res {
		m, err := b.st.MessageGet(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.CampaignID != c.ID || m.RunID != "" || m.Subject != "Preview" || !slices.Equal(m.Tags, []string{"news", "test"}) ||
			m.ListID != news || m.Stream != store.StreamBroadcast {
			t.Errorf("test message %+v", m)
		}
	}
	if raw, _ := b.st.MessageRaw(ctx, res[0].ID); !strings.Contains(string(raw), "Hello Tester") {
		t.Errorf("the given contact was not rendered:\n%s", raw)
	}
	// Without a contact, .contact has the fields a run gives, empty but the address.
	if _, err := b.svc.Test(ctx, c.ID, campaign.TestParams{To: []string{"me@example.com"}}); err != nil {
		t.Fatalf("a test send without a contact: %v", err)
	}
	_, err = b.svc.Test(ctx, c.ID, campaign.TestParams{To: []string{"me@example.com", "not an address"}})
	if ps := problemsOf(t, err); ps["to[1]"] == "" {
		t.Errorf("problems %v, want to[1]", ps)
	}
	if runs := b.runs(t, c.ID); len(runs) != 0 {
		t.Errorf("a test send made runs: %v", runs)
	}
}

// A recurring campaign driven by a test clock: every day at 02:30 New York time. The first
// occurrence runs on time; then postie stops. Restarted 20 minutes after the third occurrence
// (02:30 on the day clocks skip from 02:00 to 03:00, so it fired at 03:00 EDT), it skips the
// second (older than the grace) and runs the third once; the fourth runs on time. Each run
// rebuilds its audience.
func TestRecurringOverDSTAndRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	news := b.list(t, "News")
	b.contact(t, "ann@example.com", "Ann", news)
	now := utcTime("2026-03-05T12:00:00Z")
	b.clock.Set(now)
	c := b.create(t, campaign.Input{Lists: &[]string{news},
		Schedule: &store.Schedule{Kind: store.ScheduleCron, Cron: "30 2 * * *", Timezone: "America/New_York"}})
	c, err := b.svc.Start(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.CampaignScheduled || !c.NextRunAt.Equal(utcTime("2026-03-06T07:30:00Z")) {
		t.Fatalf("started: %s next %s", c.State, c.NextRunAt)
	}
	tick(t, b.svc, now) // nothing due yet
	if runs := b.runs(t, c.ID); len(runs) != 0 {
		t.Fatalf("a run before its time: %v", runs)
	}

	// 1: on time (02:30 EST).
	now = utcTime("2026-03-06T07:30:00Z")
	b.clock.Set(now)
	if sent := b.drain(t, b.svc, c.ID, now); !slices.Equal(sent, []string{"ann@example.com"}) {
		t.Fatalf("first occurrence sent to %v", sent)
	}
	c, _ = b.svc.Get(ctx, c.ID)
	if c.State != store.CampaignScheduled || !c.NextRunAt.Equal(utcTime("2026-03-07T07:30:00Z")) {
		t.Fatalf("after the first run: %s next %s", c.State, c.NextRunAt)
	}

	// Stopped; a contact joins meanwhile. Restarted on March 8th at 07:20Z: the 7th's
	// occurrence is a day old (skipped), the 8th's (03:00 EDT, 07:00Z) 20 minutes (run once).
	b.contact(t, "bob@example.com", "Bob", news)
	now = utcTime("2026-03-08T07:20:00Z")
	b.clock.Set(now)
	cfg := b.cfg
	cfg.Owner = "node-a/2/bb"
	restarted := campaign.New(cfg)
	if _, err := b.st.RunReleaseLeases(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if sent := b.drain(t, restarted, c.ID, now); !slices.Equal(sent, []string{"ann@example.com", "bob@example.com"}) {
		t.Fatalf("the occurrence run at restart sent to %v", sent)
	}
	tick(t, restarted, now.Add(time.Second)) // nothing more: one run stands for the missed ones
	c, _ = restarted.Get(ctx, c.ID)
	if c.State != store.CampaignScheduled || !c.NextRunAt.Equal(utcTime("2026-03-09T06:30:00Z")) {
		t.Fatalf("after the restart's run: %s next %s", c.State, c.NextRunAt)
	}

	// 3: on time, 02:30 EDT.
	now = utcTime("2026-03-09T06:30:00Z")
	b.clock.Set(now)
	b.drain(t, restarted, c.ID, now)

	var at []string
	for _, r := range b.runs(t, c.ID) {
		if r.State != store.RunFinished || r.Progress.Counts["sent"] != r.Recipients {
			t.Errorf("run at %s: %s, %d recipients, counts %v", r.ScheduledAt, r.State, r.Recipients, r.Progress.Counts)
		}
		at = append(at, r.ScheduledAt.Format(time.RFC3339))
	}
	if want := []string{"2026-03-09T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-06T07:30:00Z"}; !slices.Equal(at, want) {
		t.Fatalf("runs at %v, want %v", at, want)
	}
	c, _ = restarted.Get(ctx, c.ID)
	if c.State != store.CampaignScheduled || !c.NextRunAt.Equal(utcTime("2026-03-10T06:30:00Z")) || !c.LastRunAt.Equal(utcTime("2026-03-09T06:30:00Z")) {
		t.Fatalf("after three runs: %s next %s last %s", c.State, c.NextRunAt, c.LastRunAt)
	}
}

func utcTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// Lifecycle mail: every day at 10:00 UTC, to the contacts inactive for 30 days or more, at
// most once per 30 days each.
func TestFrequencyCapOverALifecycleSegment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	all := b.list(t, "Customers")
	day := 24 * time.Hour
	now := utcTime("2026-01-01T09:00:00Z")
	b.clock.Set(now)
	active := func(email string, ago time.Duration) {
		t.Helper()
		name := strings.Split(email, "@")[0]
		if _, err := b.contacts.UpsertOne(ctx, store.ContactUpsert{Email: email, Name: &name, Lists: []string{all},
			LastActiveAt: now.Add(-ago)}); err != nil {
			t.Fatal(err)
		}
	}
	active("ann@example.com", 40*day)
	active("bob@example.com", 10*day) // inactive for 30 days from January 21st
	active("cat@example.com", 35*day)
	seg, err := b.segments.Create(ctx, "inactive 30+ days", json.RawMessage(`{"field":"last_active_at","before":{"ago":"30d"}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := b.create(t, campaign.Input{Lists: &[]string{all}, Segment: &seg.ID,
		Schedule: &store.Schedule{Kind: store.ScheduleCron, Cron: "0 10 * * *"},
		Cap:      &store.FrequencyCap{Kind: store.CapDays, Days: 30}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at     string
		want   []string
		capped int
	}{
		{"2026-01-01T10:00:00Z", []string{"ann@example.com", "cat@example.com"}, 0},
		{"2026-01-02T10:00:00Z", nil, 2},                                            // ann and cat had it yesterday
		{"2026-01-25T10:00:00Z", []string{"bob@example.com"}, 2},                    // bob is inactive now
		{"2026-02-01T10:00:00Z", []string{"ann@example.com", "cat@example.com"}, 1}, // 31 days on
	} {
		now = utcTime(tt.at)
		b.clock.Set(now)
		sent := b.drain(t, b.svc, c.ID, now)
		if !slices.Equal(sent, tt.want) {
			t.Errorf("%s: sent to %v, want %v", tt.at, sent, tt.want)
		}
		runs := b.runs(t, c.ID)
		if r := runs[0]; !r.ScheduledAt.Equal(now) || r.Excluded.Capped != tt.capped || r.State != store.RunFinished {
			t.Errorf("%s: run at %s, %s, excluded %+v; want %d capped", tt.at, r.ScheduledAt, r.State, r.Excluded, tt.capped)
		}
	}
}

// The campaigns' share of a daily quota of 10 is 5 a day: a run of 12 sends 5, pauses itself
// once they are out, and resumes on each next (UTC) day until done; nothing expires.
func TestDailyQuotaPausesAndResumesNextDay(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *campaign.Config) { c.DailyQuota, c.QuotaShare = 10, 0.5 })
	ctx := t.Context()
	news := b.list(t, "News")
	for i := range 12 {
		b.contact(t, string(rune('a'+i))+"@example.com", "X", news)
	}
	now := utcTime("2026-12-07T22:00:00Z")
	b.clock.Set(now)
	c := b.create(t, campaign.Input{Lists: &[]string{news}, ResumeNextDay: ptr(true)})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, b.svc, now)
	// The day's share is used, but its messages are not out yet: no pause (it would hold them).
	tick(t, b.svc, now)
	if c, _ = b.svc.Get(ctx, c.ID); c.State != store.CampaignRunning {
		t.Fatalf("paused with messages in flight: %s", c.State)
	}
	sent := b.deliver(t, now)
	tick(t, b.svc, now)
	if c, _ = b.svc.Get(ctx, c.ID); c.State != store.CampaignPaused || !slices.Equal(c.PauseReasons, []string{store.PauseDailyQuota}) {
		t.Fatalf("after the day's share: %s %v", c.State, c.PauseReasons)
	}
	if len(sent) != 5 {
		t.Fatalf("sent %d on the first day, want 5", len(sent))
	}
	tick(t, b.svc, now.Add(time.Hour)) // the same day: still paused
	if c, _ = b.svc.Get(ctx, c.ID); c.State != store.CampaignPaused {
		t.Fatalf("resumed the same day: %s", c.State)
	}
	for _, d := range []string{"2026-12-08T00:00:30Z", "2026-12-09T00:00:30Z"} {
		now = utcTime(d)
		b.clock.Set(now)
		got := b.drain(t, b.svc, c.ID, now)
		sent = append(sent, got...)
	}
	if len(sent) != 12 {
		t.Fatalf("sent %d in all, want 12", len(sent))
	}
	c, _ = b.svc.Get(ctx, c.ID)
	r := b.runs(t, c.ID)[0]
	if c.State != store.CampaignFinished || r.Progress.Counts["sent"] != 12 || r.Progress.Counts["failed"] != 0 {
		t.Fatalf("campaign %s, run counts %v", c.State, r.Progress.Counts)
	}
	for d, want := range map[string]int{"2026-12-07": 5, "2026-12-08": 5, "2026-12-09": 2} {
		if n, err := b.st.CampaignDayCount(ctx, d); err != nil || n != want {
			t.Errorf("day count of %s = %d, %v; want %d", d, n, err, want)
		}
	}
}

// Pause holds the run's messages not sent yet (no claim returns them) and creates no more;
// resume days later makes them due with a fresh expiry; cancel cancels what is left.
func TestPauseResumeCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *campaign.Config) { c.Window = 4 })
	ctx := t.Context()
	news := b.list(t, "News")
	for i := range 10 {
		b.contact(t, string(rune('a'+i))+"@example.com", "X", news)
	}
	now := start
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, b.svc, now)
	c, err := b.svc.Pause(ctx, c.ID)
	if err != nil || c.State != store.CampaignPaused || !slices.Equal(c.PauseReasons, []string{store.PauseManual}) {
		t.Fatalf("Pause: %v %s %v", err, c.State, c.PauseReasons)
	}
	if got := b.deliver(t, now.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("held messages were claimed: %v", got)
	}
	tick(t, b.svc, now.Add(time.Hour))
	r := b.runs(t, c.ID)[0]
	if r.State != store.RunPaused || r.Progress.Counts["queued"] != 4 || r.Progress.Counts["pending"] != 6 {
		t.Fatalf("paused run %s counts %v", r.State, r.Progress.Counts)
	}

	// Three days later (the TTL is a day): resume; the held messages go out, none expired.
	now = now.Add(72 * time.Hour)
	b.clock.Set(now)
	if c, err = b.svc.Resume(ctx, c.ID, []string{store.PauseManual}); err != nil || c.State != store.CampaignRunning {
		t.Fatalf("Resume: %v %s", err, c.State)
	}
	msgs, _ := b.st.MessageList(ctx, store.MessageListParams{CampaignID: c.ID, Limit: 10})
	for _, m := range msgs {
		if m.ExpiresAt.Before(now.Add(24 * time.Hour)) {
			t.Errorf("message %s expires at %s, before now + TTL", m.ID, m.ExpiresAt)
		}
	}
	if got := b.deliver(t, now); len(got) != 4 {
		t.Fatalf("delivered %d after resume, want the 4 held", len(got))
	}
	tick(t, b.svc, now) // 4 more
	c, err = b.svc.Cancel(ctx, c.ID)
	if err != nil || c.State != store.CampaignCancelled {
		t.Fatalf("Cancel: %v %s", err, c.State)
	}
	if got := b.deliver(t, now); len(got) != 0 {
		t.Fatalf("cancelled messages were claimed: %v", got)
	}
	tick(t, b.svc, now)
	r = b.runs(t, c.ID)[0]
	if r.State != store.RunCancelled || r.Progress.Counts["sent"] != 4 || r.Progress.Counts["cancelled"] != 6 || r.Progress.Open != 0 {
		t.Fatalf("cancelled run %s counts %v open %d", r.State, r.Progress.Counts, r.Progress.Open)
	}
	if _, err := b.svc.Resume(ctx, c.ID, nil); kindOf(err) != message.KindConflict || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("Resume of a cancelled campaign: %v", err)
	}
}

// The campaign's rate paces the creation of its messages (on the run's clock); progress shows
// the rate messages go out at and an ETA while the run is on, none once it is over.
func TestRateAndProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	news := b.list(t, "News")
	for i := range 10 {
		b.contact(t, string(rune('a'+i))+"@example.com", "X", news)
	}
	c := b.create(t, campaign.Input{Lists: &[]string{news}, Rate: ptr(2.0)})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	now := start
	for i := range 3 {
		tick(t, b.svc, now)
		tick(t, b.svc, now) // the same second: nothing more
		got := b.deliver(t, now)
		if len(got) != 2 {
			t.Fatalf("second %d: %d messages, want 2 (rate 2/s)", i, len(got))
		}
		now = now.Add(time.Second)
		b.clock.Set(now)
	}
	v, err := b.svc.Run(ctx, c.ID, b.runs(t, c.ID)[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Progress.Counts["sent"] != 6 || v.Progress.Counts["pending"] != 4 || v.Rate <= 0 || !v.ETA.After(now) {
		t.Fatalf("run view: counts %v rate %v eta %v (now %v)", v.Progress.Counts, v.Rate, v.ETA, now)
	}
	for range 4 { // 2 a second: two seconds for the last 4, then the run's end
		tick(t, b.svc, now)
		b.deliver(t, now)
		now = now.Add(time.Second)
		b.clock.Set(now)
	}
	v, _ = b.svc.Run(ctx, c.ID, v.ID)
	if v.State != store.RunFinished || !v.ETA.IsZero() || v.Rate <= 0 {
		t.Fatalf("finished run: %s eta %v rate %v", v.State, v.ETA, v.Rate)
	}
	if _, err := b.svc.Run(ctx, "cmp_other", v.ID); kindOf(err) != message.KindNotFound {
		t.Fatalf("a run through another campaign: %v", err)
	}
}

// Resume lifts the reasons it names; the campaign runs again once none is left. Changing a
// scheduled campaign's schedule moves its next occurrence.
func TestResumeByReasonAndReschedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	news := b.list(t, "News")
	b.contact(t, "ann@example.com", "Ann", news)
	c := b.create(t, campaign.Input{Lists: &[]string{news},
		Schedule: &store.Schedule{Kind: store.ScheduleAt, At: start.Add(time.Hour)}})
	c, err := b.svc.Start(ctx, c.ID)
	if err != nil || c.State != store.CampaignScheduled || !c.NextRunAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("Start: %v %s %s", err, c.State, c.NextRunAt)
	}
	c, err = b.svc.Update(ctx, c.ID, campaign.Input{Schedule: &store.Schedule{Kind: store.ScheduleCron, Cron: "0 9 * * 1", Timezone: "Asia/Seoul"}})
	if err != nil || !c.NextRunAt.Equal(utcTime("2026-12-14T00:00:00Z")) || c.State != store.CampaignScheduled {
		t.Fatalf("Update: %v %s next %s", err, c.State, c.NextRunAt)
	}
	if _, err := b.svc.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Pause(ctx, c.ID); kindOf(err) != message.KindConflict || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("a second Pause: %v", err)
	}
	if _, err := b.svc.Resume(ctx, c.ID, []string{"vacation"}); kindOf(err) != message.KindInvalid {
		t.Fatalf("Resume of an unknown reason: %v", err)
	}
	c, err = b.svc.Resume(ctx, c.ID, []string{store.PauseDailyQuota}) // not a reason it has
	if err != nil || c.State != store.CampaignPaused {
		t.Fatalf("Resume of another reason: %v %s", err, c.State)
	}
	c, err = b.svc.Resume(ctx, c.ID, nil)
	if err != nil || c.State != store.CampaignScheduled || !c.NextRunAt.Equal(utcTime("2026-12-14T00:00:00Z")) {
		t.Fatalf("Resume: %v %s next %s", err, c.State, c.NextRunAt)
	}
	if err := b.svc.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Get(ctx, c.ID); kindOf(err) != message.KindNotFound {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// A node that dies mid-run leaves its lease; another node takes the run over once the lease
// ends and goes on where it stood: every recipient gets exactly one message.
func TestTakeOverAfterLeaseEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *campaign.Config) { c.Window = 2 })
	ctx := t.Context()
	news := b.list(t, "News")
	for i := range 7 {
		b.contact(t, string(rune('a'+i))+"@example.com", "X", news)
	}
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	now := start
	tick(t, b.svc, now) // node a creates two messages, then dies
	sent := b.deliver(t, now)

	cfg := b.cfg
	cfg.Owner = "node-b/1/bb"
	other := campaign.New(cfg)
	tick(t, other, now.Add(30*time.Second)) // a's lease still holds
	if got := b.deliver(t, now.Add(30*time.Second)); len(got) != 0 {
		t.Fatalf("node b worked a run leased to node a: %v", got)
	}
	now = now.Add(61 * time.Second)
	b.clock.Set(now)
	sent = append(sent, b.drain(t, other, c.ID, now)...)
	slices.Sort(sent)
	if len(sent) != 7 || len(slices.Compact(slices.Clone(sent))) != 7 {
		t.Fatalf("sent %v, want each of 7 once", sent)
	}
	if r := b.runs(t, c.ID)[0]; r.State != store.RunFinished || r.Progress.Counts["sent"] != 7 {
		t.Fatalf("run %s counts %v", r.State, r.Progress.Counts)
	}
}

// countingStore is a store that counts the calls of RunProgress and RunInFlight.
type countingStore struct {
	store.Store
	progress, inFlight atomic.Int64
}

func (s *countingStore) RunProgress(ctx context.Context, runID string) (store.RunProgress, error) {
	s.progress.Add(1)
	return s.Store.RunProgress(ctx, runID)
}

func (s *countingStore) RunInFlight(ctx context.Context, runID string) (int, error) {
	s.inFlight.Add(1)
	return s.Store.RunInFlight(ctx, runID)
}

// A full window is checked with RunInFlight, not by counting the whole run again.
func TestWindowWithAnInFlightCount(t *testing.T) {
	t.Parallel()
	var cs *countingStore
	b := setup(t, func(c *campaign.Config) {
		cs = &countingStore{Store: c.Store}
		c.Store, c.Window = cs, 4
	})
	ctx := t.Context()
	news := b.list(t, "News")
	for i := range 10 {
		b.contact(t, string(rune('a'+i))+"@example.com", "X", news)
	}
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, b.svc, start) // a window of 4
	progress := cs.progress.Load()
	tick(t, b.svc, start) // full: asked, nothing created
	if cs.inFlight.Load() != 1 || cs.progress.Load() != progress {
		t.Fatalf("a full window: %d in-flight counts, %d progress reads (%d before)", cs.inFlight.Load(), cs.progress.Load(), progress)
	}
	if got := b.deliver(t, start); len(got) != 4 {
		t.Fatalf("delivered %d, want the window of 4", len(got))
	}
	tick(t, b.svc, start) // room again: 4 more
	if got := b.deliver(t, start); len(got) != 4 {
		t.Fatalf("delivered %d after the window emptied, want 4", len(got))
	}
	if sent := b.drain(t, b.svc, c.ID, start); len(sent) != 2 {
		t.Fatalf("the rest: %v", sent)
	}
}

// A due occurrence is checked again before it runs: a campaign whose data no longer satisfies
// its template's schema goes back to draft, unrun; a run whose segment is gone before it is
// materialised is cancelled.
func TestDueCampaignNoLongerChecks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	news := b.list(t, "News")
	b.contact(t, "ann@example.com", "Ann", news)
	c := b.create(t, campaign.Input{Lists: &[]string{news},
		Schedule: &store.Schedule{Kind: store.ScheduleAt, At: start.Add(time.Hour)}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	// The template now wants a title the campaign's data lacks.
	b.template(t, "news", `{"type":"object","required":["issue","title"]}`, "{{.data.title}}", "<p>x</p>")
	tick(t, b.svc, start.Add(time.Hour))
	c, _ = b.svc.Get(ctx, c.ID)
	if c.State != store.CampaignDraft || len(b.runs(t, c.ID)) != 0 {
		t.Fatalf("a due campaign that no longer checks: %s, %d runs", c.State, len(b.runs(t, c.ID)))
	}
	if _, err := b.svc.Start(ctx, c.ID); kindOf(err) != message.KindInvalid {
		t.Fatalf("Start of it: %v", err)
	}

	seg, err := b.segments.Create(ctx, "everyone", json.RawMessage(`{"and":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	c2 := b.create(t, campaign.Input{Segment: &seg.ID, Data: json.RawMessage(`{"issue":1,"title":"x"}`)})
	if _, err := b.svc.Start(ctx, c2.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.st.SegmentDelete(ctx, seg.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, b.svc, start.Add(2*time.Hour))
	c2, _ = b.svc.Get(ctx, c2.ID)
	if r := b.runs(t, c2.ID); c2.State != store.CampaignCancelled || len(r) != 1 || r[0].State != store.RunCancelled {
		t.Fatalf("a run whose segment is gone: campaign %s, runs %v", c2.State, r)
	}
}

// The counts of a large run are shared by its readers for a moment, and counted again once the
// run changed (here: paused), so a run's state and its counts agree.
func TestLargeRunCountsShared(t *testing.T) {
	t.Parallel()
	var cs *countingStore
	b := setup(t, func(c *campaign.Config) {
		cs = &countingStore{Store: c.Store}
		c.Store = cs
	})
	ctx := t.Context()
	news := b.list(t, "News")
	const n = 10_000 // campaign's largeRun
	for first := 0; first < n; first += 1000 {
		items := make([]store.ContactUpsert, 1000)
		for i := range items {
			email := fmt.Sprintf("r%05d@example.com", first+i)
			items[i] = store.ContactUpsert{Email: email, EmailKey: email, Lists: []string{news}}
		}
		if _, err := b.st.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: items, Now: start}); err != nil {
			t.Fatal(err)
		}
	}
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	var run store.Run
	for run.Recipients < n {
		tick(t, b.svc, start)
		runs, err := b.st.RunList(ctx, c.ID, 1)
		if err != nil || len(runs) != 1 {
			t.Fatalf("runs %v, %v", runs, err)
		}
		run = runs[0]
	}

	before := cs.progress.Load()
	first, err := b.svc.Run(ctx, c.ID, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Run(ctx, c.ID, run.ID); err != nil {
		t.Fatal(err)
	}
	if got := cs.progress.Load() - before; got > 1 {
		t.Errorf("two reads of a large run counted it %d times, want at most once", got)
	}
	if _, err := b.svc.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	before = cs.progress.Load()
	paused, err := b.svc.Run(ctx, c.ID, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if paused.State != store.RunPaused || cs.progress.Load()-before != 1 {
		t.Errorf("after the pause: state %s, %d counts (want paused, counted again)", paused.State, cs.progress.Load()-before)
	}
	if first.Progress.Counts["pending"]+first.Progress.Counts["queued"] != n {
		t.Errorf("counts %v: want %d pending or queued", first.Progress.Counts, n)
	}
}
