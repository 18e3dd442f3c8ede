package campaign_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
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
		if !strings.Contains(string(raw), "Hello "+name) || !strings.Contains(string(raw), "List-Unsubscribe-Post") {
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
	_, err = b.svc.Test(ctx, c.ID, campaign.TestParams{To: []string{"me@example.com", "not an address"}})
	if ps := problemsOf(t, err); ps["to[1]"] == "" {
		t.Errorf("problems %v, want to[1]", ps)
	}
	if runs := b.runs(t, c.ID); len(runs) != 0 {
		t.Errorf("a test send made runs: %v", runs)
	}
}
