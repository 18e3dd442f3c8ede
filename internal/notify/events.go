package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// Limits of an event.
const (
	MaxEventData = 256 << 10 // the data object, as JSON
	MaxClientID  = 255
	MaxBatch     = 500
	// maxFuture is how far ahead of the server's clock occurred_at may be (clocks differ).
	maxFuture = 5 * time.Minute
)

// ContactInput is the contact an event names: by email or external_id (one at least), with
// fields to upsert.
type ContactInput struct {
	Email      string
	ExternalID string
	Name       *string
	Locale     *string
	Timezone   *string
	Attributes json.RawMessage
}

// EventInput is one event as a client gives it.
type EventInput struct {
	ID         string // the client's id: the event is stored once per API key ("" for none)
	Name       string
	Contact    *ContactInput
	Data       json.RawMessage // a JSON object; nil is {}
	OccurredAt *time.Time      // nil: now
}

// Accepted is the outcome of one event.
type Accepted struct {
	ID        string
	ContactID string
	Duplicate bool // the client id was used before: the answer is the earlier event's
	Actions   []string
	// Err is this event's failure: a *message.Error (KindInvalid with its problems, fields
	// relative to the event; KindConflict when its email and external_id name two contacts).
	Err error
}

// Accept validates events, matches them against the enabled triggers and stores the valid ones
// with their actions in one transaction; it returns one outcome per event, in order. The error
// is for the group as a whole (the store failing): then nothing was stored.
func (s *Service) Accept(ctx context.Context, events []EventInput, apiKeyID string) ([]Accepted, error) {
	now := s.now()
	set, err := s.enabled(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]Accepted, len(events))
	ins := make([]store.EventIn, len(events))
	fanout.Each(len(events), func(i int) {
		data, err := checkEvent(&ins[i], &events[i], apiKeyID, now, s.cfg.Retention)
		if err != nil {
			out[i].Err = err
			return
		}
		set.match(&ins[i], data, now)
	})
	valid := make([]store.EventIn, 0, len(events))
	at := make([]int, 0, len(events))
	for i := range events {
		if out[i].Err == nil {
			valid = append(valid, ins[i])
			at = append(at, i)
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	res, err := s.cfg.Store.EventsAccept(ctx, store.EventsAcceptParams{Events: valid, Now: now})
	if err != nil {
		return nil, err
	}
	for j, r := range res {
		i := at[j]
		out[i] = Accepted{ID: r.ID, ContactID: r.ContactID, Duplicate: r.Duplicate, Actions: r.Actions}
		if r.Err != nil {
			out[i].Err = eventStoreError(r.Err, valid[j].Contact)
		}
	}
	s.poke()
	return out, nil
}

// eventStoreError words the store's refusal of one event.
func eventStoreError(err error, c *store.ContactUpsert) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return &message.Error{Kind: message.KindConflict, Err: err, Problems: []message.Problem{{Field: "contact",
			Message: "contact.email and contact.external_id name two different contacts"}}}
	case errors.Is(err, store.ErrNotFound) && c != nil && c.EmailKey == "":
		return &message.Error{Kind: message.KindInvalid, Err: err, Problems: []message.Problem{{Field: "contact.external_id",
			Message: "no contact has this external_id: give contact.email too to create one", Value: c.ExternalID}}}
	}
	return err
}

// checkEvent validates ev and fills in as the store takes it, returning its data decoded (for
// matching). Its error is a *message.Error listing every problem.
func checkEvent(in *store.EventIn, ev *EventInput, apiKeyID string, now time.Time, retention time.Duration) (any, error) {
	var pr problems
	if !ValidEventName(ev.Name) {
		pr.add("name", "required: "+eventNameRule, ev.Name)
	}
	if len(ev.ID) > MaxClientID || !utf8.ValidString(ev.ID) || strings.ContainsFunc(ev.ID, isControl) {
		pr.add("id", fmt.Sprintf("at most %d characters without control characters", MaxClientID), ev.ID)
	}
	raw := bytes.TrimSpace(ev.Data)
	var data any = map[string]any{}
	switch {
	case len(raw) == 0 || string(raw) == "null":
		raw = []byte("{}")
	case len(raw) > MaxEventData:
		pr.add("data", fmt.Sprintf("larger than %d KB", MaxEventData>>10), len(raw))
	case raw[0] != '{':
		pr.add("data", "must be a JSON object", nil)
	case audience.HasNUL(raw):
		pr.add("data", "must not contain U+0000 (NUL)", nil)
	default:
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil || dec.More() {
			pr.add("data", "must be a JSON object", nil)
		}
	}
	occurred := now
	if ev.OccurredAt != nil {
		occurred = ev.OccurredAt.UTC().Truncate(time.Microsecond)
		switch {
		case occurred.After(now.Add(maxFuture)):
			pr.add("occurred_at", "is in the future", ev.OccurredAt.Format(time.RFC3339))
		case retention > 0 && !occurred.After(now.Add(-retention)):
			pr.add("occurred_at", "is older than events are kept (POSTIE_EVENT_RETENTION)", ev.OccurredAt.Format(time.RFC3339))
		}
	}
	var cu *store.ContactUpsert
	if c := ev.Contact; c != nil {
		cu = &store.ContactUpsert{Email: c.Email, ExternalID: c.ExternalID, Name: c.Name, Locale: c.Locale,
			Timezone: c.Timezone, Attributes: c.Attributes, LastActiveAt: occurred,
			Consent: store.Consent{Source: "event"}}
		if c.Email == "" && c.ExternalID == "" {
			pr.add("contact", "give email or external_id (or both)", nil)
		} else if err := audience.CheckContact(cu, false); err != nil {
			var ie *audience.InvalidError
			if errors.As(err, &ie) {
				for _, p := range ie.Problems {
					pr.add("contact."+p.Field, p.Message, p.Value)
				}
			}
		}
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	*in = store.EventIn{
		Event: store.AppEvent{ID: id.New(id.Event), Name: ev.Name, ClientID: ev.ID, APIKeyID: apiKeyID,
			Data: raw, OccurredAt: occurred, CreatedAt: now},
		Contact: cu,
	}
	if cu != nil {
		in.Event.Email = cu.Email
	}
	return data, nil
}

// Event returns one event with its actions (store.ErrNotFound when none).
func (s *Service) Event(ctx context.Context, evtID string) (store.AppEvent, error) {
	return s.cfg.Store.EventGet(ctx, evtID)
}

// Events returns one page of events, newest first.
func (s *Service) Events(ctx context.Context, p store.EventListParams) ([]store.AppEvent, string, error) {
	if p.Name != "" && !ValidEventName(p.Name) {
		return nil, "", &message.Error{Kind: message.KindInvalid, Problems: []message.Problem{{Field: "name", Message: eventNameRule, Value: p.Name}}}
	}
	return s.cfg.Store.EventList(ctx, p)
}
