package message_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/templates"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type bundle struct {
	svc   *message.Service
	store store.Store
	cat   *templates.Catalog
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st := sqlitetest.Open(t)
	cat := templates.New(templates.Config{Store: st, Now: func() time.Time { return now }})
	svc := message.New(message.Config{
		Store: st, Templates: cat, DefaultFrom: "Shop <shop@postie.example>",
		MaxRecipients: 3, MaxMessageSize: 64 << 10, MaxScheduleAhead: 30 * 24 * time.Hour,
		MessageTTL: 24 * time.Hour, MaxAttempts: 4,
	})
	return &bundle{svc: svc, store: st, cat: cat}
}

// accept accepts one request and returns its result, failing the test on a call error.
func (b *bundle) accept(t *testing.T, req message.Request) message.Result {
	t.Helper()
	acc, err := b.svc.Accept(context.Background(), message.AcceptParams{Requests: []message.Request{req}, APIKeyID: "key_1", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return acc.Results[0]
}

func hello(to ...string) message.Request {
	return message.Request{To: to, Subject: "Hello", Text: "Hi there"}
}

// problemsOf is err's kind and its problems as "field: message".
func problemsOf(t *testing.T, err error) (message.Kind, []string) {
	t.Helper()
	var me *message.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T), want a *message.Error", err, err)
	}
	var out []string
	for _, p := range me.Problems {
		out = append(out, p.Field+": "+p.Message)
	}
	return me.Kind, out
}

func TestProblemsNameFieldsRelativeToTheRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	past := now.Add(-time.Hour)
	for _, tc := range []struct {
		name string
		req  message.Request
		kind message.Kind
		want []string
	}{
		{"bad recipient", hello("ok@example.com", "not an address"), message.KindInvalid, []string{"to[1]: "}},
		{"no recipient", message.Request{Subject: "s", Text: "t"}, message.KindInvalid, []string{"to: at least one recipient is required in to, cc or bcc"}},
		{"too many recipients", hello("a@x.example", "b@x.example", "c@x.example", "d@x.example"), message.KindInvalid, []string{"to: too many recipients: 4 in to+cc+bcc, at most 3"}},
		{"no content", message.Request{To: []string{"a@example.com"}}, message.KindInvalid, []string{
			"subject: required: give subject and html or text, or a template", "html: required: give html or text (or both), or a template"}},
		{"header and tag", func() message.Request {
			r := hello("a@example.com")
			r.Headers = map[string]string{"X-Ok": "1", "Bad Name": "v"}
			r.Tags = []string{"fine", ""}
			return r
		}(), message.KindInvalid, []string{"headers.Bad Name: ", "tags[1]: a tag is 1–64 characters without control characters"}},
		{"attachment content the caller could not read", func() message.Request {
			r := hello("a@example.com")
			r.Attachments = []message.Attachment{{Filename: "a.txt", Content: []byte("a")}, {Filename: "b.txt", ContentProblem: "not valid base64"}}
			return r
		}(), message.KindInvalid, []string{"attachments[1].content: not valid base64"}},
		{"unknown stream and past send time", func() message.Request {
			r := hello("a@example.com")
			r.Stream, r.SendAt = "bulk", &past
			return r
		}(), message.KindInvalid, []string{`stream: unknown stream "bulk": use transactional or broadcast`, "send_at: is in the past"}},
		{"too large", func() message.Request {
			r := hello("a@example.com")
			r.HTML = strings.Repeat("<p>big</p>", 10<<10)
			return r
		}(), message.KindTooLarge, []string{"html: the encoded message is"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := b.accept(t, tc.req)
			kind, got := problemsOf(t, res.Err)
			if kind != tc.kind {
				t.Errorf("kind %v, want %v", kind, tc.kind)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d is %q, want %q…", i, got[i], tc.want[i])
				}
			}
		})
	}
	if ms, err := b.store.MessageList(context.Background(), store.MessageListParams{Limit: 10}); err != nil || len(ms) != 0 {
		t.Errorf("stored %d messages (%v) for refused requests, want none", len(ms), err)
	}
}

func TestTemplateRender(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, _, err := b.cat.Put(ctx, store.Template{Name: "shipped", Origin: store.TemplateOriginAPI,
		Subject: "Order {{.data.order.id}} shipped", Text: "Hello {{.data.name}}",
		Schema: json.RawMessage(`{"type":"object","required":["name","order"],"properties":{"name":{"type":"string"},` +
			`"order":{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}}}}`)}); err != nil {
		t.Fatal(err)
	}
	res := b.accept(t, message.Request{To: []string{"ann@example.com"}, Template: "shipped",
		Data: json.RawMessage(`{"name":"Ann","order":{"id":"A-1"}}`)})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	m, err := b.store.MessageGet(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Order A-1 shipped" || m.Template != "shipped" || m.TemplateVersion != 1 {
		t.Errorf("stored subject %q template %s v%d", m.Subject, m.Template, m.TemplateVersion)
	}
	raw, err := b.store.MessageRaw(ctx, res.ID)
	if err != nil || !bytes.Contains(raw, []byte("Hello Ann")) {
		t.Errorf("raw MIME (%v) lacks the rendered text:\n%s", err, raw)
	}

	res = b.accept(t, message.Request{To: []string{"ann@example.com"}, Template: "shipped",
		Data: json.RawMessage(`{"name":"Ann","order":{"id":1}}`)})
	if kind, got := problemsOf(t, res.Err); kind != message.KindInvalid || len(got) != 1 || !strings.HasPrefix(got[0], "data/order/id: ") {
		t.Errorf("bad data: %v %q, want one problem at data/order/id", kind, got)
	}
	res = b.accept(t, message.Request{To: []string{"ann@example.com"}, Template: "nope"})
	if kind, got := problemsOf(t, res.Err); kind != message.KindInvalid || len(got) != 1 || !strings.HasPrefix(got[0], "template: ") {
		t.Errorf("unknown template: %v %q, want one problem at template", kind, got)
	}
}

// rendererFunc is a Renderer from a function: a template the caller resolved itself.
type rendererFunc func(context.Context, templates.RenderParams) (templates.Rendered, error)

func (f rendererFunc) Render(ctx context.Context, p templates.RenderParams) (templates.Rendered, error) {
	return f(ctx, p)
}

// TestRendererWithoutCatalog: a request with its own Renderer (a campaign's compiled template)
// renders without the catalog, and the renderer sees the message's id and stream.
func TestRendererWithoutCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var seen templates.RenderParams
	r := rendererFunc(func(_ context.Context, p templates.RenderParams) (templates.Rendered, error) {
		seen = p
		var out templates.Rendered
		out.Subject, out.Text, out.Version = "News for "+string(p.Data), "Hello", 7
		return out, nil
	})
	res := b.accept(t, message.Request{To: []string{"ann@example.com"}, Template: "weekly", Renderer: r,
		Data: json.RawMessage(`"Ann"`), Stream: store.StreamBroadcast})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if seen.MessageID != res.ID || seen.Stream != store.StreamBroadcast || seen.Name != "weekly" {
		t.Errorf("renderer saw %+v, want message %s on broadcast", seen, res.ID)
	}
	m, err := b.store.MessageGet(context.Background(), res.ID)
	if err != nil || m.Subject != `News for "Ann"` || m.TemplateVersion != 7 || m.Stream != store.StreamBroadcast {
		t.Errorf("stored %+v (%v)", m, err)
	}
}

func TestScheduled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := now.Add(2 * time.Hour)
	req := hello("ann@example.com")
	req.SendAt = &at
	res := b.accept(t, req)
	if res.Err != nil || res.Status != store.StatusScheduled {
		t.Fatalf("result %+v, want scheduled", res)
	}
	m, err := b.store.MessageGet(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := struct {
		Status                      store.Status
		Next, Send, Expires, Create time.Time
		MaxAttempts                 int
	}{store.StatusScheduled, at, at, at.Add(24 * time.Hour), now, 4}
	got := want
	got.Status, got.Next, got.Send, got.Expires, got.Create, got.MaxAttempts = m.Status, m.NextAttemptAt.UTC(), m.SendAt.UTC(), m.ExpiresAt.UTC(), m.CreatedAt.UTC(), m.MaxAttempts
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("scheduled message (-want +got):\n%s", d)
	}
}

// TestIdempotency: a repeat with the same key and request replays the first answer and stores
// nothing; with another request it is a conflict.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	accept := func(body string) (message.Accepted, error) {
		return b.svc.Accept(ctx, message.AcceptParams{
			Requests: []message.Request{hello("ann@example.com")}, APIKeyID: "key_1", Now: now,
			Idempotency: message.Idempotency{Key: " k1 ", Scope: "test", Request: []byte(body)},
			Answer: func(rs []message.Result) (int, []byte) {
				return 202, []byte(rs[0].ID)
			},
		})
	}
	first, err := accept("one")
	if err != nil || first.Replayed || first.Status != 202 || string(first.Body) != first.Results[0].ID {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := accept("one")
	if err != nil || !again.Replayed || again.Status != 202 || !bytes.Equal(again.Body, first.Body) || again.Results != nil {
		t.Fatalf("repeat: %+v %v, want the first answer replayed", again, err)
	}
	_, err = accept("two")
	var me *message.Error
	if !errors.As(err, &me) || me.Kind != message.KindConflict || !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("other request with the key: %v, want a conflict", err)
	}
	ms, err := b.store.MessageList(ctx, store.MessageListParams{Limit: 10})
	if err != nil || len(ms) != 1 || ms[0].IdempotencyKey != "k1" {
		t.Fatalf("stored %+v (%v), want one message under k1", ms, err)
	}
}

// TestAcceptGroup: a bad request fails alone; the others are stored, and every request,
// attachments included, is released.
func TestAcceptGroup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := hello("ann@example.com")
	good.Attachments = []message.Attachment{{Filename: "a.txt", Content: []byte("hello")}}
	reqs := []message.Request{good, hello("bad"), hello("bob@example.com")}
	acc, err := b.svc.Accept(context.Background(), message.AcceptParams{Requests: reqs, Now: now, Budget: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if acc.Results[0].Err != nil || acc.Results[1].Err == nil || acc.Results[2].Err != nil {
		t.Fatalf("results %+v, want the second refused", acc.Results)
	}
	for i, r := range reqs {
		if r.To != nil || r.Attachments != nil {
			t.Errorf("request %d not released: %+v", i, r)
		}
	}
	m, err := b.store.MessageGet(context.Background(), acc.Results[0].ID)
	if err != nil || len(m.Attachments) != 1 || m.Attachments[0].Size != 5 {
		t.Errorf("stored %+v (%v), want its attachment recorded", m.Attachments, err)
	}
}

// TestRaw: MIME already built (SMTP submission) is stored as given, with a Message-ID and Date
// added when missing, the envelope deciding who receives it.
func TestRaw(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := []byte("From: Shop <shop@postie.example>\r\nTo: ann@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHello\r\n")
	res := b.accept(t, message.Request{Raw: &message.Raw{MailFrom: "bounce@postie.example",
		RcptTo: []string{"ann@example.com", "audit@example.com"}, Data: data}, Tags: []string{"smtp"}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	ctx := context.Background()
	m, err := b.store.MessageGet(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Grüße" || m.EnvelopeFrom != "bounce@postie.example" || m.MessageID == "" ||
		!cmp.Equal(m.Recipients, []string{"ann@example.com", "audit@example.com"}) || !cmp.Equal(m.Tags, []string{"smtp"}) {
		t.Errorf("stored %+v", m)
	}
	raw, err := b.store.MessageRaw(ctx, res.ID)
	if err != nil || !bytes.HasPrefix(raw, []byte("Message-ID: <"+m.MessageID+">\r\nDate: ")) || !bytes.HasSuffix(raw, data) {
		t.Errorf("stored MIME (%v):\n%s", err, raw)
	}
	if got, ok := mail.MessageIDOf(m.MessageID); !ok || got != res.ID {
		t.Errorf("the generated Message-ID %q names %q, want %s", m.MessageID, got, res.ID)
	}

	res = b.accept(t, message.Request{Raw: &message.Raw{MailFrom: "x", Data: data}})
	if kind, got := problemsOf(t, res.Err); kind != message.KindInvalid || len(got) != 2 ||
		!strings.HasPrefix(got[0], "mail_from: ") || got[1] != "rcpt_to: at least one recipient is required" {
		t.Errorf("bad envelope: %v %q", kind, got)
	}
}
