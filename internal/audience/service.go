// Package audience owns who postie writes to: contacts (identity by email key), lists,
// subscriptions and their consent records, erasure, segments (the filter language), and the
// signed links of unsubscribe, preferences and double opt-in. It validates input and calls the
// store; the HTTP API, the public pages (web), CSV imports (imports) and database sync (dbsync)
// are thin layers over it.
package audience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// DefaultMaxBatch is Config.MaxBatch when zero: contacts per upsert batch.
const DefaultMaxBatch = 1000

// Config configures a Service.
type Config struct {
	Store  store.Audience
	Now    func() time.Time
	Logger *slog.Logger
	// ErasureKey is the HMAC key of erased contacts' suppressions (ErasedKey). Without one,
	// erasure is refused (ErrNoErasureKey): a suppression keyed by a plain hash could be
	// reversed.
	ErasureKey []byte
	// OnPending, when set, is called after a change made subscriptions pending (a double
	// opt-in list): it sends the confirmation message. It runs in the request that made the
	// change; a failure is its own to log.
	OnPending func(ctx context.Context, contactID string, listIDs []string)
	// MaxBatch bounds the contacts of one upsert; 0 means DefaultMaxBatch.
	MaxBatch int
}

// Service is the audience's operations. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "audience")}
}

// MaxBatch is the most contacts one upsert takes.
func (s *Service) MaxBatch() int { return s.cfg.MaxBatch }

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Errors of the service besides *InvalidError and the store's sentinels.
var (
	// ErrBatchTooLarge: more contacts than MaxBatch in one upsert.
	ErrBatchTooLarge = errors.New("too many contacts in one batch")
	// ErrNoErasureKey: erasure asked for without Config.ErasureKey.
	ErrNoErasureKey = errors.New("erasure needs a secret key (POSTIE_SECRET_KEY) and none is configured")
)

// Problem is one thing wrong with the input: the field (as the API names it, relative to the
// item: "email", "lists[2]"; "" for the item as a whole), what is wrong, and the value.
type Problem struct {
	Field   string
	Message string
	Value   any
}

// InvalidError is input the service refuses; nothing of it was stored.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Message
		if p.Field != "" {
			parts[i] = p.Field + ": " + p.Message
		}
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// invalid collects problems.
type invalid struct{ list []Problem }

func (v *invalid) add(field, msg string, value any) {
	v.list = append(v.list, Problem{Field: field, Message: msg, Value: value})
}

func (v *invalid) err() error {
	if len(v.list) == 0 {
		return nil
	}
	return &InvalidError{Problems: v.list}
}

// pending tells OnPending of the subscriptions a change made pending.
func (s *Service) pending(ctx context.Context, contactID string, lists []string) {
	if s.cfg.OnPending != nil && len(lists) > 0 {
		s.cfg.OnPending(ctx, contactID, lists)
	}
}

// wrap names the operation of a store error, keeping it testable with errors.Is.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
