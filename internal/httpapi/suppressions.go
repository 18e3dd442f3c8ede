package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
)

// SuppressionResource is a suppression as the API shows it.
type SuppressionResource struct {
	Email     string     `json:"email" doc:"The suppressed address, lowercased" example:"ann@example.com"`
	Scope     string     `json:"scope" doc:"Which mail it stops: global (every stream), broadcast (broadcast mail) or a list id (that list's mail)" example:"global"`
	Reason    string     `json:"reason" enum:"hard_bounce,complaint,unsubscribe,manual,erased" doc:"Why postie does not send to it; erased: the person was erased, and email is an HMAC of their address"`
	Detail    string     `json:"detail" doc:"The relay's reply for a hard bounce, or free text for a manual suppression" example:"550 5.1.1 user unknown"`
	MessageID *string    `json:"message_id" doc:"The message whose outcome caused it; null when added by hand"`
	CreatedAt time.Time  `json:"created_at" doc:"When it was added (or last refreshed)"`
	ExpiresAt *time.Time `json:"expires_at" doc:"When it stops applying; null: never"`
}

func toSuppressionResource(sup store.Suppression) SuppressionResource {
	r := SuppressionResource{Email: sup.Email, Scope: sup.Scope, Reason: sup.Reason, Detail: sup.Detail, CreatedAt: sup.CreatedAt,
		ExpiresAt: timePtr(sup.ExpiresAt)}
	if sup.MessageID != "" {
		r.MessageID = &sup.MessageID
	}
	return r
}

// SuppressionBody is the body of POST /v1/suppressions.
type SuppressionBody struct {
	Email     string     `json:"email" minLength:"1" doc:"The address to suppress (a display name is ignored); stored lowercased" example:"ann@example.com"`
	Scope     string     `json:"scope,omitempty" doc:"global (default: every stream), broadcast (broadcast mail only) or a list id lst_… (that list's mail only)" example:"global"`
	Reason    string     `json:"reason,omitempty" enum:"hard_bounce,complaint,unsubscribe,manual" doc:"Why (default manual)"`
	Detail    string     `json:"detail,omitempty" maxLength:"1000" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Free text: who asked, the ticket, …"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"Stop suppressing at this time (RFC 3339, in the future); omit to suppress for good"`

	strict strictBody // what checkJSON found
}

type suppressionCreateInput struct {
	Body SuppressionBody
}

type suppressionOutput struct {
	Body SuppressionResource
}

type emailInput struct {
	Email string `path:"email" doc:"The address, any case; path-escaped (a%2Bb%40example.com)"`
	Scope string `query:"scope" doc:"The suppression's scope: global (default), broadcast or a list id"`
}

type suppressionListInput struct {
	Reason string `query:"reason" enum:"hard_bounce,complaint,unsubscribe,manual," doc:"Only this reason"`
	Email  string `query:"email" doc:"Only this address (case-insensitive)"`
	Scope  string `query:"scope" doc:"Only this scope: global, broadcast or a list id"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

func (s *Server) registerSuppressions() {
	tags := []string{"Suppressions"}
	huma.Register(s.api, huma.Operation{
		OperationID: "list-suppressions", Method: http.MethodGet, Path: "/v1/suppressions", Tags: tags,
		Summary:     "List suppressions, newest first",
		Description: "The addresses postie does not send to. Expired suppressions are left out.",
		Errors:      []int{401, 422},
	}, s.suppressionList)
	huma.Register(s.api, huma.Operation{
		OperationID: "create-suppression", Method: http.MethodPost, Path: "/v1/suppressions", Tags: tags,
		Summary:       "Suppress an address",
		Description:   "Adds the address, or replaces its suppression: the latest cause is the one kept.",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.suppressionCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-suppression", Method: http.MethodGet, Path: "/v1/suppressions/{email}", Tags: tags,
		Summary: "Get the suppression of an address", Errors: []int{401, 404, 422},
	}, s.suppressionGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-suppression", Method: http.MethodDelete, Path: "/v1/suppressions/{email}", Tags: tags,
		Summary: "Remove the suppression of an address", DefaultStatus: http.StatusNoContent,
		Errors: []int{401, 404, 422},
	}, s.suppressionDelete)
}

// suppressedAddress validates an address given at location and returns the form suppressions are
// kept in: the bare address (A-label domain), lowercased.
// That is the contacts' email key (audience.EmailKey): a contact and its suppression meet on it.
func suppressedAddress(location, email string) (string, error) {
	key, err := audience.EmailKey(email)
	if err != nil {
		return "", huma.Error422UnprocessableEntity(location+": "+err.Error(),
			&huma.ErrorDetail{Location: location, Message: err.Error(), Value: email})
	}
	return key, nil
}

func (s *Server) suppressionCreate(ctx context.Context, in *suppressionCreateInput) (*suppressionOutput, error) {
	now := s.cfg.Now().UTC()
	p := &problem{prefix: "body"}
	email, err := suppressedAddress("body.email", in.Body.Email)
	if err != nil {
		return nil, err
	}
	sup := store.Suppression{Email: email, Scope: store.ScopeGlobal, Reason: in.Body.Reason, Detail: in.Body.Detail, CreatedAt: now}
	if sup.Reason == "" {
		sup.Reason = store.ReasonManual
	}
	if in.Body.Scope != "" {
		if err := checkScope(in.Body.Scope); err != "" {
			p.add("scope", err, in.Body.Scope)
		}
		sup.Scope = in.Body.Scope
	}
	if sup.Reason == store.ReasonHardBounce && sup.Scope != store.ScopeGlobal {
		p.add("scope", "a hard bounce stops every stream: its scope is global", in.Body.Scope)
	}
	if !slices.Contains(store.SuppressionReasons, sup.Reason) {
		p.add("reason", "must be one of "+strings.Join(store.SuppressionReasons, ", "), in.Body.Reason)
	}
	if e := in.Body.ExpiresAt; e != nil {
		if !e.After(now) {
			p.add("expires_at", "must be in the future", e)
		}
		sup.ExpiresAt = e.UTC()
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.SuppressionUpsert(ctx, []store.Suppression{sup}); err != nil {
		return nil, s.storeError(err, "suppression")
	}
	return &suppressionOutput{Body: toSuppressionResource(sup)}, nil
}

func (s *Server) suppressionGet(ctx context.Context, in *emailInput) (*suppressionOutput, error) {
	email, err := suppressedAddress("path.email", in.Email)
	if err != nil {
		return nil, err
	}
	scope, err := scopeParam(in.Scope)
	if err != nil {
		return nil, err
	}
	sup, err := s.cfg.Store.SuppressionGet(ctx, email, scope, s.cfg.Now().UTC())
	if err != nil {
		return nil, s.storeError(err, "suppression of "+email)
	}
	return &suppressionOutput{Body: toSuppressionResource(sup)}, nil
}

func (s *Server) suppressionDelete(ctx context.Context, in *emailInput) (*struct{}, error) {
	email, err := suppressedAddress("path.email", in.Email)
	if err != nil {
		return nil, err
	}
	scope, err := scopeParam(in.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.SuppressionDelete(ctx, email, scope); err != nil {
		return nil, s.storeError(err, "suppression of "+email)
	}
	return nil, nil
}

func (s *Server) suppressionList(ctx context.Context, in *suppressionListInput) (*pageOutput[SuppressionResource], error) {
	p := store.SuppressionListParams{Reason: in.Reason, Cursor: in.Cursor, Limit: in.Limit, Now: s.cfg.Now().UTC()}
	if in.Scope != "" {
		scope, err := scopeParam(in.Scope)
		if err != nil {
			return nil, err
		}
		p.Scope = scope
	}
	if in.Email != "" {
		email, err := suppressedAddress("query.email", in.Email)
		if err != nil {
			return nil, err
		}
		p.Email = email
	}
	page, next, err := s.cfg.Store.SuppressionList(ctx, p)
	if err != nil {
		return nil, s.storeError(err, "suppressions")
	}
	out := &pageOutput[SuppressionResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]SuppressionResource, len(page))
	for i, sup := range page {
		out.Body.Data[i] = toSuppressionResource(sup)
	}
	return out, nil
}

// checkScope says what is wrong with a suppression scope ("" when nothing): global, broadcast or
// a list id.
func checkScope(scope string) string {
	switch {
	case scope == store.ScopeGlobal, scope == store.ScopeBroadcast:
		return ""
	case strings.HasPrefix(scope, "lst_") && len(scope) <= 64 && !strings.ContainsFunc(scope, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-')
	}):
		return ""
	}
	return "must be global, broadcast or a list id (lst_…)"
}

// scopeParam checks the scope query parameter; "" is global.
func scopeParam(scope string) (string, error) {
	if scope == "" {
		return store.ScopeGlobal, nil
	}
	if msg := checkScope(scope); msg != "" {
		return "", huma.Error422UnprocessableEntity("query.scope: "+msg,
			&huma.ErrorDetail{Location: "query.scope", Message: msg, Value: scope})
	}
	return scope, nil
}
