// Package httpapi is postie's HTTP API v1: the one route table, authentication, idempotency, and
// the mapping of domain errors to RFC 9457 problem responses. Handlers translate HTTP into calls
// and results back; they hold no delivery logic. The OpenAPI 3.1 document, generated from the
// handlers' types by huma, is served at /v1/openapi.json.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/audience/imports"
	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/inbound"
	"github.com/postie/postie/internal/inflight"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/reputation"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
	"github.com/postie/postie/internal/webhook"
)

// Config configures the API.
type Config struct {
	Store   store.Store
	Logger  *slog.Logger
	Now     func() time.Time
	Version string

	PublicURL string // the API's base URL as clients reach it, for the OpenAPI servers ("" = relative)

	// Messages creates the messages sent; nil builds one on Store and Templates from
	// DefaultFrom, MaxRecipients, MaxMessageSize, MaxScheduleAhead, MessageTTL and MaxAttempts.
	Messages *message.Service

	DefaultFrom      string        // used when a message has no from
	MaxRecipients    int           // to+cc+bcc per message
	MaxBatch         int           // messages per batch request
	MaxMessageSize   int64         // encoded MIME octets
	MaxScheduleAhead time.Duration // how far send_at may be in the future
	MessageTTL       time.Duration // expires_at = due time + TTL
	MaxAttempts      int           // attempts per message (first try + retries)
	// BatchRenderBudget bounds the time to render and build all the items of one batch
	// (each render is also bounded on its own); 0 means DefaultBatchRenderBudget.
	BatchRenderBudget time.Duration

	// MaxInflightBytes bounds the request bodies of POST /v1/messages and /batch held at once
	// (see inflight.go); 0 is 2 × MaxMessageSize.
	MaxInflightBytes int64
	// InflightWait is how long a request waits for room in that budget before a 503; 0 is 2 s.
	InflightWait time.Duration
	// Inflight, when set, is that budget, shared with the node's other ways in (SMTP
	// submission); MaxInflightBytes and InflightWait are then not used.
	Inflight *inflight.Budget
	// WriteTimeout bounds the writing of a response: a client that does not take it within
	// this time is disconnected. /v1/messages/{id}/raw gets it from the moment its body starts;
	// 0 is 2 minutes.
	WriteTimeout time.Duration

	// Templates renders messages sent with a template and serves /v1/templates; nil builds one
	// on Store with the defaults.
	Templates *templates.Catalog
	// Imports spools and starts CSV imports (POST /v1/imports); nil answers 503.
	Imports *imports.Importer

	// TemplateLoadErrors reports the files of POSTIE_TEMPLATES_DIR that are not served as
	// written (nil when there is no directory).
	TemplateLoadErrors func() []templates.LoadError

	// Audience serves /v1/contacts and /v1/lists; nil builds one on Store (without an erasure
	// key: erasure is then refused).
	Audience *audience.Service
	// Campaigns serves /v1/campaigns; nil builds one on Store that runs no campaign (the app
	// passes the one it serves).
	Campaigns *campaign.Service
	// Notify serves /v1/events and /v1/triggers; nil builds one on Store that works no action
	// (the app passes the one it serves).
	Notify *notify.Service
	// Webhooks serves /v1/webhooks; nil builds one on Store with the default policy (https, no
	// refused address) that sends nothing (the app passes the one it serves).
	Webhooks *webhook.Service
	// Reputation serves /v1/streams; nil builds one on Store with the default thresholds (the
	// app passes the one it runs).
	Reputation *reputation.Service
	// SES receives SES notifications at POST /v1/inbound/ses; nil refuses them (403).
	SES *inbound.SES

	// Metrics counts the requests (observe.go); nil counts nothing.
	Metrics *metrics.Metrics
	// ServeMetrics serves Metrics at GET /metrics, behind an API key like any route (the app
	// sets it when there is no admin listener).
	ServeMetrics bool
	// Keys checks the bearer tokens and keeps the keys' rate limits: the node's one Checker,
	// shared with SMTP submission; nil builds one on Store.
	Keys *apikey.Checker
	// Errors takes the panics recovered in handlers and the unexpected errors answered with
	// a 500 (a store failure); nil logs them (errtrack.Log).
	Errors errtrack.Reporter
}

// DefaultBatchRenderBudget is Config.BatchRenderBudget when zero.
const DefaultBatchRenderBudget = 10 * time.Second

// Server is the HTTP handler of the API.
type Server struct {
	cfg  Config
	log  *slog.Logger
	api  huma.API
	mux  *http.ServeMux
	keys *apikey.Checker // the bearer tokens

	messages *message.Service  // creates the messages sent
	audience *audience.Service // contacts and lists
	segments *audience.Segments

	campaigns *campaign.Service // campaigns and their runs
	notify    *notify.Service   // events and triggers
	webhooks  *webhook.Service  // webhook endpoints and their deliveries

	reputation *reputation.Service // stream rates and pauses

	bodyLimit int64            // of POST /v1/messages; a batch may be twice as large
	inflight  *inflight.Budget // the budget of large request bodies in flight

	stopping atomic.Bool // set by Stopping: /readyz answers 503
}

// defaultWriteTimeout is Config.WriteTimeout's default.
const defaultWriteTimeout = 2 * time.Minute

type ctxKey struct{}

// New builds the API.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Errors = errtrack.OrLog(cfg.Errors, cfg.Logger)
	if cfg.Templates == nil {
		cfg.Templates = templates.New(templates.Config{Store: cfg.Store, Logger: cfg.Logger, Now: cfg.Now})
	}
	if cfg.BatchRenderBudget <= 0 {
		cfg.BatchRenderBudget = DefaultBatchRenderBudget
	}
	if cfg.TemplateLoadErrors == nil {
		cfg.TemplateLoadErrors = func() []templates.LoadError { return nil }
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = 2 * cfg.MaxMessageSize
	}
	if cfg.InflightWait <= 0 {
		cfg.InflightWait = defaultInflightWait
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "httpapi"), mux: http.NewServeMux(),
		keys:      cfg.Keys,
		bodyLimit: cfg.MaxMessageSize + 1<<20, // JSON and base64 framing around the largest message
		inflight:  cfg.Inflight}
	if s.inflight == nil {
		s.inflight = inflight.New(cfg.MaxInflightBytes, cfg.InflightWait)
	}
	if s.keys == nil {
		s.keys = apikey.New(cfg.Store, cfg.Now)
	}
	if s.messages = cfg.Messages; s.messages == nil {
		s.messages = message.New(message.Config{
			Store: cfg.Store, Templates: cfg.Templates, DefaultFrom: cfg.DefaultFrom,
			MaxRecipients: cfg.MaxRecipients, MaxMessageSize: cfg.MaxMessageSize,
			MaxScheduleAhead: cfg.MaxScheduleAhead, MessageTTL: cfg.MessageTTL, MaxAttempts: cfg.MaxAttempts,
		})
	}

	if s.audience = cfg.Audience; s.audience == nil {
		s.audience = audience.New(audience.Config{Store: cfg.Store, Now: cfg.Now, Logger: cfg.Logger})
	}

	hc := huma.DefaultConfig("postie", cfg.Version)
	hc.CreateHooks = nil // no $schema links in bodies
	hc.OpenAPIPath = "/v1/openapi"
	hc.DocsPath = "" // huma's page loads its viewer from a CDN: serveDocs serves one that needs nothing
	hc.SchemasPath = "/v1/schemas"
	hc.Info.Description = "postie accepts email over HTTP, stores it durably, and delivers it. " +
		"Every request needs `Authorization: Bearer <API key>`. Errors are RFC 9457 problem documents " +
		"whose `errors[].location` names the offending field (e.g. `body.to[0]`)."
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "an API key"},
	}
	hc.Security = []map[string][]string{{"bearer": {}}}
	hc.Transformers = append(hc.Transformers, capProblems, s.reportUnexpected)
	hc.Servers = []*huma.Server{{URL: strings.TrimRight(cfg.PublicURL, "/"), Description: "this postie (POSTIE_PUBLIC_URL)"}}
	if cfg.PublicURL == "" {
		hc.Servers[0] = &huma.Server{URL: "/", Description: "the server that serves this document (set POSTIE_PUBLIC_URL to name it)"}
	}
	s.api = humago.New(s.mux, hc)

	s.mux.HandleFunc("GET /v1/docs", serveDocs)
	s.mux.HandleFunc("GET /healthz", Healthz)
	s.mux.Handle("GET /readyz", ReadyUnlessStopping(&s.stopping, Readyz(cfg.Store, s.log)))
	if cfg.ServeMetrics && cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	s.registerMessages()
	s.registerSuppressions()
	s.registerTemplates()
	s.registerSources()
	s.registerContacts()
	s.registerLists()
	s.registerSegments()
	s.registerImports()
	s.registerCampaigns()
	if s.notify = cfg.Notify; s.notify == nil {
		s.notify = notify.New(notify.Config{Store: cfg.Store, Messages: s.messages, Templates: cfg.Templates,
			Logger: cfg.Logger, Now: cfg.Now})
	}
	s.registerEvents()
	s.registerTriggers()
	s.registerWebhooks()
	if s.reputation = cfg.Reputation; s.reputation == nil {
		s.reputation = reputation.New(reputation.Config{Store: cfg.Store, Now: cfg.Now, Logger: cfg.Logger})
	}
	s.registerStreams()
	s.registerInbound()
	s.registerSES()
	s.registerAPIKeys()
	s.documentScopes()
	s.finishDocument()
	return s
}

// API exposes the huma API (for the OpenAPI document in tests and docs).
func (s *Server) API() huma.API { return s.api }

// public paths need no API key.
func public(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/v1/openapi.json", "/v1/openapi.yaml", "/v1/openapi-3.0.json",
		"/v1/openapi-3.0.yaml", "/v1/docs",
		sesPath: // authenticated by the SNS signature
		return true
	}
	return strings.HasPrefix(path, "/v1/schemas/")
}

// Healthz answers 200 "ok" while the process serves HTTP (liveness).
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Readyz answers 200 "ready" when st answers (Store.Ping within 2 s), else 503 (readiness).
func Readyz(st store.Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			log.Warn("readiness check failed", "err", err)
			http.Error(w, "database unavailable\n", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	})
}

// route authenticates and dispatches a request (ServeHTTP, in observe.go, calls it).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if public(r.URL.Path) {
		s.mux.ServeHTTP(w, r)
		return
	}
	key, err := s.authenticate(r)
	if err != nil {
		if !errors.Is(err, errUnauthorized) {
			s.log.Error("authenticating a request failed", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "could not check the API key; try again")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="postie"`)
		writeProblem(w, http.StatusUnauthorized, "missing or invalid API key: send Authorization: Bearer <key>")
		return
	}
	setKeyID(r.Context(), key.ID)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, key))
	if !s.permitted(w, r) {
		return
	}
	if limit, readTimeout := s.largeBody(r); limit > 0 {
		s.serveLarge(w, r, limit, readTimeout)
		return
	}
	s.mux.ServeHTTP(w, r)
}

var errUnauthorized = errors.New("unauthorized")

func (s *Server) authenticate(r *http.Request) (store.APIKey, error) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return store.APIKey{}, errUnauthorized
	}
	k, err := s.keys.Check(r.Context(), secret)
	if errors.Is(err, apikey.ErrUnauthorized) {
		return store.APIKey{}, errUnauthorized
	}
	return k, err
}

// apiKeyFrom returns the authenticated key of a request context.
func apiKeyFrom(ctx context.Context) store.APIKey {
	k, _ := ctx.Value(ctxKey{}).(store.APIKey)
	return k
}

// writeProblem writes an RFC 9457 problem outside huma (auth failures).
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(huma.ErrorModel{
		Title: http.StatusText(status), Status: status, Detail: detail,
	})
}

// messageError maps an error of the message service to a problem response: the one place that
// does. prefix is where the message's fields are in the HTTP request ("body",
// "body.messages[3]"). An error without problems is a store failure, worded by storeError.
func (s *Server) messageError(err error, prefix string) error {
	var p *fanout.Panic
	if errors.As(err, &p) {
		// One item of a batch panicked (composed on a fanout goroutine): it fails alone.
		s.cfg.Errors.Panic(context.Background(), "httpapi message item", p.Value, p.Stack)
		return huma.Error500InternalServerError(internalDetail)
	}
	var me *message.Error
	if !errors.As(err, &me) {
		return err
	}
	if len(me.Problems) == 0 {
		return s.storeError(me.Err, me.Subject)
	}
	return problemError(prefix, me.Kind, me.Problems)
}

// problemError is the problem response listing ps, the problems of the request at prefix: each
// located at prefix.field, the detail naming the one problem or saying "validation failed". A
// conflict or a not-found problem without a field is about the resource, not a field: it has no
// location, and the detail is its message ("campaign cmp_… is running").
func problemError(prefix string, kind message.Kind, ps []message.Problem) error {
	status := http.StatusUnprocessableEntity
	switch kind {
	case message.KindMalformed:
		status = http.StatusBadRequest
	case message.KindTooLarge:
		status = http.StatusRequestEntityTooLarge
	case message.KindNotFound:
		status = http.StatusNotFound
	case message.KindConflict:
		status = http.StatusConflict
	case message.KindUnavailable:
		status = http.StatusServiceUnavailable
	case message.KindInternal:
		status = http.StatusInternalServerError
	case message.KindForbidden:
		status = http.StatusForbidden
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		loc := prefix
		if p.Field != "" {
			loc += "." + p.Field
		} else if status == http.StatusConflict || status == http.StatusNotFound {
			loc = ""
		}
		errs[i] = &huma.ErrorDetail{Location: loc, Message: p.Message, Value: p.Value}
	}
	detail := "validation failed"
	if len(ps) == 1 {
		d := errs[0].(*huma.ErrorDetail)
		if detail = d.Message; d.Location != "" {
			detail = d.Location + ": " + d.Message
		}
	}
	return huma.NewError(status, detail, errs...)
}

// storeError maps a store error to a problem response: the one place that does.
func (s *Server) storeError(err error, what string) error {
	var purged *store.BodyPurgedError
	switch {
	case errors.As(err, &purged):
		return huma.Error410Gone("the body of " + what + " was purged at " + purged.At.UTC().Format(time.RFC3339) +
			" after POSTIE_RETAIN_BODIES; its metadata and timeline are kept, but it cannot be read or sent again")
	case errors.Is(err, store.ErrNotFound):
		return huma.Error404NotFound(what + " not found")
	case errors.Is(err, store.ErrConflict):
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, store.ErrBadCursor):
		return huma.Error422UnprocessableEntity("query.cursor: not a cursor this listing returned",
			&huma.ErrorDetail{Location: "query.cursor", Message: "not a cursor this listing returned; pass next_cursor back unchanged"})
	case errors.Is(err, store.ErrBadText):
		return huma.Error422UnprocessableEntity("text values must not contain U+0000 (NUL)",
			&huma.ErrorDetail{Message: "a value in the request contains U+0000 (NUL), which cannot be stored"})
	case errors.Is(err, store.ErrIdempotencyMismatch):
		return huma.Error409Conflict("this Idempotency-Key was already used with a different request body")
	case errors.Is(err, store.ErrUnavailable):
		s.log.Warn("database unavailable", "what", what, "err", err)
		return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("the database is unavailable; retry shortly "+
			"(with the same Idempotency-Key to be sure a message is stored once)"), http.Header{"Retry-After": {"2"}})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return huma.Error503ServiceUnavailable("the request was cancelled or timed out before the database answered; " +
			"retry with the same Idempotency-Key to be sure it is stored once")
	}
	s.cfg.Errors.Error(context.Background(), "httpapi store", fmt.Errorf("%s: %w", what, err))
	return huma.Error500InternalServerError(internalDetail)
}
