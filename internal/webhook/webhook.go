// Package webhook owns postie's outbound webhooks: the endpoints' validation and secrets, and
// the sender that delivers the outbox (store.Webhooks' delivery rows) to them, signed per the
// Standard Webhooks specification, retried, and kept from reaching what it must not (SSRF).
//
// # Sending
//
// Deliveries are rows claimed by lease, like messages. Serve claims due deliveries (oldest due
// first) into free sender slots: Concurrency requests in flight at most, each with its own
// goroutine, and at most a quarter of them (perEndpoint) for one endpoint, whose further
// deliveries are left unclaimed (WebhookClaimParams.ExceptEndpoints) while it has that many, so
// a slow or hanging receiver never holds up the others' deliveries (no head-of-line blocking).
// A claim's payloads are built before it is dispatched, reading each message it names once.
// Each request has Timeout; the lease covers the longest wait a claimed delivery can have
// (leaseFor), so leases need no renewal. Outcomes are recorded in batches (WebhookFinish) by one
// finisher. A node that stops lets its in-flight requests end, records them, and hands the rest
// of its leases back; a node that dies leaves leases that end, and any node claims the rows
// again: delivery is at least once, and receivers deduplicate on webhook-id.
//
// # Retries and disabling
//
// A 2xx is delivered. Anything else (another status, a redirect, which is never followed, a
// refused or failed connection, a timeout) is a failed attempt: the delivery is tried again
// after RetryDelays[n-1] (±20% jitter) for its n-th failed attempt, and is failed once the
// ladder is used up (1 + len(RetryDelays) attempts). WebhookRetry and WebhookReplay make it
// pending again with the same webhook-id. The store keeps each endpoint's FailingSince (its
// first failure since its last success); an endpoint still failing DisableAfter after that is
// disabled with the reason, which reports webhook.disabled to the other endpoints and fails its
// pending deliveries (WebhookReplay sends them again once it is enabled).
//
// # Safety
//
// A URL must be absolute https (or http with Policy.AllowHTTP), without credentials, and must
// not name a refused address (Policy.CheckAddr: loopback, private, link-local and metadata,
// CGNAT, multicast, reserved) when saved. Names are resolved again for every connection and
// each address is checked by the dialer as it connects (net.Dialer.Control), so DNS rebinding
// does not get around the check. No proxy from the environment is used; response bodies are
// read up to 64 KiB and 1 KiB is kept.
package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/store"
)

// Store is what the webhook service needs of the store: the webhooks area, and the messages
// payloads describe.
type Store interface {
	store.Webhooks
	MessageGet(ctx context.Context, id string) (store.Message, error)
}

// DefaultRetryDelays is Config.RetryDelays' default: 8 attempts over about 28 hours.
var DefaultRetryDelays = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Defaults of Config.
const (
	DefaultDisableAfter = 72 * time.Hour
	DefaultTimeout      = 10 * time.Second
	DefaultConcurrency  = 128
	defaultPoll         = 5 * time.Second
)

// Config configures the service.
type Config struct {
	Store  Store
	Policy Policy
	// RetryDelays: the waits after each failed attempt (default DefaultRetryDelays).
	RetryDelays []time.Duration
	// DisableAfter: an endpoint failing for this long is disabled (default 72h).
	DisableAfter time.Duration
	// Timeout bounds each request, from the connection to the end of the response (default 10s).
	Timeout time.Duration
	// Concurrency: requests in flight at most (default 128).
	Concurrency int
	// Owner names this node's process in the leases it takes (as delivery's owners do).
	Owner  string
	Now    func() time.Time
	Logger *slog.Logger
	// Errors takes the panics recovered while sending a delivery; nil logs them.
	Errors errtrack.Reporter
	// Resolve resolves receivers' host names (default: the system's resolver).
	Resolve Resolver
	// Poll is the longest Serve waits without a wakeup before it looks for due deliveries.
	Poll time.Duration
	// UserAgent is the User-Agent of the requests (default "postie-webhooks").
	UserAgent string
}

// Service manages endpoints and sends their deliveries.
type Service struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	wake   chan struct{} // a retry or replay made deliveries due
	claims atomic.Int64  // numbers each claim's owner (claimOwner)
}

// claimOwner is the lease owner of one claim: Owner and the claim's number. A result recorded
// late, after its lease ended and this node claimed the delivery again, then no longer matches
// the new lease and changes nothing; releasing by the Owner prefix still covers every claim.
func (s *Service) claimOwner() string {
	return s.cfg.Owner + "/" + strconv.FormatInt(s.claims.Add(1), 10)
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.RetryDelays == nil {
		cfg.RetryDelays = DefaultRetryDelays
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Errors = errtrack.OrLog(cfg.Errors, cfg.Logger)
	if cfg.Resolve == nil {
		cfg.Resolve = defaultResolver
	}
	if cfg.Poll <= 0 {
		cfg.Poll = defaultPoll
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "postie-webhooks"
	}
	if cfg.Owner == "" {
		cfg.Owner = "webhook"
	}
	d := newDialer(cfg.Policy, cfg.Resolve, cfg.Timeout)
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would connect for us, past the address check
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           cfg.Concurrency * 2,
		MaxIdleConnsPerHost:    cfg.Concurrency,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout,
		// Redirects are not followed: the response is the answer, a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "webhook"), client: client,
		wake: make(chan struct{}, 1)}
}

// Policy is the URL and address policy the service applies.
func (s *Service) Policy() Policy { return s.cfg.Policy }

// notify wakes Serve: deliveries may be due.
func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
