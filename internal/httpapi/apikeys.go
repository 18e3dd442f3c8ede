package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// APIKeyBody creates an API key.
type APIKeyBody struct {
	Name          string   `json:"name,omitempty" maxLength:"200" doc:"What the key is for, shown in listings" example:"shop checkout"`
	Scopes        []string `json:"scopes,omitempty" doc:"Required: what the key may do: send, read, templates, audience, campaigns, admin (admin holds every other scope)" example:"[\"send\",\"read\"]"`
	SenderDomains []string `json:"sender_domains,omitempty" maxItems:"100" doc:"The From domains the key may send from, exactly (a subdomain is listed itself); absent or empty: any" example:"[\"shop.example\"]"`
	RateLimit     float64  `json:"rate_limit,omitempty" doc:"Messages per second the key may send, on each node (a batch of 100 counts 100); 0: no limit" example:"10"`
	Burst         int      `json:"burst,omitempty" doc:"Messages the key may send at once when rate_limit is set; 0: a second's worth of rate_limit" example:"50"`

	strict strictBody
}

// APIKeyResource is an API key as the API shows it: never its secret nor its hash.
type APIKeyResource struct {
	ID            string     `json:"id" example:"key_01jd8x2k3m4n5p6q7r8s9t0v1w"`
	Name          string     `json:"name"`
	Prefix        string     `json:"prefix" doc:"The first characters of the secret, to recognise it" example:"pk_Zx81a"`
	Scopes        []string   `json:"scopes"`
	SenderDomains []string   `json:"sender_domains" doc:"Empty: any From domain"`
	RateLimit     float64    `json:"rate_limit" doc:"Messages per second on each node; 0: no limit"`
	Burst         int        `json:"burst"`
	CreatedAt     time.Time  `json:"created_at"`
	LastUsedAt    *time.Time `json:"last_used_at,omitempty" doc:"When the key last authenticated, to the minute; absent: never"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty" doc:"When the key was revoked; absent: it is live"`
	Secret        string     `json:"secret,omitempty" doc:"The key itself (pk_…), in the answer to its creation only: it is not stored and cannot be shown again"`
}

type apiKeyCreateInput struct {
	Body APIKeyBody
}

type apiKeyIDInput struct {
	ID string `path:"id" doc:"The key (key_…)"`
}

type apiKeyOutput struct {
	Body APIKeyResource
}

type apiKeysOutput struct {
	Body struct {
		Data []APIKeyResource `json:"data" doc:"Oldest first, revoked keys included"`
	}
}

func (s *Server) registerAPIKeys() {
	tags := []string{"API keys"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-api-key", Method: http.MethodPost, Path: "/v1/api-keys", Tags: tags,
		Summary:       "Create an API key",
		Description:   "Answers the key with its secret, shown this once: only its SHA-256 is stored.",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.apiKeyCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-api-keys", Method: http.MethodGet, Path: "/v1/api-keys", Tags: tags,
		Summary: "List the API keys, oldest first, revoked ones included", Errors: []int{401},
	}, s.apiKeyList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-api-key", Method: http.MethodGet, Path: "/v1/api-keys/{id}", Tags: tags,
		Summary: "Get an API key", Errors: []int{401, 404},
	}, s.apiKeyGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "revoke-api-key", Method: http.MethodDelete, Path: "/v1/api-keys/{id}", Tags: tags,
		Summary: "Revoke an API key",
		Description: "The key is refused at once on the node that answers, and within " + apikey.CacheTTL.String() +
			" on the others; it stays listed with its revocation time. Revoking a revoked key changes nothing.",
		Errors: []int{401, 404},
	}, s.apiKeyRevoke)
}

func (s *Server) apiKeyCreate(ctx context.Context, in *apiKeyCreateInput) (*apiKeyOutput, error) {
	set := apikey.Settings{Scopes: in.Body.Scopes, SenderDomains: in.Body.SenderDomains, RateLimit: in.Body.RateLimit,
		Burst: in.Body.Burst}
	if ps := set.Normalize(); len(ps) > 0 {
		mps := make([]message.Problem, len(ps))
		for i, p := range ps {
			mps[i] = message.Problem{Field: p.Field, Message: p.Message}
		}
		return nil, problemError("body", message.KindInvalid, mps)
	}
	secret, k, err := apikey.Generate(strings.TrimSpace(in.Body.Name), s.cfg.Now())
	if err != nil {
		return nil, err
	}
	k.Scopes, k.SenderDomains, k.RateLimit, k.Burst = set.Scopes, set.SenderDomains, set.RateLimit, set.Burst
	if err := s.cfg.Store.APIKeyCreate(ctx, k); err != nil {
		return nil, s.storeError(err, "API key")
	}
	out := &apiKeyOutput{Body: toAPIKeyResource(k)}
	out.Body.Secret = secret
	return out, nil
}

func (s *Server) apiKeyList(ctx context.Context, _ *struct{}) (*apiKeysOutput, error) {
	ks, err := s.cfg.Store.APIKeyList(ctx)
	if err != nil {
		return nil, s.storeError(err, "API keys")
	}
	out := &apiKeysOutput{}
	out.Body.Data = make([]APIKeyResource, len(ks))
	for i, k := range ks {
		out.Body.Data[i] = toAPIKeyResource(k)
	}
	return out, nil
}

func (s *Server) apiKeyGet(ctx context.Context, in *apiKeyIDInput) (*apiKeyOutput, error) {
	k, err := s.cfg.Store.APIKeyGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "API key "+in.ID)
	}
	return &apiKeyOutput{Body: toAPIKeyResource(k)}, nil
}

func (s *Server) apiKeyRevoke(ctx context.Context, in *apiKeyIDInput) (*apiKeyOutput, error) {
	k, err := s.cfg.Store.APIKeyRevoke(ctx, in.ID, s.cfg.Now().UTC())
	if err != nil {
		return nil, s.storeError(err, "API key "+in.ID)
	}
	s.keys.Revoked(k)
	return &apiKeyOutput{Body: toAPIKeyResource(k)}, nil
}

func toAPIKeyResource(k store.APIKey) APIKeyResource {
	r := APIKeyResource{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, SenderDomains: k.SenderDomains,
		RateLimit: k.RateLimit, Burst: k.Burst, CreatedAt: k.CreatedAt}
	if r.Scopes == nil {
		r.Scopes = []string{}
	}
	if r.SenderDomains == nil {
		r.SenderDomains = []string{}
	}
	if !k.LastUsedAt.IsZero() {
		r.LastUsedAt = &k.LastUsedAt
	}
	if !k.RevokedAt.IsZero() {
		r.RevokedAt = &k.RevokedAt
	}
	return r
}

var apiKeyBodyShape = shapeOf(reflect.TypeFor[APIKeyBody]())

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *APIKeyBody) UnmarshalJSON(data []byte) error {
	type plain APIKeyBody
	return b.strict.decode(data, (*plain)(b), apiKeyBodyShape)
}

func (b *APIKeyBody) Resolve(huma.Context) []error { return b.strict.errors() }
