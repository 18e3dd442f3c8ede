package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/store"
)

// The events routes: thin handlers over package notify (docs/api.md, Events).

// EventContactBody names the contact of an event, with fields to upsert.
type EventContactBody struct {
	Email      string          `json:"email,omitempty" doc:"The contact's address: found by it (case-insensitive), or created. Give email, external_id or both." example:"ann@example.com"`
	ExternalID string          `json:"external_id,omitempty" maxLength:"256" doc:"Your own id of the person: found by it first; alone, it must name an existing contact" example:"user-42"`
	Name       *string         `json:"name,omitempty" maxLength:"256" doc:"Omit to keep the stored name"`
	Locale     *string         `json:"locale,omitempty" doc:"BCP 47 language tag" example:"pt-BR"`
	Timezone   *string         `json:"timezone,omitempty" doc:"IANA timezone name" example:"Europe/Paris"`
	Attributes json.RawMessage `json:"attributes,omitempty" doc:"A JSON object (at most 64 KB) merged key by key into the contact's attributes; a null value removes its key"`
}

// EventBody is one event: the body of POST /v1/events and an item of POST /v1/events/batch.
type EventBody struct {
	ID         string            `json:"id,omitempty" maxLength:"255" doc:"Your id of the event: an event is stored once per API key and id (while events are kept, POSTIE_EVENT_RETENTION); a repeat answers the first. The Idempotency-Key header does the same for POST /v1/events." example:"order-A-1-paid"`
	Name       string            `json:"name" doc:"What happened: 1 to 128 characters of a-z, 0-9, '.', '_' and '-'" example:"order.paid"`
	Contact    *EventContactBody `json:"contact,omitempty" doc:"Who it happened to: the contact is upserted, and its last_active_at moved forward to occurred_at"`
	Data       json.RawMessage   `json:"data,omitempty" doc:"A JSON object of at most 256 KB: what triggers' conditions look at and templates see as .data"`
	OccurredAt *time.Time        `json:"occurred_at,omitempty" doc:"When it happened (RFC 3339); default now. Delays count from it." example:"2026-12-06T12:00:00Z"`
}

func (b *EventBody) input() notify.EventInput {
	in := notify.EventInput{ID: b.ID, Name: b.Name, Data: b.Data, OccurredAt: b.OccurredAt}
	if c := b.Contact; c != nil {
		in.Contact = &notify.ContactInput{Email: c.Email, ExternalID: c.ExternalID, Name: c.Name, Locale: c.Locale,
			Timezone: c.Timezone, Attributes: c.Attributes}
	}
	return in
}

// EventAnswer is the answer to one accepted event.
type EventAnswer struct {
	ID        string   `json:"id" doc:"The event (evt_…); for a duplicate, the first one's" example:"evt_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Duplicate bool     `json:"duplicate" doc:"The id (or Idempotency-Key) was used before with this API key: nothing was stored, and the answer is the first event's"`
	ContactID string   `json:"contact_id,omitempty" doc:"The contact it names (ctc_…), absent when none"`
	Actions   []string `json:"actions" doc:"The actions its triggers created or joined (act_…)"`
}

// EventBatchBody is the body of POST /v1/events/batch.
type EventBatchBody struct {
	Events []EventBody `json:"events" minItems:"1" maxItems:"500" doc:"1 to 500 events; each is validated on its own"`
}

// EventBatchResult is one event's result: its answer, or its error.
type EventBatchResult struct {
	ID        string           `json:"id,omitempty"`
	Duplicate bool             `json:"duplicate,omitempty"`
	ContactID string           `json:"contact_id,omitempty"`
	Actions   []string         `json:"actions,omitempty"`
	Error     *huma.ErrorModel `json:"error,omitempty" doc:"Why this event was refused (RFC 9457 problem); nothing was stored for it"`
}

// EventBatchAnswer is the answer to a batch: one result per event, in order.
type EventBatchAnswer struct {
	Results []EventBatchResult `json:"results"`
}

// ActionResource is one action an event created or joined.
type ActionResource struct {
	ID         string    `json:"id" example:"act_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	TriggerID  string    `json:"trigger_id" example:"trg_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Status     string    `json:"status" enum:"pending,done,cancelled,capped,failed,skipped" doc:"pending until due and worked; done: its messages were created; cancelled: a cancel_if event came in time, or the trigger was deleted; capped: the frequency cap held it back; failed: no message could be composed; skipped: no recipient was left"`
	DueAt      time.Time `json:"due_at"`
	MessageIDs []string  `json:"message_ids" doc:"The messages it created (msg_…)"`
	Reason     string    `json:"reason" doc:"Why it was cancelled, capped, failed or skipped; \"\" otherwise"`
}

// AppEventResource is an application event as the API shows it.
type AppEventResource struct {
	ID         string           `json:"id" example:"evt_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Name       string           `json:"name" example:"order.paid"`
	ClientID   string           `json:"client_id" doc:"The id (or Idempotency-Key) it was sent with; \"\" for none"`
	ContactID  string           `json:"contact_id" doc:"The contact it names; \"\" for none"`
	Email      string           `json:"email" doc:"The contact's address as the event gave it; \"\" for none"`
	Data       json.RawMessage  `json:"data"`
	OccurredAt time.Time        `json:"occurred_at"`
	CreatedAt  time.Time        `json:"created_at"`
	Actions    []ActionResource `json:"actions" doc:"What it triggered"`
}

func toAppEventResource(e store.AppEvent) AppEventResource {
	r := AppEventResource{ID: e.ID, Name: e.Name, ClientID: e.ClientID, ContactID: e.ContactID, Email: e.Email, Data: e.Data,
		OccurredAt: e.OccurredAt, CreatedAt: e.CreatedAt, Actions: make([]ActionResource, len(e.Actions))}
	if len(r.Data) == 0 {
		r.Data = json.RawMessage("{}")
	}
	for i, a := range e.Actions {
		r.Actions[i] = ActionResource{ID: a.ID, TriggerID: a.TriggerID, Status: a.Status, DueAt: a.DueAt,
			MessageIDs: nonNil(a.MessageIDs), Reason: a.Reason}
	}
	return r
}

type eventInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"The event's id when the body has none (the same: the event is stored once per API key and id)"`
	RawBody        []byte `contentType:"application/json"`
}

type eventBatchInput struct {
	RawBody []byte `contentType:"application/json"`
}

type eventOutput struct {
	Status int
	Body   EventAnswer
}

type eventBatchOutput struct {
	Body EventBatchAnswer
}

type eventListInput struct {
	Name      string    `query:"name" doc:"Only events of this name"`
	ContactID string    `query:"contact_id" doc:"Only events of this contact (ctc_…)"`
	After     time.Time `query:"after" doc:"Only events that occurred at or after this time"`
	Before    time.Time `query:"before" doc:"Only events that occurred before this time"`
	Cursor    string    `query:"cursor" doc:"next_cursor of the previous page"`
	Limit     int       `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

// Resolve applies zero times (see applyZero).
func (in *eventListInput) Resolve(ctx huma.Context) []error {
	in.After = applyZero(in.After, ctx.Query("after") != "")
	in.Before = applyZero(in.Before, ctx.Query("before") != "")
	if in.ContactID != "" && !id.Valid(id.Contact, in.ContactID) {
		return []error{&huma.ErrorDetail{Location: "query.contact_id", Message: "not a contact id (ctc_…)", Value: in.ContactID}}
	}
	return nil
}

type eventIDInput struct {
	ID string `path:"id" doc:"The event (evt_…)"`
}

type eventGetOutput struct {
	Body AppEventResource
}

// maxEventBatchBytes bounds the body of POST /v1/events/batch: 500 events of a few KB each,
// with room to spare (one event's data may be 256 KB).
const maxEventBatchBytes = 32 << 20

func (s *Server) registerEvents() {
	tags := []string{"Events"}
	huma.Register(s.api, huma.Operation{
		OperationID: "send-event", Method: http.MethodPost, Path: "/v1/events", Tags: tags,
		Summary:       "Send an application event",
		Description:   "Stores the event durably (its contact upserted, the actions of the triggers it matches created) before answering 202; a repeat of its id (or Idempotency-Key) with the same API key answers 200 with the first event, storing nothing.",
		DefaultStatus: http.StatusAccepted, Errors: []int{400, 401, 409, 422}, SkipValidateBody: true,
	}, s.eventSend)
	huma.Register(s.api, huma.Operation{
		OperationID: "send-events", Method: http.MethodPost, Path: "/v1/events/batch", Tags: tags,
		Summary:     "Send up to 500 events",
		Description: "Each event is validated on its own; the valid ones are stored in one transaction and the refused ones answered with their error, in order.",
		Errors:      []int{400, 401, 413, 422}, SkipValidateBody: true, MaxBodyBytes: maxEventBatchBytes,
	}, s.eventBatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-events", Method: http.MethodGet, Path: "/v1/events", Tags: tags,
		Summary: "List events with what each triggered, newest first", Errors: []int{401, 422},
	}, s.eventList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-event", Method: http.MethodGet, Path: "/v1/events/{id}", Tags: tags,
		Summary: "Get an event with what it triggered", Errors: []int{401, 404},
	}, s.eventGet)
}

// documentEvents sets the request and response schemas of the event routes that read their
// bodies raw.
func (s *Server) documentEvents() {
	s.documentBodies("/v1/events", reflect.TypeFor[EventBody](), "202", reflect.TypeFor[EventAnswer]())
	s.documentBodies("/v1/events/batch", reflect.TypeFor[EventBatchBody](), "200", reflect.TypeFor[EventBatchAnswer]())
}

// eventShape is the shape of an event object.
var eventShape = shapeOf(reflect.TypeFor[EventBody]())

// notifyError maps an error of package notify: its *message.Error through messageError (fields
// at prefix), others through storeError about what.
func (s *Server) notifyError(err error, prefix, what string) error {
	if me := (*message.Error)(nil); errors.As(err, &me) {
		if len(me.Problems) > 0 {
			return problemError(prefix, me.Kind, me.Problems)
		}
		return s.storeError(me.Err, what)
	}
	return s.storeError(err, what)
}

func (s *Server) eventSend(ctx context.Context, in *eventInput) (*eventOutput, error) {
	b, err := decodeObject[EventBody](in.RawBody, "body", eventShape, "an event object", "occurred_at")
	if err != nil {
		return nil, err
	}
	if k := in.IdempotencyKey; k != "" {
		switch {
		case b.ID == "":
			b.ID = k
		case b.ID != k:
			return nil, huma.Error422UnprocessableEntity("body.id: differs from the Idempotency-Key header",
				&huma.ErrorDetail{Location: "body.id", Message: "differs from the Idempotency-Key header: give one of them, or the same", Value: b.ID})
		}
	}
	res, err := s.notify.Accept(ctx, []notify.EventInput{b.input()}, apiKeyFrom(ctx).ID)
	if err != nil {
		return nil, s.notifyError(err, "body", "event")
	}
	r := res[0]
	if r.Err != nil {
		return nil, s.notifyError(r.Err, "body", "event")
	}
	out := &eventOutput{Status: http.StatusAccepted, Body: EventAnswer{ID: r.ID, Duplicate: r.Duplicate, ContactID: r.ContactID, Actions: nonNil(r.Actions)}}
	if r.Duplicate {
		out.Status = http.StatusOK
	}
	return out, nil
}

func (s *Server) eventBatch(ctx context.Context, in *eventBatchInput) (*eventBatchOutput, error) {
	items, err := decodeItems(in.RawBody, "events", "event", notify.MaxBatch)
	if err != nil {
		return nil, err
	}
	results := make([]EventBatchResult, len(items))
	evs := make([]notify.EventInput, 0, len(items))
	at := make([]int, 0, len(items))
	for i, raw := range items {
		b, err := decodeObject[EventBody](raw, fmt.Sprintf("body.events[%d]", i), eventShape, "an event object", "occurred_at")
		if err != nil {
			results[i].Error = asErrorModel(err)
			continue
		}
		evs = append(evs, b.input())
		at = append(at, i)
	}
	if len(evs) > 0 {
		res, err := s.notify.Accept(ctx, evs, apiKeyFrom(ctx).ID)
		if err != nil {
			return nil, s.notifyError(err, "body", "events")
		}
		for j, r := range res {
			i := at[j]
			if r.Err != nil {
				results[i].Error = asErrorModel(s.notifyError(r.Err, fmt.Sprintf("body.events[%d]", i), "event"))
				continue
			}
			results[i] = EventBatchResult{ID: r.ID, Duplicate: r.Duplicate, ContactID: r.ContactID, Actions: nonNil(r.Actions)}
		}
	}
	return &eventBatchOutput{Body: EventBatchAnswer{Results: results}}, nil
}

func (s *Server) eventList(ctx context.Context, in *eventListInput) (*pageOutput[AppEventResource], error) {
	page, next, err := s.notify.Events(ctx, store.EventListParams{Name: in.Name, ContactID: in.ContactID,
		After: in.After, Before: in.Before, Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.notifyError(err, "query", "events")
	}
	out := &pageOutput[AppEventResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]AppEventResource, len(page))
	for i, e := range page {
		out.Body.Data[i] = toAppEventResource(e)
	}
	return out, nil
}

func (s *Server) eventGet(ctx context.Context, in *eventIDInput) (*eventGetOutput, error) {
	if !id.Valid(id.Event, in.ID) {
		return nil, huma.Error404NotFound("event " + in.ID + " not found")
	}
	e, err := s.notify.Event(ctx, in.ID)
	if err != nil {
		return nil, s.notifyError(err, "path.id", "event "+in.ID)
	}
	return &eventGetOutput{Body: toAppEventResource(e)}, nil
}
