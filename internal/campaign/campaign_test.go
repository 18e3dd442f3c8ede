package campaign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/templates"
)

// clock is a test clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// bundle is what the tests of a campaign service use: a real SQLite store, the template
// catalog, the message front door with list mail configured, the audience, and the service
// on a test clock.
type bundle struct {
	st       store.Store
	cat      *templates.Catalog
	msgs     *message.Service
	contacts *audience.Service
	segments *audience.Segments
	links    *audience.Links
	clock    *clock
	svc      *campaign.Service
	cfg      campaign.Config
}

var start = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

// driver is the store the tests run on: a SQLite file by default, a PostgreSQL database of
// TEST_DATABASE_URL with -driver=postgres.
var driver = flag.String("driver", "sqlite", "the store the tests run on: sqlite, or postgres (a database of TEST_DATABASE_URL)")

// open opens a new, migrated store of the driver the tests run on, closed when t ends.
func open(t *testing.T) store.Store {
	t.Helper()
	if *driver != "postgres" {
		return sqlitetest.Open(t)
	}
	st, err := postgres.Open(context.Background(), postgres.Options{URL: pgtest.URL(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func setup(t *testing.T, opts ...func(*campaign.Config)) *bundle {
	t.Helper()
	b := &bundle{st: open(t), clock: &clock{t: start}}
	b.cat = templates.New(templates.Config{Store: b.st, Now: b.clock.Now})
	keys, err := audience.NewKeys([]audience.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b.links = audience.NewLinks(keys, "https://u.example.com/")
	b.msgs = message.New(message.Config{
		Store: b.st, Templates: b.cat, DefaultFrom: "Shop <news@shop.example>",
		MaxRecipients: 50, MaxMessageSize: 1 << 20, MaxScheduleAhead: 30 * 24 * time.Hour,
		MessageTTL: 24 * time.Hour, MaxAttempts: 4,
		Broadcast: message.BroadcastConfig{Links: b.links, PostalAddress: "Shop Inc.\n1 Main St"},
	})
	b.contacts = audience.New(audience.Config{Store: b.st, Now: b.clock.Now})
	b.segments = audience.NewSegments(audience.SegmentsConfig{Store: b.st, Now: b.clock.Now})
	b.cfg = campaign.Config{Store: b.st, Messages: b.msgs, Templates: b.cat, Segments: b.segments,
		Owner: "node-a/1/aa", Lease: time.Minute, Now: b.clock.Now, MessageTTL: 24 * time.Hour,
		Window: 100, MissedGrace: time.Hour, ComplaintRate: 0.003, ComplaintMinSent: 1000}
	for _, o := range opts {
		o(&b.cfg)
	}
	b.svc = campaign.New(b.cfg)
	b.template(t, "news", `{"type":"object","properties":{"issue":{"type":"integer"}},"required":["issue"]}`,
		"Issue {{.data.issue}}", "<p>Hello {{.contact.name}}, issue {{.data.issue}} of {{.campaign.name}}</p>")
	return b
}

// template stores a template version.
func (b *bundle) template(t *testing.T, name, schema, subject, html string) store.Template {
	t.Helper()
	tpl := store.Template{Name: name, Subject: subject, HTML: html, Origin: store.TemplateOriginAPI}
	if schema != "" {
		tpl.Schema = json.RawMessage(schema)
	}
	out, _, err := b.cat.Put(t.Context(), tpl)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// list creates a list.
func (b *bundle) list(t *testing.T, name string) string {
	t.Helper()
	l, err := b.contacts.ListCreate(t.Context(), audience.ListInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

// contact upserts a contact subscribed to lists.
func (b *bundle) contact(t *testing.T, email, name string, lists ...string) string {
	t.Helper()
	res, err := b.contacts.UpsertOne(t.Context(), store.ContactUpsert{Email: email, Name: &name, Lists: lists})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func ptr[T any](v T) *T { return &v }

// problemsOf returns the fields of a KindInvalid *message.Error, failing otherwise.
func problemsOf(t *testing.T, err error) map[string]string {
	t.Helper()
	var me *message.Error
	if !errors.As(err, &me) || me.Kind != message.KindInvalid {
		t.Fatalf("want an invalid-input error, got %v", err)
	}
	out := map[string]string{}
	for _, p := range me.Problems {
		out[p.Field] = p.Message
	}
	return out
}

// TestCreateRefusesBadInput: each bad field is named, and nothing is stored.
func TestCreateRefusesBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	news := b.list(t, "News")
	seg, err := b.segments.Create(t.Context(), "inactive", json.RawMessage(`{"field":"last_active_at","before":{"ago":"30d"}}`))
	if err != nil {
		t.Fatal(err)
	}
	good := func() campaign.Input {
		return campaign.Input{Name: ptr("May news"), Template: ptr("news"), Lists: &[]string{news},
			Data: json.RawMessage(`{"issue":5}`)}
	}
	tests := []struct {
		name   string
		change func(*campaign.Input)
		field  string
		text   string
	}{
		{"no name", func(in *campaign.Input) { in.Name = ptr("") }, "name", "required"},
		{"unknown template", func(in *campaign.Input) { in.Template = ptr("nope") }, "template", "unknown template"},
		{"no template", func(in *campaign.Input) { in.Template = nil }, "template", "required"},
		{"unknown version", func(in *campaign.Input) { in.TemplateVersion = ptr(7) }, "template_version", "no version 7"},
		{"unknown list", func(in *campaign.Input) { in.Lists = &[]string{news, "lst_nope"} }, "audience.lists[1]", "no such list"},
		{"same list twice", func(in *campaign.Input) { in.Lists = &[]string{news, news} }, "audience.lists[1]", "twice"},
		{"unknown segment", func(in *campaign.Input) { in.Segment = ptr("seg_nope") }, "audience.segment", "no such segment"},
		{"no audience", func(in *campaign.Input) { in.Lists = nil }, "audience", "lists, a segment"},
		{"data against the schema", func(in *campaign.Input) { in.Data = json.RawMessage(`{"issue":"five"}`) }, "data/issue", "integer"},
		{"data missing", func(in *campaign.Input) { in.Data = nil }, "data/issue", "required"},
		{"bad cron", func(in *campaign.Input) {
			in.Schedule = &store.Schedule{Kind: store.ScheduleCron, Cron: "0 25 * * *", Timezone: "Asia/Seoul"}
		}, "schedule.cron", "cron"},
		{"bad time zone", func(in *campaign.Input) {
			in.Schedule = &store.Schedule{Kind: store.ScheduleCron, Cron: "0 9 * * 1", Timezone: "Asia/Nowhere"}
		}, "schedule.timezone", "IANA"},
		{"at in the past", func(in *campaign.Input) {
			in.Schedule = &store.Schedule{Kind: store.ScheduleAt, At: start.Add(-time.Hour)}
		}, "schedule.at", "in the past"},
		{"unknown schedule kind", func(in *campaign.Input) { in.Schedule = &store.Schedule{Kind: "weekly"} }, "schedule.kind", "now, at or cron"},
		{"negative rate", func(in *campaign.Input) { in.Rate = ptr(-1.0) }, "rate", "0"},
		{"cap days", func(in *campaign.Input) { in.Cap = &store.FrequencyCap{Kind: store.CapDays} }, "frequency_cap.days", "1 to"},
		{"cap kind", func(in *campaign.Input) { in.Cap = &store.FrequencyCap{Kind: "weekly"} }, "frequency_cap.kind", "once_per_contact"},
		{"bad from", func(in *campaign.Input) { in.From = ptr("not an address") }, "from", ""},
		{"bad tag", func(in *campaign.Input) { in.Tags = &[]string{"ok", ""} }, "tags[1]", "tag"},
		{"subject with a line break", func(in *campaign.Input) { in.Subject = ptr("a\r\nBcc: x@y") }, "subject", "one line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good()
			tt.change(&in)
			_, err := b.svc.Create(t.Context(), in)
			ps := problemsOf(t, err)
			msg, ok := ps[tt.field]
			if !ok || !strings.Contains(msg, tt.text) {
				t.Fatalf("problems %v: want %s containing %q", ps, tt.field, tt.text)
			}
		})
	}
	_ = seg
	if page, _, err := b.st.CampaignList(t.Context(), store.CampaignListParams{}); err != nil || len(page) != 0 {
		t.Fatalf("campaigns stored from bad input: %d, %v", len(page), err)
	}
	// A test send to more than 50 addresses is refused before anything is looked up.
	to := make([]string, campaign.MaxTestRecipients+1)
	for i := range to {
		to[i] = fmt.Sprintf("t%d@example.com", i)
	}
	_, err = b.svc.Test(t.Context(), "cmp_nope", campaign.TestParams{To: to})
	if ps := problemsOf(t, err); !strings.Contains(ps["to"], "at most 50") {
		t.Fatalf("problems %v", ps)
	}
}
