package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/store"
)

// The triggers routes: thin handlers over package notify (docs/api.md, Triggers).

// TriggerTo says who a trigger's mail goes to: exactly one member.
type TriggerTo struct {
	Contact   bool     `json:"contact,omitempty" doc:"true: the event's contact"`
	Addresses []string `json:"addresses,omitempty" maxItems:"50" doc:"Fixed addresses (1 to 50), each its own message" example:"[\"ops@shop.example\"]"`
	List      string   `json:"list,omitempty" doc:"A list (lst_…): each of its subscribed contacts (at most 1,000)"`
	Data      string   `json:"data,omitempty" doc:"A path in the event's data holding an address, or an array of addresses" example:"seller.email"`
}

// TriggerCancel cancels a delayed action when another event comes with the same data values.
type TriggerCancel struct {
	Event string   `json:"event" doc:"The cancelling event's name" example:"order.paid"`
	Match []string `json:"match" doc:"Data paths (1 to 10) whose values the cancelling event must share with the triggering one" example:"[\"cart_id\"]"`
}

// TriggerDigest collects events for a window and sends one message listing them.
type TriggerDigest struct {
	Key    string `json:"key" doc:"A data path whose value groups the events (one digest per value); \"\": per contact" example:"seller.id"`
	Window string `json:"window" doc:"How long a digest collects, from its first event (at most 30d)" example:"1h"`
}

// TriggerResource is a trigger as the API shows it.
type TriggerResource struct {
	ID                 string          `json:"id" example:"trg_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Name               string          `json:"name" example:"Abandoned cart"`
	Event              string          `json:"event" doc:"The event name it matches" example:"cart.abandoned"`
	Condition          json.RawMessage `json:"condition" doc:"A condition over the event's data (the segment filter language with {\"data\": path, OP: value} nodes); null: every event of the name"`
	Template           string          `json:"template" example:"cart-reminder"`
	To                 TriggerTo       `json:"to"`
	Stream             string          `json:"stream" enum:"transactional,broadcast"`
	Delay              string          `json:"delay" doc:"How long after the event's occurred_at the mail is sent; 0s: at once" example:"1h"`
	CancelIf           *TriggerCancel  `json:"cancel_if" doc:"null: none"`
	Digest             *TriggerDigest  `json:"digest" doc:"null: one message per event"`
	Cap                string          `json:"cap" doc:"At most one send per recipient key per this long; 0s: no cap" example:"24h"`
	HonourUnsubscribes bool            `json:"honour_unsubscribes" doc:"Leave out recipients suppressed for all mail or for broadcast mail (unsubscribed), and for a list those who left it"`
	From               string          `json:"from" doc:"The sender; \"\" for the server's default"`
	Tags               []string        `json:"tags"`
	Enabled            bool            `json:"enabled"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
}

func toTriggerResource(t store.Trigger) TriggerResource {
	r := TriggerResource{ID: t.ID, Name: t.Name, Event: t.Event, Condition: t.Condition, Template: t.Template,
		To: TriggerTo(t.To), Stream: t.Stream, Delay: notify.FormatDuration(t.Delay), Cap: notify.FormatDuration(t.Cap),
		HonourUnsubscribes: t.HonourUnsubscribes, From: t.From, Tags: nonNil(t.Tags), Enabled: t.Enabled,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	if len(r.Condition) == 0 {
		r.Condition = json.RawMessage("null")
	}
	if c := t.CancelIf; c != nil {
		r.CancelIf = &TriggerCancel{Event: c.Event, Match: nonNil(c.Match)}
	}
	if d := t.Digest; d != nil {
		r.Digest = &TriggerDigest{Key: d.Key, Window: notify.FormatDuration(d.Window)}
	}
	return r
}

// TriggerBody creates a trigger (name, event, template and to required) or changes one (the
// members given replace; the others are kept).
type TriggerBody struct {
	Name               *string         `json:"name,omitempty" maxLength:"200" doc:"Required when creating: a label for people" example:"Abandoned cart"`
	Event              *string         `json:"event,omitempty" doc:"Required when creating: the event name it matches" example:"cart.abandoned"`
	Condition          json.RawMessage `json:"condition,omitempty" doc:"A condition over the event's data; null removes it"`
	Template           *string         `json:"template,omitempty" doc:"Required when creating: a stored template's name" example:"cart-reminder"`
	To                 *TriggerTo      `json:"to,omitempty" doc:"Required when creating: exactly one of contact, addresses, list, data"`
	Stream             *string         `json:"stream,omitempty" enum:"transactional,broadcast" doc:"Default transactional"`
	Delay              *string         `json:"delay,omitempty" doc:"Send this long after the event occurred (units w, d, h, m, s: 90s, 1h, 1d12h; at most 30d); 0 or absent: at once" example:"1h"`
	CancelIf           json.RawMessage `json:"cancel_if,omitempty" doc:"{\"event\": name, \"match\": [data paths]}: the delayed mail is not sent when that event comes, with the same values at those paths, before it is due; needs a delay; null removes it"`
	Digest             json.RawMessage `json:"digest,omitempty" doc:"{\"key\": data path, \"window\": duration}: events of one key are collected for the window and sent as one message (.events lists their data); not with a delay or cancel_if; null removes it"`
	Cap                *string         `json:"cap,omitempty" doc:"At most one send per recipient key (the address for to.data, else the event's contact) per this long (at most 365d); 0: no cap" example:"24h"`
	HonourUnsubscribes *bool           `json:"honour_unsubscribes,omitempty" doc:"Default true for the broadcast stream, false for transactional"`
	From               *string         `json:"from,omitempty" doc:"The sender; \"\" for the server's default"`
	Tags               *[]string       `json:"tags,omitempty" doc:"Tags of every message it creates"`
	Enabled            *bool           `json:"enabled,omitempty" doc:"Default true; a disabled trigger matches nothing, and its pending actions are skipped"`

	strict strictBody
}

// input is b as the service takes it, or the problems of its cancel_if and digest.
func (b *TriggerBody) input() (notify.TriggerInput, error) {
	in := notify.TriggerInput{Name: b.Name, Event: b.Event, Condition: b.Condition, Template: b.Template,
		Stream: b.Stream, Delay: b.Delay, Cap: b.Cap, HonourUnsubscribes: b.HonourUnsubscribes, From: b.From,
		Tags: b.Tags, Enabled: b.Enabled}
	if b.To != nil {
		to := store.TriggerTo(*b.To)
		in.To = &to
	}
	if raw := bytes.TrimSpace(b.CancelIf); len(raw) > 0 {
		if string(raw) == "null" {
			in.ClearCancelIf = true
		} else {
			c, err := decodeObject[TriggerCancel](raw, "body.cancel_if", triggerCancelShape, "an object {event, match}", "")
			if err != nil {
				return in, err
			}
			in.CancelIf = &store.TriggerCancel{Event: c.Event, Match: c.Match}
		}
	}
	if raw := bytes.TrimSpace(b.Digest); len(raw) > 0 {
		if string(raw) == "null" {
			in.ClearDigest = true
		} else {
			d, err := decodeObject[TriggerDigest](raw, "body.digest", triggerDigestShape, "an object {key, window}", "")
			if err != nil {
				return in, err
			}
			in.Digest = &notify.DigestInput{Key: d.Key, Window: d.Window}
		}
	}
	return in, nil
}

var (
	triggerBodyShape   = shapeOf(reflect.TypeFor[TriggerBody]())
	triggerCancelShape = shapeOf(reflect.TypeFor[TriggerCancel]())
	triggerDigestShape = shapeOf(reflect.TypeFor[TriggerDigest]())
)

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *TriggerBody) UnmarshalJSON(data []byte) error {
	type plain TriggerBody
	return b.strict.decode(data, (*plain)(b), triggerBodyShape)
}

func (b *TriggerBody) Resolve(huma.Context) []error { return b.strict.errors() }

type triggerCreateInput struct {
	Body TriggerBody
}

type triggerPatchInput struct {
	ID   string `path:"id" doc:"The trigger (trg_…)"`
	Body TriggerBody
}

type triggerIDInput struct {
	ID string `path:"id" doc:"The trigger (trg_…)"`
}

type triggerListInput struct {
	Event  string `query:"event" doc:"Only triggers of this event name"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

// Resolve checks the cursor: the id of a trigger.
func (in *triggerListInput) Resolve(huma.Context) []error {
	if in.Cursor != "" && !id.Valid(id.Trigger, in.Cursor) {
		return badCursor()
	}
	return nil
}

type triggerOutput struct {
	Body TriggerResource
}

func (s *Server) registerTriggers() {
	tags := []string{"Triggers"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-trigger", Method: http.MethodPost, Path: "/v1/triggers", Tags: tags,
		Summary:       "Create a trigger",
		Description:   "Checks the event name, the condition, the template (it must exist), who it sends to (a list must exist) and the durations, and stores the trigger; events accepted from then on are matched against it (on other nodes within a few seconds).",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.triggerCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-triggers", Method: http.MethodGet, Path: "/v1/triggers", Tags: tags,
		Summary: "List triggers, oldest first", Errors: []int{401, 422},
	}, s.triggerList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-trigger", Method: http.MethodGet, Path: "/v1/triggers/{id}", Tags: tags,
		Summary: "Get a trigger", Errors: []int{401, 404},
	}, s.triggerGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-trigger", Method: http.MethodPatch, Path: "/v1/triggers/{id}", Tags: tags,
		Summary:     "Change a trigger",
		Description: "The members given replace the stored ones, with the same checks as on create; nothing changes when one fails. Actions already created keep their due time; they are worked with the trigger as it is then.",
		Errors:      []int{400, 401, 404, 422},
	}, s.triggerPatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-trigger", Method: http.MethodDelete, Path: "/v1/triggers/{id}", Tags: tags,
		Summary:       "Delete a trigger",
		Description:   "Its pending actions are cancelled (reason \"trigger deleted\"); the messages it created stay.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, s.triggerDelete)
}

func triggerID(trgID string) error {
	if !id.Valid(id.Trigger, trgID) {
		return huma.Error404NotFound("trigger " + trgID + " not found")
	}
	return nil
}

func (s *Server) triggerCreate(ctx context.Context, in *triggerCreateInput) (*triggerOutput, error) {
	ti, err := in.Body.input()
	if err != nil {
		return nil, err
	}
	from := "" // the default sender
	if in.Body.From != nil {
		from = *in.Body.From
	}
	if err := s.fromAllowed(ctx, "body", from); err != nil {
		return nil, err
	}
	t, err := s.notify.CreateTrigger(ctx, ti)
	if err != nil {
		return nil, s.notifyError(err, "body", "trigger")
	}
	return &triggerOutput{Body: toTriggerResource(t)}, nil
}

func (s *Server) triggerList(ctx context.Context, in *triggerListInput) (*pageOutput[TriggerResource], error) {
	page, next, err := s.notify.Triggers(ctx, store.TriggerListParams{Event: in.Event, Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.notifyError(err, "query", "triggers")
	}
	return pageOf(page, next, toTriggerResource), nil
}

func (s *Server) triggerGet(ctx context.Context, in *triggerIDInput) (*triggerOutput, error) {
	if err := triggerID(in.ID); err != nil {
		return nil, err
	}
	t, err := s.notify.Trigger(ctx, in.ID)
	if err != nil {
		return nil, s.notifyError(err, "path.id", "trigger "+in.ID)
	}
	return &triggerOutput{Body: toTriggerResource(t)}, nil
}

func (s *Server) triggerPatch(ctx context.Context, in *triggerPatchInput) (*triggerOutput, error) {
	if err := triggerID(in.ID); err != nil {
		return nil, err
	}
	ti, err := in.Body.input()
	if err != nil {
		return nil, err
	}
	if in.Body.From != nil {
		err = s.fromAllowed(ctx, "body", *in.Body.From)
	} else if len(apiKeyFrom(ctx).SenderDomains) > 0 {
		if t, terr := s.notify.Trigger(ctx, in.ID); terr == nil { // else the update says why
			err = s.fromAllowed(ctx, "trigger", t.From)
		}
	}
	if err != nil {
		return nil, err
	}
	t, err := s.notify.UpdateTrigger(ctx, in.ID, ti)
	if err != nil {
		return nil, s.notifyError(err, "body", "trigger "+in.ID)
	}
	return &triggerOutput{Body: toTriggerResource(t)}, nil
}

func (s *Server) triggerDelete(ctx context.Context, in *triggerIDInput) (*struct{}, error) {
	if err := triggerID(in.ID); err != nil {
		return nil, err
	}
	if err := s.notify.DeleteTrigger(ctx, in.ID); err != nil {
		return nil, s.notifyError(err, "body", "trigger "+in.ID)
	}
	return nil, nil
}
