package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
)

// The lists routes: thin handlers over package audience.

// ListResource is a list as the API shows it, with its subscription counts.
type ListResource struct {
	ID           string    `json:"id" example:"lst_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Name         string    `json:"name" example:"Newsletter"`
	Description  string    `json:"description"`
	Public       bool      `json:"public" doc:"Shown on the preference page"`
	DoubleOptIn  bool      `json:"double_opt_in" doc:"A new subscription is pending until the person confirms it"`
	Wording      string    `json:"wording" doc:"The consent text shown when subscribing, copied into every consent record"`
	Subscribed   int       `json:"subscribed"`
	Pending      int       `json:"pending"`
	Unsubscribed int       `json:"unsubscribed"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func toListResource(l store.List) ListResource {
	return ListResource{ID: l.ID, Name: l.Name, Description: l.Description, Public: l.Public, DoubleOptIn: l.DoubleOptIn,
		Wording: l.Wording, Subscribed: l.Subscribed, Pending: l.Pending, Unsubscribed: l.Unsubscribed,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
}

// ListBody creates a list (name required) or changes one (fields left out are kept).
type ListBody struct {
	Name        *string `json:"name,omitempty" maxLength:"200" doc:"Required when creating" example:"Newsletter"`
	Description *string `json:"description,omitempty" maxLength:"2000"`
	Public      *bool   `json:"public,omitempty" doc:"Shown on the preference page (default false)"`
	DoubleOptIn *bool   `json:"double_opt_in,omitempty" doc:"Subscriptions are pending until confirmed (default false)"`
	Wording     *string `json:"wording,omitempty" maxLength:"5000" doc:"The consent text; a change applies to the consent records written from then on" example:"Yes, send me the monthly newsletter."`

	strict strictBody // what checkJSON found
}

func (b *ListBody) input() audience.ListInput {
	return audience.ListInput{Name: b.Name, Description: b.Description, Public: b.Public, DoubleOptIn: b.DoubleOptIn, Wording: b.Wording}
}

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *ListBody) UnmarshalJSON(data []byte) error {
	type plain ListBody
	return b.strict.decode(data, (*plain)(b), listBodyShape)
}

func (b *ListBody) Resolve(huma.Context) []error { return b.strict.errors() }

// SubscriptionBody is the body of PUT /v1/lists/{id}/contacts/{contact} (optional).
type SubscriptionBody struct {
	Resubscribe bool         `json:"resubscribe,omitempty" doc:"Subscribe again a contact who left the list: only with the person's new consent"`
	Confirmed   bool         `json:"confirmed,omitempty" doc:"You confirmed the address yourself: subscribed at once, no double opt-in message"`
	Consent     *ConsentBody `json:"consent,omitempty"`

	strict strictBody // what checkJSON found
}

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *SubscriptionBody) UnmarshalJSON(data []byte) error {
	type plain SubscriptionBody
	return b.strict.decode(data, (*plain)(b), subscriptionBodyShape)
}

func (b *SubscriptionBody) Resolve(huma.Context) []error { return b.strict.errors() }

type listCreateInput struct {
	Body ListBody
}

type listPatchInput struct {
	ID   string `path:"id" doc:"The list (lst_…)"`
	Body ListBody
}

type listIDInput struct {
	ID string `path:"id" doc:"The list (lst_…)"`
}

type listOutput struct {
	Body ListResource
}

type listsOutput struct {
	Body struct {
		Data []ListResource `json:"data"`
	}
}

type subscriptionPutInput struct {
	ID      string            `path:"id" doc:"The list (lst_…)"`
	Contact string            `path:"contact" doc:"The contact: its id (ctc_…), ext: and its external_id, or an email address (path-escaped); an address that is no contact yet becomes one"`
	Body    *SubscriptionBody `required:"false"`
}

type subscriptionDeleteInput struct {
	ID      string `path:"id" doc:"The list (lst_…)"`
	Contact string `path:"contact" doc:"The contact: its id (ctc_…), ext: and its external_id, or its email address (path-escaped)"`
	Source  string `query:"source" maxLength:"64" doc:"Recorded in the consent record (default api)"`
}

type subscriptionOutput struct {
	Body SubscriptionResource
}

func (s *Server) registerLists() {
	tags := []string{"Lists"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-list", Method: http.MethodPost, Path: "/v1/lists", Tags: tags,
		Summary: "Create a list", DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.listCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-lists", Method: http.MethodGet, Path: "/v1/lists", Tags: tags,
		Summary: "Every list, with its counts", Errors: []int{401},
	}, s.listList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-list", Method: http.MethodGet, Path: "/v1/lists/{id}", Tags: tags,
		Summary: "Get a list with its counts", Errors: []int{401, 404},
	}, s.listGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-list", Method: http.MethodPatch, Path: "/v1/lists/{id}", Tags: tags,
		Summary: "Change a list", Description: "Fields left out are kept.", Errors: []int{400, 401, 404, 422},
	}, s.listPatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-list", Method: http.MethodDelete, Path: "/v1/lists/{id}", Tags: tags,
		Summary:       "Delete a list and its subscriptions",
		Description:   "The contacts' consent records of the list are kept.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, s.listDelete)
	huma.Register(s.api, huma.Operation{
		OperationID: "subscribe-contact", Method: http.MethodPut, Path: "/v1/lists/{id}/contacts/{contact}", Tags: tags,
		Summary:     "Subscribe a contact to a list",
		Description: "Subscribed at once, or pending (a confirmation message is sent) on a double opt-in list unless confirmed. A contact who left the list stays unsubscribed (kept: true) unless resubscribe.",
		Errors:      []int{400, 401, 404, 422},
	}, s.subscriptionPut)
	huma.Register(s.api, huma.Operation{
		OperationID: "unsubscribe-contact", Method: http.MethodDelete, Path: "/v1/lists/{id}/contacts/{contact}", Tags: tags,
		Summary:     "Unsubscribe a contact from a list",
		Description: "The subscription stays, unsubscribed: the memory that the person left, which nothing but their new consent undoes.",
		Errors:      []int{401, 404, 422},
	}, s.subscriptionDelete)
}

func (s *Server) listCreate(ctx context.Context, in *listCreateInput) (*listOutput, error) {
	l, err := s.audience.ListCreate(ctx, in.Body.input())
	if err != nil {
		return nil, s.audienceError(err, "body", "list")
	}
	return &listOutput{Body: toListResource(l)}, nil
}

func (s *Server) listList(ctx context.Context, _ *struct{}) (*listsOutput, error) {
	ls, err := s.audience.Lists(ctx)
	if err != nil {
		return nil, s.audienceError(err, "", "lists")
	}
	out := &listsOutput{}
	out.Body.Data = make([]ListResource, len(ls))
	for i, l := range ls {
		out.Body.Data[i] = toListResource(l)
	}
	return out, nil
}

func (s *Server) listGet(ctx context.Context, in *listIDInput) (*listOutput, error) {
	l, err := s.audience.List(ctx, in.ID)
	if err != nil {
		return nil, s.audienceError(err, "path.id", "list "+in.ID)
	}
	return &listOutput{Body: toListResource(l)}, nil
}

func (s *Server) listPatch(ctx context.Context, in *listPatchInput) (*listOutput, error) {
	l, err := s.audience.ListUpdate(ctx, in.ID, in.Body.input())
	if err != nil {
		return nil, s.audienceError(err, "body", "list "+in.ID)
	}
	return &listOutput{Body: toListResource(l)}, nil
}

func (s *Server) listDelete(ctx context.Context, in *listIDInput) (*struct{}, error) {
	if err := s.audience.ListDelete(ctx, in.ID); err != nil {
		return nil, s.audienceError(err, "path.id", "list "+in.ID)
	}
	return nil, nil
}

func (s *Server) subscriptionPut(ctx context.Context, in *subscriptionPutInput) (*subscriptionOutput, error) {
	p := audience.SubscribeParams{Status: store.SubscriptionSubscribed}
	if b := in.Body; b != nil {
		p.Resubscribe, p.Confirmed, p.Consent = b.Resubscribe, b.Confirmed, b.Consent.consent()
	}
	return s.subscribe(ctx, in.ID, in.Contact, p, "body")
}

func (s *Server) subscriptionDelete(ctx context.Context, in *subscriptionDeleteInput) (*subscriptionOutput, error) {
	p := audience.SubscribeParams{Status: store.SubscriptionUnsubscribed, Consent: store.Consent{Source: in.Source}}
	return s.subscribe(ctx, in.ID, in.Contact, p, "query")
}

func (s *Server) subscribe(ctx context.Context, listID, contact string, p audience.SubscribeParams, prefix string) (*subscriptionOutput, error) {
	if _, err := audience.ParseRef(contact); err != nil {
		return nil, s.audienceError(err, "path.contact", "contact "+contact)
	}
	res, err := s.audience.Subscribe(ctx, listID, contact, p)
	if err != nil {
		return nil, s.audienceError(err, prefix, "subscription")
	}
	r := toSubscriptionResource(res.Subscription)
	r.Kept = res.Kept
	return &subscriptionOutput{Body: r}, nil
}
