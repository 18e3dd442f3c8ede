// Package campaign owns campaigns: their lifecycle (draft, scheduled, running, paused,
// finished, cancelled), their schedules (once, at a time, or recurring by cron in a time zone),
// and the runs that turn an audience into messages, a bounded window ahead of the send rate,
// through package message onto the broadcast stream. Nothing about a run lives only in memory:
// every step is one store transaction (store.Campaigns), and runs are worked under a lease.
package campaign

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Config configures a Service.
type Config struct {
	Store     store.Store
	Messages  *message.Service
	Templates *templates.Catalog
	// Segments parses the filters of segment audiences; nil builds one on Store.
	Segments *audience.Segments
	Owner    string        // this node's lease owner
	Lease    time.Duration // how long a run stays with one node without renewal
	Logger   *slog.Logger
	// Errors takes the panics recovered in runs; nil logs them.
	Errors errtrack.Reporter
	Now    func() time.Time

	MessageTTL time.Duration // a held message gets at least this much left when its run resumes
	// Window is how many of a run's messages may wait to be sent at once (created, not yet
	// handed to a relay); messages are created as that many go out.
	Window int
	// DailyQuota is the transport's daily quota (0: none) and QuotaShare the part of it
	// campaigns may use (the rest is kept for transactional mail).
	DailyQuota int
	QuotaShare float64
	// MissedGrace: an occurrence missed while postie was down runs once at start when it is
	// at most this old, and is skipped otherwise.
	MissedGrace time.Duration
	// ComplaintRate pauses a run whose complaints reach this share of its sent messages
	// (once at least ComplaintMinSent were sent); 0: never.
	ComplaintRate    float64
	ComplaintMinSent int

	// MaxRuns is how many runs this node works at once (0: DefaultMaxRuns).
	MaxRuns int
	// Poll is how often Serve looks for due campaigns and runs to take over when nothing
	// wakes it sooner (0: DefaultPoll).
	Poll time.Duration
}

// Defaults of Config.
const (
	DefaultWindow        = 2000
	DefaultQuotaShare    = 0.8
	DefaultMissedGrace   = time.Hour
	DefaultComplaintRate = 0.003
	DefaultComplaintMin  = 1000
	DefaultMaxRuns       = 4
	DefaultPoll          = time.Second
	DefaultLease         = time.Minute
	// minMissedGrace: an occurrence is found due a poll after it comes, not at its instant.
	minMissedGrace = time.Minute
)

// MaxTestRecipients is the most addresses of one test send.
const MaxTestRecipients = 50

// Input is a campaign as the API gives it: on create every field that is set; on update
// (PATCH) only the non-nil ones change.
type Input struct {
	Name            *string
	Template        *string
	TemplateVersion *int
	Lists           *[]string
	Segment         *string
	From            *string
	ReplyTo         *string
	Subject         *string
	Data            json.RawMessage // nil: unchanged (update) or none (create); JSON null clears
	Tags            *[]string
	Rate            *float64
	Schedule        *store.Schedule
	Cap             *store.FrequencyCap
	ResumeNextDay   *bool
}

// RunView is a run with its progress: counts per recipient state, the recent send rate and an
// estimate of when it ends.
type RunView struct {
	store.Run
	Progress store.RunProgress
	Rate     float64   // messages handed to the relay per second, over the last minute
	ETA      time.Time // zero when unknown or finished
}

// TestParams is a test send: the campaign's message to each of To (at most
// MaxTestRecipients), marked as a test, rendered with a contact whose email is the address
// and whose other fields are empty, with Contact's members laid over it.
type TestParams struct {
	To      []string
	Contact map[string]any
}

// Service manages campaigns and works their runs. It is safe for concurrent use.
type Service struct {
	cfg      Config
	log      *slog.Logger
	segments *audience.Segments
	wake     chan struct{} // a run was started or resumed here: work it now
	matWake  chan struct{} // the same for Serve's materialiser

	mu   sync.Mutex
	runs map[string]*runState // the runs this node holds the lease of, by id
	// restoreGC ends the collector's faster pace, set while runs is not empty (package bulkgc).
	restoreGC func()
	samples   map[string][]sample // recent progress of runs, for their rate and ETA
	counted   map[string]counted  // the latest counts of large runs, shared by readers (view)
	quota     time.Time           // when paused campaigns were last looked at for a new day's quota
	lookedAt  time.Time           // when due campaigns and free runs were last looked for
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
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = DefaultMaxRuns
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.QuotaShare <= 0 || cfg.QuotaShare > 1 {
		cfg.QuotaShare = DefaultQuotaShare
	}
	if cfg.MissedGrace < minMissedGrace {
		cfg.MissedGrace = minMissedGrace
	}
	if cfg.ComplaintMinSent <= 0 {
		cfg.ComplaintMinSent = DefaultComplaintMin
	}
	segs := cfg.Segments
	if segs == nil {
		st := cfg.Store
		segs = audience.NewSegments(audience.SegmentsConfig{Store: st, Now: cfg.Now,
			ListExists: func(ctx context.Context, id string) error {
				_, err := st.ListGet(ctx, id)
				return err
			}})
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "campaign"), segments: segs,
		wake: make(chan struct{}, 1), matWake: make(chan struct{}, 1), runs: map[string]*runState{}, samples: map[string][]sample{}, counted: map[string]counted{}}
}

// now is the service's clock, as stored.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }
