package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// MaxListRecipients is the most subscribed contacts of a list one action sends to (the staff
// team, not a newsletter: campaigns send to large lists).
const MaxListRecipients = 1000

// poke wakes Serve without waiting.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Serve works due actions until ctx ends, then hands this node's action leases back. It is
// woken by the store's ActionWakeups (new events, here or on another node), and otherwise at
// the next due action or every Poll.
func (s *Service) Serve(ctx context.Context) error {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if n, err := s.cfg.Store.ActionReleaseLeases(rctx, s.cfg.Owner, s.now()); err != nil {
			s.log.Error("handing back action leases failed", "err", err)
		} else if n > 0 {
			s.log.Info("handed back action leases", "actions", n)
		}
	}()
	wakeups := s.cfg.Store.ActionWakeups()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wakeups:
		case <-s.wake:
		}
		n, err := s.Tick(ctx, s.now())
		if err != nil && ctx.Err() == nil {
			s.log.Error("event actions", "err", err)
		}
		wait := s.cfg.Poll
		switch {
		case err == nil && n >= s.cfg.Batch:
			wait = 0 // more may be due
		case err == nil:
			if next, ok, err := s.cfg.Store.ActionNextDue(ctx); err == nil && ok {
				wait = min(wait, max(0, next.Sub(s.now())))
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Tick claims the actions due at now (one batch) and works them, returning how many it
// claimed. Tests drive a clock through it.
func (s *Service) Tick(ctx context.Context, now time.Time) (int, error) {
	now = now.UTC().Truncate(time.Microsecond)
	acts, err := s.cfg.Store.ActionClaim(ctx, store.ActionClaimParams{Owner: s.cfg.Owner, Limit: s.cfg.Batch,
		Now: now, LeaseUntil: now.Add(s.cfg.Lease)})
	if err != nil || len(acts) == 0 {
		return 0, err
	}
	return len(acts), s.work(ctx, acts, now)
}

// job is one claimed action with what working it needs.
type job struct {
	act     store.Action
	trg     *store.Trigger
	events  []store.AppEvent
	contact *store.Contact // the event's contact, nil when none (or gone)
	finish  store.ActionFinishParams
	err     error // a failure that is not the action's (the store's): left to its lease
}

// recipient is one address an action sends to.
type recipient struct {
	email   string
	contact *store.Contact // nil when the address is no known contact
	listID  string
}

// work finishes claimed actions: their triggers, events and contacts read once for the batch,
// their messages composed on every core, and all finished in one transaction.
func (s *Service) work(ctx context.Context, acts []store.Action, now time.Time) error {
	jobs := make([]*job, len(acts))
	var eventIDs []string
	trgs := map[string]*store.Trigger{}
	contacts := map[string]*store.Contact{}
	for i, a := range acts {
		jobs[i] = &job{act: a, finish: store.ActionFinishParams{ID: a.ID, Owner: s.cfg.Owner}}
		ids := a.EventIDs
		if len(ids) == 0 {
			ids = []string{a.EventID}
		}
		eventIDs = append(eventIDs, ids...)
		trgs[a.TriggerID] = nil
		if a.ContactID != "" {
			contacts[a.ContactID] = nil
		}
	}
	// The triggers and contacts, read on every core (each a look-up by key).
	trgIDs, ctcIDs := slices.Collect(maps.Keys(trgs)), slices.Collect(maps.Keys(contacts))
	trgRead, ctcRead := make([]*store.Trigger, len(trgIDs)), make([]*store.Contact, len(ctcIDs))
	errs := make([]error, len(trgIDs)+len(ctcIDs))
	fanout.Each(len(errs), func(i int) {
		if i < len(trgIDs) {
			t, err := s.cfg.Store.TriggerGet(ctx, trgIDs[i])
			if err == nil {
				trgRead[i] = &t
			} else if !errors.Is(err, store.ErrNotFound) {
				errs[i] = err
			}
			return
		}
		k := i - len(trgIDs)
		c, err := s.cfg.Store.ContactGet(ctx, store.ContactRef{ID: ctcIDs[k]})
		if err == nil {
			ctcRead[k] = &c
		} else if !errors.Is(err, store.ErrNotFound) {
			errs[i] = err
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, id := range trgIDs {
		trgs[id] = trgRead[i]
	}
	for i, id := range ctcIDs {
		contacts[id] = ctcRead[i]
	}
	evs, err := s.cfg.Store.EventsByID(ctx, eventIDs)
	if err != nil {
		return err
	}
	byID := make(map[string]store.AppEvent, len(evs))
	for _, e := range evs {
		byID[e.ID] = e
	}
	for _, j := range jobs {
		j.trg = trgs[j.act.TriggerID]
		j.contact = contacts[j.act.ContactID]
		ids := j.act.EventIDs
		if len(ids) == 0 {
			ids = []string{j.act.EventID}
		}
		for _, evID := range ids {
			if e, ok := byID[evID]; ok {
				j.events = append(j.events, e)
			}
		}
		if e, ok := byID[j.act.EventID]; ok {
			j.finish.EventName = e.Name
		}
	}
	fanout.Each(len(jobs), func(i int) {
		// A panic is reported and leaves the action to its lease, like a store failure.
		if errtrack.Guard(ctx, s.cfg.Errors, "event action", func() { s.do(ctx, jobs[i], now) }) {
			jobs[i].err = errors.New("internal error while working the action (reported)")
		}
	})
	var fin []store.ActionFinishParams
	errs = errs[:0]
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, fmt.Errorf("action %s: %w", j.act.ID, j.err))
			continue
		}
		fin = append(fin, j.finish)
	}
	if len(fin) > 0 {
		res, err := s.cfg.Store.ActionFinish(ctx, now, fin)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for i, r := range res {
			if !r.Applied {
				s.log.Warn("an action's lease was lost before it finished: another node has it", "action", fin[i].ID)
			}
		}
	}
	return errors.Join(errs...)
}

// do decides one action's outcome: its messages, or why it has none.
func (s *Service) do(ctx context.Context, j *job, now time.Time) {
	f := &j.finish
	t := j.trg
	switch {
	case t == nil:
		f.Status, f.Reason = store.ActionSkipped, "the trigger was deleted"
		return
	case !t.Enabled:
		f.Status, f.Reason = store.ActionSkipped, "the trigger is disabled"
		return
	case len(j.events) == 0:
		f.Status, f.Reason = store.ActionSkipped, "its events are gone (retention)"
		return
	}
	first := j.events[0]
	data := decode(first.Data)
	rcpts, reason, err := s.recipients(ctx, j, data)
	if err != nil {
		j.err = err
		return
	}
	if t.HonourUnsubscribes && len(rcpts) > 0 {
		var why string
		if rcpts, why, err = s.unsubscribed(ctx, rcpts, t.To.List, now); err != nil {
			j.err = err
			return
		}
		if reason == "" {
			reason = why
		}
	}
	if len(rcpts) == 0 {
		f.Status, f.Reason = store.ActionSkipped, cmp.Or(reason, "no recipient")
		return
	}
	event := map[string]any{"id": first.ID, "name": first.Name, "occurred_at": first.OccurredAt.UTC().Format(time.RFC3339Nano)}
	var events []any
	if t.Digest != nil {
		events = make([]any, len(j.events))
		for i, e := range j.events {
			events[i] = decode(e.Data)
		}
	}
	var failed []string
	for _, r := range rcpts {
		req := message.Request{From: t.From, To: []string{r.email}, Template: t.Template, Data: first.Data,
			Tags: t.Tags, Stream: t.Stream, Event: event, Events: events}
		if t.Stream == store.StreamBroadcast {
			req.ListID = r.listID
		}
		if r.contact != nil {
			req.Contact = audience.ContactData(*r.contact)
			if templates.ValidLocale(r.contact.Locale) {
				req.Locale = r.contact.Locale
			}
		}
		m, err := s.cfg.Messages.Compose(ctx, &req, message.ComposeParams{Now: now})
		var me *message.Error
		switch {
		case errors.As(err, &me) && (me.Kind == message.KindInvalid || me.Kind == message.KindTooLarge):
			failed = append(failed, r.email+": "+err.Error())
		case err != nil:
			j.err = err
			return
		default:
			m.Message.EventID, m.Message.TriggerID = first.ID, t.ID
			f.Messages = append(f.Messages, m.NewMessage)
		}
	}
	if len(f.Messages) == 0 {
		f.Status, f.Reason = store.ActionFailed, failed[0]
		if len(failed) > 1 {
			f.Reason += fmt.Sprintf(" (and %d more)", len(failed)-1)
		}
		return
	}
	f.Status = store.ActionDone
	if len(failed) > 0 {
		f.Reason = fmt.Sprintf("%d of %d recipients failed: %s", len(failed), len(rcpts), failed[0])
	}
	if t.Cap > 0 && j.act.CapKey != "" {
		f.CapKey, f.CapPeriod = j.act.CapKey, t.Cap
	}
}

// recipients resolves who an action sends to, or says why nobody.
func (s *Service) recipients(ctx context.Context, j *job, data any) ([]recipient, string, error) {
	to := j.trg.To
	switch {
	case to.Contact:
		switch {
		case j.act.ContactID == "":
			return nil, "the event names no contact", nil
		case j.contact == nil:
			return nil, "the event's contact was deleted", nil
		}
		return []recipient{{email: j.contact.Email, contact: j.contact}}, "", nil
	case len(to.Addresses) > 0:
		out := make([]recipient, len(to.Addresses))
		for i, a := range to.Addresses {
			out[i] = recipient{email: a}
		}
		return out, "", nil
	case to.Data != "":
		keys, _ := ParsePath(to.Data)
		v, ok := Lookup(data, keys)
		var addrs []string
		switch x := v.(type) {
		case string:
			addrs = []string{x}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					addrs = append(addrs, s)
				}
			}
		}
		if !ok || len(addrs) == 0 {
			return nil, "no address at data." + to.Data, nil
		}
		if len(addrs) > MaxAddresses {
			addrs = addrs[:MaxAddresses]
		}
		out := make([]recipient, len(addrs))
		for i, a := range addrs {
			out[i] = recipient{email: strings.TrimSpace(a)}
			if j.contact != nil && strings.EqualFold(mailKey(a), j.contact.EmailKey) {
				out[i].contact = j.contact
			}
		}
		return out, "", nil
	case to.List != "":
		var out []recipient
		cursor := ""
		for len(out) < MaxListRecipients {
			page, next, err := s.cfg.Store.ContactList(ctx, store.ContactListParams{ListID: to.List,
				SubscriptionStatus: store.SubscriptionSubscribed, Cursor: cursor, Limit: min(1000, MaxListRecipients-len(out))})
			if errors.Is(err, store.ErrNotFound) {
				return nil, "the list " + to.List + " is gone", nil
			}
			if err != nil {
				return nil, "", err
			}
			for i := range page {
				out = append(out, recipient{email: page[i].Email, contact: &page[i], listID: to.List})
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(out) == 0 {
			return nil, "nobody is subscribed to " + to.List, nil
		}
		return out, "", nil
	}
	return nil, "the trigger names no recipient", nil
}

// unsubscribed leaves out the recipients suppressed in the global or broadcast scope (or, for
// a list's, the list's), and says why when it leaves out all.
func (s *Service) unsubscribed(ctx context.Context, rcpts []recipient, listID string, now time.Time) ([]recipient, string, error) {
	emails := make([]string, len(rcpts))
	for i, r := range rcpts {
		emails[i] = mailKey(r.email)
	}
	scopes := []string{store.ScopeGlobal, store.ScopeBroadcast}
	if listID != "" {
		scopes = append(scopes, listID)
	}
	sups, err := s.cfg.Store.SuppressionMatch(ctx, emails, scopes, now)
	if err != nil {
		return nil, "", err
	}
	out := rcpts[:0:0]
	why := ""
	for i, r := range rcpts {
		if ss := sups[emails[i]]; len(ss) > 0 {
			why = fmt.Sprintf("%s is suppressed (%s, %s)", r.email, ss[0].Reason, ss[0].Scope)
			continue
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		why = ""
	}
	return out, why, nil
}

// mailKey is the suppression list's key of an address: its email key when it parses, else
// the address lowercased.
func mailKey(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Email
	}
	if k, err := audience.EmailKey(addr); err == nil {
		return k
	}
	return strings.ToLower(strings.TrimSpace(addr))
}

// decode decodes an event's data for matching and templates (numbers as json.Number, so they
// keep their exact decimals).
func decode(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || v == nil {
		return map[string]any{}
	}
	return v
}
