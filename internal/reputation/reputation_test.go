package reputation_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/reputation"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type bundle struct {
	st    store.Store
	clock *clock
	svc   *reputation.Service
	logs  *bytes.Buffer
}

var t0 = time.Date(2026, 12, 7, 12, 30, 0, 0, time.UTC)

// drivers are the stores the tests run against: SQLite, and PostgreSQL when TEST_DATABASE_URL
// is set.
var drivers = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store { return sqlitetest.Open(t) }},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(t.Context(), postgres.Options{URL: pgtest.URL(t), Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// eachDriver runs test on a new store of each driver, in parallel.
func eachDriver(t *testing.T, test func(t *testing.T, st store.Store)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			test(t, d.open(t))
		})
	}
}

func setup(t *testing.T, st store.Store, mod func(*reputation.Config)) *bundle {
	t.Helper()
	b := &bundle{st: st, clock: &clock{t: t0}, logs: &bytes.Buffer{}}
	cfg := reputation.Config{Store: b.st, ComplaintWarn: 0.005, ComplaintPause: 0.02, BouncePause: 0.1, MinVolume: 50,
		Now: b.clock.Now, Logger: slog.New(slog.NewTextHandler(b.logs, nil))}
	if mod != nil {
		mod(&cfg)
	}
	b.svc = reputation.New(cfg)
	return b
}

// seed makes a message of stream with delivered recipients, sent at at, then reports bounced
// of them as bounced and complained others as complaints, at at.
func (b *bundle) seed(t *testing.T, stream string, at time.Time, delivered, bounced, complained int) {
	t.Helper()
	ctx := t.Context()
	rcpts := make([]string, delivered)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("r%d-%d@example.com", at.Unix(), i)
	}
	m := storetest.Message(at, func(m *store.Message) { m.Stream, m.To, m.Recipients = stream, rcpts, rcpts })
	if _, err := b.st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: at}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.st.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: stream, Limit: 10, Now: at,
		LeaseUntil: at.Add(time.Minute)}); err != nil || len(got) != 1 {
		t.Fatalf("claimed %d, %v", len(got), err)
	}
	if n, err := b.st.MessageFinish(ctx, at, []store.MessageFinishParams{{ID: m.Message.ID, Owner: "w",
		Status: store.StatusSent, Attempts: 1, SentAt: at}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	var reports []store.RecipientReport
	for i := range bounced + complained {
		r := store.RecipientReport{MessageID: m.Message.ID, Recipient: rcpts[i], Kind: store.ReportBounce, Key: rcpts[i],
			Detail: store.ReportDetail{Source: "dsn", Class: store.BounceHard, Status: "5.1.1"}}
		if i >= bounced {
			r.Kind, r.Detail = store.ReportComplaint, store.ReportDetail{Source: "arf", FeedbackType: "abuse"}
		}
		reports = append(reports, r)
	}
	if len(reports) > 0 {
		if _, err := b.st.InboundApply(ctx, store.InboundApplyParams{Entry: store.InboundEntry{Channel: store.InboundSMTP, Kind: "dsn"},
			Reports: reports, Now: at}); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *bundle) stream(t *testing.T, name string) reputation.StreamStats {
	t.Helper()
	st, err := b.svc.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (b *bundle) check(t *testing.T) {
	t.Helper()
	if err := b.svc.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestStats: the rates of each stream over 24 hours and 7 days, from the hourly counts.
func TestStats(t *testing.T) {
	t.Parallel()
	eachDriver(t, testStats)
}

func testStats(t *testing.T, st store.Store) {
	b := setup(t, st, nil)
	b.seed(t, store.StreamBroadcast, t0.Add(-2*time.Hour), 100, 3, 1)
	b.seed(t, store.StreamBroadcast, t0.Add(-3*24*time.Hour), 200, 2, 0)
	b.seed(t, store.StreamBroadcast, t0.Add(-8*24*time.Hour), 500, 100, 50) // outside both windows
	b.seed(t, store.StreamTransactional, t0.Add(-time.Hour), 10, 0, 0)
	all, err := b.svc.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Stream != store.StreamTransactional || all[1].Stream != store.StreamBroadcast {
		t.Fatalf("Stats = %+v", all)
	}
	bc := all[1]
	want := []reputation.WindowStats{
		{Window: "24h", Since: t0.Add(-24 * time.Hour).Truncate(time.Hour), DeliveryCounts: store.DeliveryCounts{Delivered: 100, Bounced: 3, Complained: 1},
			BounceRate: 0.03, ComplaintRate: 0.01, Enough: true},
		{Window: "7d", Since: t0.Add(-7 * 24 * time.Hour).Truncate(time.Hour), DeliveryCounts: store.DeliveryCounts{Delivered: 300, Bounced: 5, Complained: 1},
			BounceRate: 5.0 / 300, ComplaintRate: 1.0 / 300, Enough: true},
	}
	for i, w := range want {
		if bc.Windows[i] != w {
			t.Errorf("broadcast window %s = %+v, want %+v", w.Window, bc.Windows[i], w)
		}
	}
	if !bc.Warning || bc.State.Paused {
		t.Errorf("broadcast warning %v, paused %v; want a warning (1%% over 0.5%%), not paused", bc.Warning, bc.State.Paused)
	}
	tx := all[0]
	if tx.Windows[0].Delivered != 10 || tx.Windows[0].Enough || tx.Warning {
		t.Errorf("transactional = %+v", tx)
	}
	if _, err := b.svc.Stream(t.Context(), "bulk"); !errors.Is(err, reputation.ErrUnknownStream) {
		t.Errorf("Stream(bulk) = %v, want ErrUnknownStream", err)
	}
}

// TestBreaker: complaint and bounce rates at their thresholds pause the broadcast stream once a
// window has enough volume; transactional is never paused; a stream already paused is left.
func TestBreaker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                           string
		delivered, bounced, complained int
		reason                         string
	}{
		{"complaints", 100, 0, 2, store.PauseComplaintRate},
		{"bounces", 100, 10, 0, store.PauseBounceRate},
		{"under the thresholds", 100, 9, 1, ""},
		{"too little volume", 49, 20, 20, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachDriver(t, func(t *testing.T, s store.Store) {
				b := setup(t, s, nil)
				b.seed(t, store.StreamBroadcast, t0.Add(-time.Hour), tc.delivered, tc.bounced, tc.complained)
				b.seed(t, store.StreamTransactional, t0.Add(-time.Hour), 100, 50, 50)
				b.check(t)
				st := b.stream(t, store.StreamBroadcast)
				if st.State.Paused != (tc.reason != "") || st.State.Reason != tc.reason {
					t.Fatalf("broadcast paused %v (%q), want %q", st.State.Paused, st.State.Reason, tc.reason)
				}
				if tx := b.stream(t, store.StreamTransactional); tx.State.Paused {
					t.Error("the transactional stream was paused")
				}
				if tc.reason == "" {
					return
				}
				if !st.State.PausedAt.Equal(t0) || !strings.Contains(st.State.Detail, "over the last 24h") ||
					!strings.Contains(st.State.Detail, fmt.Sprintf("%d delivered", tc.delivered)) {
					t.Errorf("pause %+v", st.State)
				}
				if !strings.Contains(b.logs.String(), "stream paused") {
					t.Errorf("no log of the pause:\n%s", b.logs)
				}
				b.clock.Set(t0.Add(time.Minute))
				b.check(t) // already paused: nothing changes
				if again := b.stream(t, store.StreamBroadcast); !again.State.PausedAt.Equal(t0) {
					t.Errorf("paused again at %v", again.State.PausedAt)
				}
			})
		})
	}
}

// TestResume: after a resume, what paused the stream does not pause it again; new complaints
// from the first whole hour after the resume do. Resuming a running stream is ErrNotPaused.
func TestResume(t *testing.T) {
	t.Parallel()
	eachDriver(t, testResume)
}

func testResume(t *testing.T, st store.Store) {
	b := setup(t, st, nil)
	ctx := t.Context()
	b.seed(t, store.StreamBroadcast, t0.Add(-time.Hour), 100, 0, 5)
	b.check(t)
	resumedAt := t0.Add(10 * time.Minute)
	b.clock.Set(resumedAt)
	resumed, err := b.svc.Resume(ctx, store.StreamBroadcast)
	if err != nil || resumed.State.Paused || !resumed.State.ResumedAt.Equal(resumedAt) {
		t.Fatalf("Resume = %+v, %v", resumed, err)
	}
	if resumed.Windows[0].Complained != 5 {
		t.Errorf("the API shows %d complaints, want the whole window's 5", resumed.Windows[0].Complained)
	}
	if _, err := b.svc.Resume(ctx, store.StreamBroadcast); !errors.Is(err, reputation.ErrNotPaused) {
		t.Errorf("Resume of a running stream = %v, want ErrNotPaused", err)
	}
	if _, err := b.svc.Resume(ctx, "bulk"); !errors.Is(err, reputation.ErrUnknownStream) {
		t.Errorf("Resume(bulk) = %v, want ErrUnknownStream", err)
	}

	// Complaints later in the hour of the resume do not count (the counts are hourly).
	b.seed(t, store.StreamBroadcast, t0.Add(20*time.Minute), 100, 0, 5)
	b.clock.Set(t0.Add(25 * time.Minute))
	b.check(t)
	if st := b.stream(t, store.StreamBroadcast); st.State.Paused {
		t.Fatalf("paused again by what was counted before the resume's next hour: %+v", st.State)
	}
	// From the next hour on they do.
	next := t0.Truncate(time.Hour).Add(time.Hour)
	b.seed(t, store.StreamBroadcast, next.Add(5*time.Minute), 100, 0, 1) // 1%: under the pause
	b.clock.Set(next.Add(10 * time.Minute))
	b.check(t)
	if st := b.stream(t, store.StreamBroadcast); st.State.Paused {
		t.Fatalf("paused at 1%%: %+v", st.State)
	}
	b.seed(t, store.StreamBroadcast, next.Add(15*time.Minute), 100, 0, 4) // 5 of 200: 2.5%
	b.clock.Set(next.Add(20 * time.Minute))
	b.check(t)
	if st := b.stream(t, store.StreamBroadcast); !st.State.Paused || !strings.Contains(st.State.Detail, "5 complaints, 200 delivered") {
		t.Fatalf("not paused by the complaints after the resume: %+v", st.State)
	}
}

// TestWarningLogged: crossing POSTIE_COMPLAINT_WARN logs once, and going back under logs once.
func TestWarningLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, sqlitetest.Open(t), func(c *reputation.Config) { c.ComplaintPause, c.BouncePause = 0, 0 })
	b.seed(t, store.StreamTransactional, t0.Add(-time.Hour), 100, 0, 1)
	b.check(t)
	b.check(t)
	if n := strings.Count(b.logs.String(), "complaint rate at or over POSTIE_COMPLAINT_WARN"); n != 2 {
		t.Errorf("%d warnings (want one per window):\n%s", n, b.logs)
	}
	b.clock.Set(t0.Add(8 * 24 * time.Hour))
	b.check(t)
	if n := strings.Count(b.logs.String(), "back under"); n != 2 {
		t.Errorf("%d all-clear logs, want one per window:\n%s", n, b.logs)
	}
	if st := b.stream(t, store.StreamTransactional); st.State.Paused || st.Warning {
		t.Errorf("transactional %+v", st)
	}
}

func TestRates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		delivered, bounced, complained int
		bounce, complaint              float64
	}{
		{0, 0, 0, 0, 0},
		{0, 3, 1, 0, 0}, // reports about mail delivered before the window
		{1000, 50, 2, 0.05, 0.002},
	} {
		b, c := reputation.Rates(tc.delivered, tc.bounced, tc.complained)
		if b != tc.bounce || c != tc.complaint {
			t.Errorf("Rates(%d, %d, %d) = %v, %v; want %v, %v", tc.delivered, tc.bounced, tc.complained, b, c, tc.bounce, tc.complaint)
		}
	}
}
