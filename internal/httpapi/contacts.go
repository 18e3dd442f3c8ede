package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// The contacts routes: thin handlers over package audience.

// ContactResource is a contact as the API shows it.
type ContactResource struct {
	ID           string          `json:"id" example:"ctc_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Email        string          `json:"email" doc:"The address as last given" example:"ann@example.com"`
	ExternalID   *string         `json:"external_id" doc:"The contact's id in your own system; null when none" example:"user-42"`
	Name         string          `json:"name"`
	Locale       string          `json:"locale" doc:"BCP 47 tag, \"\" when unknown" example:"pt-BR"`
	Timezone     string          `json:"timezone" doc:"IANA name, \"\" when unknown" example:"Europe/Paris"`
	Attributes   json.RawMessage `json:"attributes" doc:"A JSON object of your own fields"`
	LastActiveAt *time.Time      `json:"last_active_at" doc:"When the person was last active; null: never seen"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

func toContactResource(c store.Contact) ContactResource {
	r := ContactResource{ID: c.ID, Email: c.Email, Name: c.Name, Locale: c.Locale, Timezone: c.Timezone,
		Attributes: c.Attributes, LastActiveAt: timePtr(c.LastActiveAt), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.ExternalID != "" {
		r.ExternalID = &c.ExternalID
	}
	if len(r.Attributes) == 0 {
		r.Attributes = json.RawMessage("{}")
	}
	return r
}

// ConsentBody is how a subscription change came about, kept in its consent record.
type ConsentBody struct {
	Source    string `json:"source,omitempty" maxLength:"64" doc:"Where the change came from: api (default), form, import, …" example:"form"`
	IP        string `json:"ip,omitempty" doc:"The person's IP address, where known" example:"192.0.2.7"`
	UserAgent string `json:"user_agent,omitempty" maxLength:"512" doc:"The person's user agent, where known"`
}

func (c *ConsentBody) consent() store.Consent {
	if c == nil {
		return store.Consent{}
	}
	return store.Consent{Source: c.Source, IP: c.IP, UserAgent: c.UserAgent}
}

// ContactBody creates or updates a contact: the body of POST /v1/contacts, an item of POST
// /v1/contacts/batch, and (every field optional) of PATCH /v1/contacts/{ref}.
type ContactBody struct {
	Email        string          `json:"email" doc:"The address (no display name). The contact is found by external_id when given, else by this address, compared lowercased with the domain in A-labels." example:"ann@example.com"`
	ExternalID   string          `json:"external_id,omitempty" maxLength:"256" doc:"Your own id of the person, unique. Given with a new email, it changes the contact's email." example:"user-42"`
	Name         *string         `json:"name,omitempty" maxLength:"256" doc:"Omit to keep the stored name"`
	Locale       *string         `json:"locale,omitempty" doc:"BCP 47 language tag; stored in its canonical form" example:"pt-BR"`
	Timezone     *string         `json:"timezone,omitempty" doc:"IANA timezone name" example:"Europe/Paris"`
	Attributes   json.RawMessage `json:"attributes,omitempty" doc:"A JSON object (at most 64 KB) merged key by key into the stored one; a null value removes its key"`
	LastActiveAt *time.Time      `json:"last_active_at,omitempty" doc:"When the person was last active; an earlier time than the stored one is ignored"`
	Lists        []string        `json:"lists,omitempty" doc:"Lists to subscribe the contact to (lst_…): subscribed, or pending confirmation on a double opt-in list. A contact who unsubscribed stays unsubscribed (listed in kept) unless resubscribe."`
	Resubscribe  bool            `json:"resubscribe,omitempty" doc:"Subscribe again to lists the contact left: only with the person's new consent"`
	Unsubscribe  []string        `json:"unsubscribe,omitempty" doc:"Lists to unsubscribe the contact from"`
	Consent      *ConsentBody    `json:"consent,omitempty" doc:"Recorded with every subscription change this makes"`
}

func (b *ContactBody) upsert() store.ContactUpsert {
	u := store.ContactUpsert{Email: b.Email, ExternalID: b.ExternalID, Name: b.Name, Locale: b.Locale,
		Timezone: b.Timezone, Attributes: b.Attributes, Lists: b.Lists, Resubscribe: b.Resubscribe,
		Unsubscribe: b.Unsubscribe, Consent: b.Consent.consent()}
	if b.LastActiveAt != nil {
		u.LastActiveAt = b.LastActiveAt.UTC()
	}
	return u
}

// ContactAnswer is the answer to an upsert of one contact.
type ContactAnswer struct {
	ID      string   `json:"id" example:"ctc_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Outcome string   `json:"outcome" enum:"created,updated,merged,unchanged" doc:"created; updated; merged: found by an address differing only in case (the email is now as given); unchanged: nothing differed"`
	Pending []string `json:"pending,omitempty" doc:"Double opt-in lists whose subscription is now pending: a confirmation message is sent"`
	Kept    []string `json:"kept,omitempty" doc:"Lists the contact had left, left unsubscribed (no resubscribe)"`
}

// ContactBatchBody is the body of POST /v1/contacts/batch.
type ContactBatchBody struct {
	Contacts []ContactBody `json:"contacts" minItems:"1" maxItems:"1000" doc:"At most 1,000 contacts; each is validated on its own"`
}

// ContactBatchResult is one item's result: its answer, or its error.
type ContactBatchResult struct {
	ID      string           `json:"id,omitempty"`
	Outcome string           `json:"outcome,omitempty" enum:"created,updated,merged,unchanged"`
	Pending []string         `json:"pending,omitempty"`
	Kept    []string         `json:"kept,omitempty"`
	Error   *huma.ErrorModel `json:"error,omitempty" doc:"Why this item was refused (RFC 9457 problem); nothing was stored for it"`
}

// ContactBatchAnswer is the answer to a batch: one result per contact, in order, and counts.
type ContactBatchAnswer struct {
	Results []ContactBatchResult `json:"results"`
	Counts  ContactBatchCounts   `json:"counts"`
}

// ContactBatchCounts counts a batch's outcomes.
type ContactBatchCounts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Merged    int `json:"merged"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
}

func (c *ContactBatchCounts) add(outcome string) {
	switch outcome {
	case store.UpsertCreated:
		c.Created++
	case store.UpsertUpdated:
		c.Updated++
	case store.UpsertMerged:
		c.Merged++
	case store.UpsertUnchanged:
		c.Unchanged++
	default:
		c.Failed++
	}
}

// SubscriptionResource is one subscription.
type SubscriptionResource struct {
	ListID         string     `json:"list_id"`
	ContactID      string     `json:"contact_id"`
	Status         string     `json:"status" enum:"pending,subscribed,unsubscribed"`
	Source         string     `json:"source" doc:"Where its last change came from"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	ConfirmedAt    *time.Time `json:"confirmed_at" doc:"When a double opt-in was confirmed (or the address confirmed by the caller)"`
	UnsubscribedAt *time.Time `json:"unsubscribed_at"`
	Kept           bool       `json:"kept,omitempty" doc:"In an answer to PUT: the contact had left the list and stays unsubscribed (no resubscribe)"`
}

func toSubscriptionResource(s store.Subscription) SubscriptionResource {
	return SubscriptionResource{ListID: s.ListID, ContactID: s.ContactID, Status: s.Status, Source: s.Source,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, ConfirmedAt: timePtr(s.ConfirmedAt),
		UnsubscribedAt: timePtr(s.UnsubscribedAt)}
}

// ConsentResource is one consent record.
type ConsentResource struct {
	ListID    string    `json:"list_id"`
	Action    string    `json:"action" enum:"subscribe,confirm,unsubscribe,resubscribe"`
	Source    string    `json:"source"`
	IP        string    `json:"ip" doc:"\"\" when unknown"`
	UserAgent string    `json:"user_agent" doc:"\"\" when unknown"`
	Wording   string    `json:"wording" doc:"The list's consent wording at the time"`
	At        time.Time `json:"at"`
}

type contactUpsertInput struct {
	RawBody []byte `contentType:"application/json"`
}

type contactUpsertOutput struct {
	Status int
	Body   ContactAnswer
}

type contactBatchOutput struct {
	Body ContactBatchAnswer
}

type contactRefInput struct {
	Ref string `path:"ref" doc:"The contact: its id (ctc_…), ext: and its external_id, or its email address (path-escaped)"`
}

type contactPatchInput struct {
	Ref     string `path:"ref" doc:"The contact: its id (ctc_…), ext: and its external_id, or its email address (path-escaped)"`
	RawBody []byte `contentType:"application/json"`
}

type contactDeleteInput struct {
	Ref   string `path:"ref" doc:"The contact: its id (ctc_…), ext: and its external_id, or its email address (path-escaped)"`
	Erase bool   `query:"erase" doc:"Forget the person everywhere postie keeps them (docs/api.md, Erasure); only a keyed hash of the address is kept, as a suppression"`
}

type contactOutput struct {
	Body ContactResource
}

type contactListInput struct {
	Segment string `query:"segment" doc:"Only contacts this segment matches now (seg_…)"`
	Filter  string `query:"filter" doc:"Only contacts this filter matches now: a filter of the segment language, as JSON"`
	List    string `query:"list" doc:"Only members of this list (lst_…)"`
	Status  string `query:"status" enum:"pending,subscribed,unsubscribed," doc:"With list: only this subscription status"`
	Cursor  string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit   int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

type subscriptionsOutput struct {
	Body struct {
		Data []SubscriptionResource `json:"data"`
	}
}

type consentOutput struct {
	Body struct {
		Data []ConsentResource `json:"data"`
	}
}

// maxContactBatchBytes bounds the body of POST /v1/contacts/batch: 1,000 contacts of a few
// KB of attributes each, with room to spare (one contact's attributes may be 64 KB).
const maxContactBatchBytes = 16 << 20

func (s *Server) registerContacts() {
	tags := []string{"Contacts"}
	huma.Register(s.api, huma.Operation{
		OperationID: "upsert-contact", Method: http.MethodPost, Path: "/v1/contacts", Tags: tags,
		Summary:     "Create or update a contact",
		Description: "Finds the contact by external_id when given, else by email (case-insensitive), and creates or updates it; answers 201 when created, 200 otherwise.",
		Errors:      []int{400, 401, 404, 409, 422}, SkipValidateBody: true,
	}, s.contactUpsert)
	huma.Register(s.api, huma.Operation{
		OperationID: "upsert-contacts", Method: http.MethodPost, Path: "/v1/contacts/batch", Tags: tags,
		Summary:     "Create or update up to 1,000 contacts",
		Description: "Each contact is validated on its own; the valid ones are written in one transaction and the refused ones answered with their error, in order. Two items with the same address or external_id: the later one is refused.",
		Errors:      []int{400, 401, 413, 422}, SkipValidateBody: true, MaxBodyBytes: maxContactBatchBytes,
	}, s.contactBatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-contacts", Method: http.MethodGet, Path: "/v1/contacts", Tags: tags,
		Summary: "List contacts, oldest first", Errors: []int{401, 422},
	}, s.contactList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-contact", Method: http.MethodGet, Path: "/v1/contacts/{ref}", Tags: tags,
		Summary: "Get a contact", Errors: []int{401, 404, 422},
	}, s.contactGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-contact", Method: http.MethodPatch, Path: "/v1/contacts/{ref}", Tags: tags,
		Summary:     "Change a contact",
		Description: "Fields left out are kept; a new email or external_id replaces the old one (409 when another contact has it).",
		Errors:      []int{400, 401, 404, 409, 422}, SkipValidateBody: true,
	}, s.contactPatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-contact", Method: http.MethodDelete, Path: "/v1/contacts/{ref}", Tags: tags,
		Summary:       "Delete a contact, or erase the person",
		Description:   "Deletes the contact with its subscriptions and consent records. With erase=true, also removes the person from every message, timeline, idempotency record and suppression postie keeps, and keeps only a suppression keyed by an HMAC of the address so they are never written to again.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404, 422, 503},
	}, s.contactDelete)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-contact-subscriptions", Method: http.MethodGet, Path: "/v1/contacts/{ref}/subscriptions", Tags: tags,
		Summary: "A contact's subscriptions", Errors: []int{401, 404, 422},
	}, s.contactSubscriptions)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-contact-consent", Method: http.MethodGet, Path: "/v1/contacts/{ref}/consent", Tags: tags,
		Summary: "A contact's consent records, oldest first", Errors: []int{401, 404, 422},
	}, s.contactConsent)
}

// documentContacts sets the request and response schemas of the contact routes that read
// their bodies raw.
func (s *Server) documentContacts() {
	s.documentBodies("/v1/contacts", reflect.TypeFor[ContactBody](), "200", reflect.TypeFor[ContactAnswer]())
	s.documentBodies("/v1/contacts/batch", reflect.TypeFor[ContactBatchBody](), "200", reflect.TypeFor[ContactBatchAnswer]())
	oapi := s.api.OpenAPI()
	body := reflect.TypeFor[ContactBody]()
	oapi.Paths["/v1/contacts/{ref}"].Patch.RequestBody.Content["application/json"] = &huma.MediaType{
		Schema: oapi.Components.Schemas.Schema(body, true, body.Name())}
}

// contactShape is the shape of a contact object.
var contactShape = shapeOf(reflect.TypeFor[ContactBody]())

// decodeContact decodes one contact object strictly (unknown fields, duplicate members and bad
// UTF-8 refused), its problems located under prefix.
func decodeContact(raw []byte, prefix string) (*ContactBody, error) {
	return decodeObject[ContactBody](raw, prefix, contactShape, "a contact object", "last_active_at")
}

// decodeObject decodes one JSON object of type T strictly (unknown fields, duplicate members
// and bad UTF-8 refused), its problems located under prefix; what names the object in an
// error, timeField the one time field a malformed time is reported at.
func decodeObject[T any](raw []byte, prefix string, shape *jsonShape, what, timeField string) (*T, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b T
	err := dec.Decode(&b)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after " + what)
	}
	if err == nil {
		if is := checkJSON(raw, shape); is != nil {
			return nil, jsonProblem(is, prefix)
		}
		return &b, nil
	}
	p := &problem{prefix: prefix}
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		p.add(te.Field, fmt.Sprintf("expected %s, got %s", jsonType(te.Type), te.Value), nil)
	case errors.As(err, &pe), strings.HasPrefix(err.Error(), "Time.UnmarshalJSON: "):
		p.add(timeField, "expected an RFC 3339 time like 2026-12-01T09:00:00Z", nil)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p.add(f, "unknown field", f)
	case bytes.Equal(bytes.TrimSpace(raw), []byte("null")):
		p.add("", "expected "+what, nil)
	default:
		p.kind = message.KindMalformed
		p.add("", "malformed JSON: "+err.Error(), nil)
	}
	return nil, p.err()
}

// decodeItems decodes a batch body {field: [item, …]} strictly (its items are decoded one by
// one later, so that a bad item is refused alone): 1 to max items, each named what.
func decodeItems(raw []byte, field, what string, max int) ([]json.RawMessage, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, huma.Error422UnprocessableEntity("body: must be an object with "+field,
				&huma.ErrorDetail{Location: "body", Message: "must be an object with " + field})
		}
		return nil, huma.Error400BadRequest("malformed JSON: "+err.Error(),
			&huma.ErrorDetail{Location: "body", Message: "malformed JSON: " + err.Error()})
	}
	for k := range body {
		if k != field {
			return nil, huma.Error422UnprocessableEntity("body: json: unknown field \""+k+"\"",
				&huma.ErrorDetail{Location: "body", Message: "the only field is " + field})
		}
	}
	if is := checkJSON(raw, &jsonShape{fold: true, fields: map[string]*jsonShape{field: {skip: true}}}); is != nil {
		return nil, jsonProblem(is, "body")
	}
	loc := "body." + field
	var items []json.RawMessage
	if v, ok := body[field]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, huma.Error422UnprocessableEntity(loc+": must be an array of "+what+" objects",
				&huma.ErrorDetail{Location: loc, Message: "must be an array of " + what + " objects"})
		}
		if items == nil {
			items = []json.RawMessage{}
		}
	}
	switch {
	case items == nil:
		return nil, huma.Error422UnprocessableEntity(loc+": required",
			&huma.ErrorDetail{Location: loc, Message: "required: an array of " + field})
	case len(items) == 0:
		return nil, huma.Error422UnprocessableEntity(loc+": empty",
			&huma.ErrorDetail{Location: loc, Message: "at least one " + what + " is required"})
	case len(items) > max:
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("%s: at most %d %s per batch", loc, max, field),
			&huma.ErrorDetail{Location: loc, Message: fmt.Sprintf("too many %s: %d, at most %d", field, len(items), max), Value: len(items)})
	}
	return items, nil
}

// audienceError maps an error of package audience to a problem response, the input's problems
// located under prefix.
func (s *Server) audienceError(err error, prefix, what string) error {
	var ie *audience.InvalidError
	switch {
	case errors.As(err, &ie):
		ps := make([]message.Problem, len(ie.Problems))
		for i, p := range ie.Problems {
			ps[i] = message.Problem{Field: p.Field, Message: p.Message, Value: p.Value}
		}
		return problemError(prefix, message.KindInvalid, ps)
	case errors.Is(err, audience.ErrNoErasureKey):
		return huma.Error503ServiceUnavailable(err.Error())
	case errors.Is(err, store.ErrNotFound):
		// The store names what it did not find: "list lst_…", "contact ann@example.com".
		return huma.Error404NotFound(strings.TrimSuffix(err.Error(), ": "+store.ErrNotFound.Error()) + " not found")
	}
	return s.storeError(err, what)
}

func (s *Server) contactUpsert(ctx context.Context, in *contactUpsertInput) (*contactUpsertOutput, error) {
	b, err := decodeContact(in.RawBody, "body")
	if err != nil {
		return nil, err
	}
	res, err := s.audience.UpsertOne(ctx, b.upsert())
	if err != nil {
		return nil, s.audienceError(err, "body", "contact")
	}
	status := http.StatusOK
	if res.Outcome == store.UpsertCreated {
		status = http.StatusCreated
	}
	return &contactUpsertOutput{Status: status, Body: ContactAnswer{ID: res.ID, Outcome: res.Outcome, Pending: res.Pending, Kept: res.Kept}}, nil
}

func (s *Server) contactBatch(ctx context.Context, in *contactUpsertInput) (*contactBatchOutput, error) {
	items, err := decodeItems(in.RawBody, "contacts", "contact", s.audience.MaxBatch())
	if err != nil {
		return nil, err
	}
	results := make([]ContactBatchResult, len(items))
	ups := make([]store.ContactUpsert, len(items))
	ok := make([]bool, len(items))
	fanout.Each(len(items), func(i int) {
		b, err := decodeContact(items[i], fmt.Sprintf("body.contacts[%d]", i))
		if err != nil {
			results[i].Error = asErrorModel(err)
			return
		}
		ups[i], ok[i] = b.upsert(), true
	})
	valid := make([]store.ContactUpsert, 0, len(items))
	at := make([]int, 0, len(items))
	for i := range items {
		if ok[i] {
			valid = append(valid, ups[i])
			at = append(at, i)
		}
	}
	res, err := s.audience.Upsert(ctx, valid)
	if err != nil {
		return nil, s.audienceError(err, "body", "contacts")
	}
	out := &contactBatchOutput{}
	for j, r := range res {
		i := at[j]
		if r.Err != nil {
			results[i].Error = asErrorModel(s.audienceError(r.Err, fmt.Sprintf("body.contacts[%d]", i), "contact"))
			continue
		}
		results[i] = ContactBatchResult{ID: r.ID, Outcome: r.Outcome, Pending: r.Pending, Kept: r.Kept}
	}
	for _, r := range results {
		out.Body.Counts.add(r.Outcome)
	}
	out.Body.Results = results
	return out, nil
}

func (s *Server) contactGet(ctx context.Context, in *contactRefInput) (*contactOutput, error) {
	c, err := s.audience.Contact(ctx, in.Ref)
	if err != nil {
		return nil, s.audienceError(err, "path.ref", "contact "+in.Ref)
	}
	return &contactOutput{Body: toContactResource(c)}, nil
}

func (s *Server) contactPatch(ctx context.Context, in *contactPatchInput) (*contactOutput, error) {
	b, err := decodeContact(in.RawBody, "body")
	if err != nil {
		return nil, err
	}
	if _, err := audience.ParseRef(in.Ref); err != nil {
		return nil, s.audienceError(err, "path.ref", "contact "+in.Ref)
	}
	c, _, err := s.audience.Update(ctx, in.Ref, b.upsert())
	if err != nil {
		return nil, s.audienceError(err, "body", "contact "+in.Ref)
	}
	return &contactOutput{Body: toContactResource(c)}, nil
}

func (s *Server) contactDelete(ctx context.Context, in *contactDeleteInput) (*struct{}, error) {
	if err := s.audience.Delete(ctx, in.Ref, in.Erase); err != nil {
		return nil, s.audienceError(err, "path.ref", "contact "+in.Ref)
	}
	return nil, nil
}

func (s *Server) contactList(ctx context.Context, in *contactListInput) (*pageOutput[ContactResource], error) {
	if in.Segment != "" || in.Filter != "" {
		return s.contactsMatching(ctx, in) // segments.go
	}
	page, next, err := s.audience.Contacts(ctx, store.ContactListParams{ListID: in.List, SubscriptionStatus: in.Status,
		Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.audienceError(err, "query", "contacts")
	}
	out := &pageOutput[ContactResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]ContactResource, len(page))
	for i, c := range page {
		out.Body.Data[i] = toContactResource(c)
	}
	return out, nil
}

func (s *Server) contactSubscriptions(ctx context.Context, in *contactRefInput) (*subscriptionsOutput, error) {
	subs, err := s.audience.Subscriptions(ctx, in.Ref)
	if err != nil {
		return nil, s.audienceError(err, "path.ref", "contact "+in.Ref)
	}
	out := &subscriptionsOutput{}
	out.Body.Data = make([]SubscriptionResource, len(subs))
	for i, sub := range subs {
		out.Body.Data[i] = toSubscriptionResource(sub)
	}
	return out, nil
}

func (s *Server) contactConsent(ctx context.Context, in *contactRefInput) (*consentOutput, error) {
	recs, err := s.audience.Consent(ctx, in.Ref)
	if err != nil {
		return nil, s.audienceError(err, "path.ref", "contact "+in.Ref)
	}
	out := &consentOutput{}
	out.Body.Data = make([]ConsentResource, len(recs))
	for i, r := range recs {
		out.Body.Data[i] = ConsentResource{ListID: r.ListID, Action: r.Action, Source: r.Source, IP: r.IP,
			UserAgent: r.UserAgent, Wording: r.Wording, At: r.At}
	}
	return out, nil
}
