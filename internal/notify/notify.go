// Package notify owns events in, notifications out: application events (validated, stored
// once per client id, their contact upserted), the triggers they match (an event name and a
// condition over its data → send a template to someone, at once or after a delay, unless a
// cancelling event comes, collected into digests, capped per recipient), and the action worker
// that turns due actions into messages through package message.
//
// Accepting: each event is validated, matched against the enabled triggers (cached in memory,
// reloaded after a change on this node and every few seconds for the others), and handed to
// the store with the actions its triggers create and the cancel keys it satisfies, all in one
// transaction (store.Notify.EventsAccept). Nothing but that transaction touches the store per
// event.
//
// Working: the worker claims due actions by lease (woken by ActionWakeups, and at the next due
// time), resolves each one's recipients (the event's contact, fixed addresses, a list's
// subscribed contacts, or addresses in the event's data), leaves out those who unsubscribed
// when the trigger honours unsubscribes, composes one message per recipient through
// message.Service.Compose (the event's data as .data, the event as .event, the digest's events
// as .events, the contact as .contact), and finishes the action with its messages in one
// transaction (store.Notify.ActionFinish, which applies the frequency cap). A node that dies
// leaves leases that end; another node finishes its actions.
package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Store is the part of the store the service uses.
type Store interface {
	store.Notify
	ListGet(ctx context.Context, id string) (store.List, error)
	ContactGet(ctx context.Context, ref store.ContactRef) (store.Contact, error)
	ContactList(ctx context.Context, p store.ContactListParams) ([]store.Contact, string, error)
	SuppressionMatch(ctx context.Context, emails, scopes []string, now time.Time) (map[string][]store.Suppression, error)
}

// Config configures a Service.
type Config struct {
	Store     Store
	Messages  *message.Service
	Templates *templates.Catalog // checks that a trigger's template exists
	Owner     string             // this node's lease owner
	Lease     time.Duration      // how long a claimed action stays with this node
	Logger    *slog.Logger
	Now       func() time.Time
	// Errors takes the panics recovered while working an action; nil logs them.
	Errors errtrack.Reporter

	// Refresh is how old the cached triggers may be before an event reloads them (changes made
	// on other nodes); 0 is DefaultRefresh.
	Refresh time.Duration
	// Poll is how often the worker looks for due actions when nothing wakes it; 0 is
	// DefaultPoll.
	Poll time.Duration
	// Batch is how many actions one claim takes; 0 is DefaultBatch.
	Batch int
	// Retention is how long events are kept after they occurred (POSTIE_EVENT_RETENTION): an
	// event that occurred longer ago is refused, since its id could not be kept; 0: no limit.
	Retention time.Duration
}

// Defaults of Config.
const (
	DefaultRefresh = 5 * time.Second
	DefaultPoll    = 5 * time.Second
	DefaultBatch   = 100
	DefaultLease   = time.Minute
)

// Service accepts events, manages triggers and works actions. It is safe for concurrent use.
type Service struct {
	cfg      Config
	log      *slog.Logger
	triggers triggerCache
	wake     chan struct{}
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Errors = errtrack.OrLog(cfg.Errors, cfg.Logger)
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "notify"), wake: make(chan struct{}, 1)}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// problems collects the problems of one input, as message.Problems (the API words them).
type problems []message.Problem

func (p *problems) add(field, msg string, value any) {
	*p = append(*p, message.Problem{Field: field, Message: msg, Value: value})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &message.Error{Kind: message.KindInvalid, Problems: p}
}
