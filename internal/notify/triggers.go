package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Limits of a trigger.
const (
	MaxTriggerName = 200
	MaxAddresses   = 50                  // fixed addresses of one trigger
	MaxMatch       = 10                  // data paths of a cancel_if
	MaxDelay       = 30 * 24 * time.Hour // a delay, a digest's window
	MaxCap         = 365 * 24 * time.Hour
	maxTags        = 20
)

// eventNameRE is what an event name is: 1 to 128 of a-z, 0-9, '.', '_', '-'.
var eventNameRE = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)

// ValidEventName reports whether name is an event name.
func ValidEventName(name string) bool { return eventNameRE.MatchString(name) }

const eventNameRule = "1 to 128 characters of a-z, 0-9, '.', '_' and '-' (order.paid)"

// TriggerInput is a trigger as the API gives it: on create every field that is set; on update
// (PATCH) only those given change. Durations are strings such as "90s", "1h", "1d12h".
type TriggerInput struct {
	Name      *string
	Event     *string
	Condition json.RawMessage // nil: unchanged (update) or none; JSON null removes it
	Template  *string
	To        *store.TriggerTo
	Stream    *string
	Delay     *string
	// CancelIf and Digest: nil unchanged (none on create); Clear… removes them.
	CancelIf           *store.TriggerCancel
	ClearCancelIf      bool
	Digest             *DigestInput
	ClearDigest        bool
	Cap                *string
	HonourUnsubscribes *bool
	From               *string
	Tags               *[]string
	Enabled            *bool
}

// DigestInput is a digest as the API gives it.
type DigestInput struct {
	Key    string
	Window string
}

// ParseDuration parses a trigger's duration: numbers each followed by a unit w, d, h, m or s
// ("90s", "1h", "1d12h"), or "0" (none).
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := audience.ParseAgo(s)
	if err != nil && strings.Trim(s, "0wdhms") == "" {
		// "0s", "0d0h": well formed, and zero.
		if _, ferr := audience.ParseAgo(strings.ReplaceAll(s, "0", "1")); ferr == nil {
			return 0, nil
		}
	}
	return d, err
}

// FormatDuration writes d as ParseDuration reads it: "1d12h", "90s" as "1m30s", "0s" for none.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		d time.Duration
		c byte
	}{{24 * time.Hour, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}, {time.Second, 's'}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%c", n, u.c)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// CreateTrigger validates in and stores a new trigger.
func (s *Service) CreateTrigger(ctx context.Context, in TriggerInput) (store.Trigger, error) {
	now := s.now()
	t := store.Trigger{ID: id.New(id.Trigger), Enabled: true, CreatedAt: now, UpdatedAt: now}
	honour := in.HonourUnsubscribes
	var pr problems
	s.apply(&pr, &t, in)
	if honour == nil {
		t.HonourUnsubscribes = t.Stream == store.StreamBroadcast
	}
	if err := s.check(ctx, &pr, &t, in); err != nil {
		return store.Trigger{}, err
	}
	if err := pr.err(); err != nil {
		return store.Trigger{}, err
	}
	if err := s.cfg.Store.TriggerCreate(ctx, t); err != nil {
		return store.Trigger{}, err
	}
	s.triggers.invalidate()
	return t, nil
}

// UpdateTrigger changes the fields of a trigger in gives (store.ErrNotFound when none).
func (s *Service) UpdateTrigger(ctx context.Context, trgID string, in TriggerInput) (store.Trigger, error) {
	t, err := s.cfg.Store.TriggerGet(ctx, trgID)
	if err != nil {
		return store.Trigger{}, err
	}
	var pr problems
	s.apply(&pr, &t, in)
	if err := s.check(ctx, &pr, &t, in); err != nil {
		return store.Trigger{}, err
	}
	if err := pr.err(); err != nil {
		return store.Trigger{}, err
	}
	t.UpdatedAt = s.now()
	if err := s.cfg.Store.TriggerUpdate(ctx, t); err != nil {
		return store.Trigger{}, err
	}
	s.triggers.invalidate()
	return t, nil
}

// Trigger returns one trigger (store.ErrNotFound when none).
func (s *Service) Trigger(ctx context.Context, trgID string) (store.Trigger, error) {
	return s.cfg.Store.TriggerGet(ctx, trgID)
}

// Triggers returns one page of triggers by id.
func (s *Service) Triggers(ctx context.Context, p store.TriggerListParams) ([]store.Trigger, string, error) {
	return s.cfg.Store.TriggerList(ctx, p)
}

// DeleteTrigger deletes a trigger; its pending actions are cancelled.
func (s *Service) DeleteTrigger(ctx context.Context, trgID string) error {
	if err := s.cfg.Store.TriggerDelete(ctx, trgID, s.now()); err != nil {
		return err
	}
	s.triggers.invalidate()
	return nil
}

// apply copies the fields in gives onto t, adding the problems of those that do not parse.
func (s *Service) apply(pr *problems, t *store.Trigger, in TriggerInput) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&t.Name, in.Name)
	set(&t.Event, in.Event)
	set(&t.Template, in.Template)
	set(&t.Stream, in.Stream)
	set(&t.From, in.From)
	if in.Condition != nil {
		t.Condition = slices.Clone(bytes.TrimSpace(in.Condition))
		if string(t.Condition) == "null" {
			t.Condition = nil
		}
	}
	if in.To != nil {
		t.To = *in.To
	}
	dur := func(field string, dst *time.Duration, v *string) {
		if v == nil {
			return
		}
		d, err := ParseDuration(strings.TrimSpace(*v))
		if err != nil {
			pr.add(field, err.Error(), *v)
			return
		}
		*dst = d
	}
	dur("delay", &t.Delay, in.Delay)
	dur("cap", &t.Cap, in.Cap)
	switch {
	case in.ClearCancelIf:
		t.CancelIf = nil
	case in.CancelIf != nil:
		c := *in.CancelIf
		t.CancelIf = &c
	}
	switch {
	case in.ClearDigest:
		t.Digest = nil
	case in.Digest != nil:
		d := &store.TriggerDigest{Key: strings.TrimSpace(in.Digest.Key)}
		w := strings.TrimSpace(in.Digest.Window)
		dur("digest.window", &d.Window, &w)
		t.Digest = d
	}
	if in.HonourUnsubscribes != nil {
		t.HonourUnsubscribes = *in.HonourUnsubscribes
	}
	if in.Tags != nil {
		t.Tags = slices.Clone(*in.Tags)
	}
	if in.Enabled != nil {
		t.Enabled = *in.Enabled
	}
	if t.Stream == "" {
		t.Stream = store.StreamTransactional
	}
}

// check validates t: its own fields, and what it names (template, list) against the store.
// Only store failures are returned; the problems are added to pr.
func (s *Service) check(ctx context.Context, pr *problems, t *store.Trigger, in TriggerInput) error {
	if t.Name == "" || len(t.Name) > MaxTriggerName || !utf8.ValidString(t.Name) || strings.ContainsFunc(t.Name, isControl) {
		pr.add("name", fmt.Sprintf("required: 1 to %d characters without control characters", MaxTriggerName), t.Name)
	}
	if !ValidEventName(t.Event) {
		pr.add("event", "required: the event name it matches, "+eventNameRule, t.Event)
	}
	if _, err := ParseCondition(t.Condition); err != nil {
		var fe *audience.FilterError
		if errors.As(err, &fe) {
			pr.add(fe.Path, fe.Message, fe.Value)
		}
	}
	if !slices.Contains(store.Streams, t.Stream) {
		pr.add("stream", "transactional or broadcast", t.Stream)
	}
	if t.From != "" {
		if _, err := mail.ParseAddress(t.From); err != nil {
			pr.add("from", err.Error(), t.From)
		}
	}
	if len(t.Tags) > maxTags {
		pr.add("tags", fmt.Sprintf("too many tags: at most %d", maxTags), len(t.Tags))
	} else {
		*pr = append(*pr, message.CheckTags(t.Tags)...)
	}
	if t.Delay < 0 || t.Delay > MaxDelay {
		pr.add("delay", "at most 30 days", FormatDuration(t.Delay))
	}
	if t.Cap < 0 || t.Cap > MaxCap {
		pr.add("cap", "at most 365 days", FormatDuration(t.Cap))
	}
	if c := t.CancelIf; c != nil {
		if !ValidEventName(c.Event) {
			pr.add("cancel_if.event", "required: the event name that cancels, "+eventNameRule, c.Event)
		}
		switch {
		case len(c.Match) == 0:
			pr.add("cancel_if.match", "required: the data paths whose values the cancelling event must share (cart_id)", nil)
		case len(c.Match) > MaxMatch:
			pr.add("cancel_if.match", fmt.Sprintf("at most %d paths", MaxMatch), len(c.Match))
		}
		for i, p := range c.Match {
			if _, msg := ParsePath(p); msg != "" {
				pr.add(fmt.Sprintf("cancel_if.match[%d]", i), msg, p)
			}
		}
		if t.Delay == 0 {
			pr.add("cancel_if", "needs a delay: the cancelling event must come within it", nil)
		}
	}
	if d := t.Digest; d != nil {
		if d.Key != "" {
			if _, msg := ParsePath(d.Key); msg != "" {
				pr.add("digest.key", msg, d.Key)
			}
		}
		if d.Window <= 0 || d.Window > MaxDelay {
			pr.add("digest.window", "required: more than 0 and at most 30 days", FormatDuration(d.Window))
		}
		if t.Delay > 0 {
			pr.add("delay", "a digest waits for its window: give no delay", FormatDuration(t.Delay))
		}
		if t.CancelIf != nil {
			pr.add("cancel_if", "not with a digest", nil)
		}
	}
	if err := s.checkTo(ctx, pr, t.To); err != nil {
		return err
	}
	if t.Template == "" || !templates.ValidName(t.Template) {
		pr.add("template", "required: the name of a stored template", t.Template)
	} else if s.cfg.Templates != nil {
		_, err := s.cfg.Templates.Get(ctx, t.Template, 0)
		if errors.Is(err, store.ErrNotFound) {
			pr.add("template", "no such template", t.Template)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// checkTo checks who a trigger sends to: exactly one kind, each well formed, a list that
// exists.
func (s *Service) checkTo(ctx context.Context, pr *problems, to store.TriggerTo) error {
	n := 0
	for _, set := range []bool{to.Contact, to.Addresses != nil, to.List != "", to.Data != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		pr.add("to", `exactly one of {"contact": true}, {"addresses": […]}, {"list": "lst_…"}, {"data": "seller.email"}`, nil)
		return nil
	}
	switch {
	case to.Addresses != nil:
		if len(to.Addresses) == 0 || len(to.Addresses) > MaxAddresses {
			pr.add("to.addresses", fmt.Sprintf("1 to %d addresses", MaxAddresses), len(to.Addresses))
		}
		for i, a := range to.Addresses {
			if _, err := mail.ParseAddress(a); err != nil {
				pr.add(fmt.Sprintf("to.addresses[%d]", i), err.Error(), a)
			}
		}
	case to.Data != "":
		if _, msg := ParsePath(to.Data); msg != "" {
			pr.add("to.data", msg, to.Data)
		}
	case to.List != "":
		if !id.Valid(id.List, to.List) {
			pr.add("to.list", "not a list id (lst_…)", to.List)
			return nil
		}
		_, err := s.cfg.Store.ListGet(ctx, to.List)
		if errors.Is(err, store.ErrNotFound) {
			pr.add("to.list", "no such list", to.List)
		} else if err != nil {
			return err
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
