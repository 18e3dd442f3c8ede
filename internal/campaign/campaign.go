// Package campaign owns campaigns: their lifecycle (draft, scheduled, running, paused,
// finished, cancelled), their schedules (once, at a time, or recurring by cron in a time zone),
// and the runs that turn an audience into messages, a bounded window ahead of the send rate,
// through package message onto the broadcast stream. Nothing about a run lives only in memory:
// every step is one store transaction (store.Campaigns), and runs are worked under a lease.
package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Config configures a Service.
type Config struct {
	Store     store.Store
	Messages  *message.Service
	Templates *templates.Catalog
	Audience  *audience.Service // parses segment filters
	Owner     string            // this node's lease owner
	Lease     time.Duration     // how long a run stays with one node without renewal
	Logger    *slog.Logger
	Now       func() time.Time

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
}

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
// MaxTestRecipients), rendered with Contact (or an empty contact) and marked as a test.
type TestParams struct {
	To      []string
	Contact map[string]any
}

// Service manages campaigns and works their runs. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

var errUnbuilt = errors.New("campaign: not built yet")

// Create validates in and stores a new campaign as a draft. Failures are *message.Error:
// KindInvalid naming each bad field ("template", "lists[1]", "schedule.cron", "data/price").
func (s *Service) Create(ctx context.Context, in Input) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// Get returns one campaign (KindNotFound when none).
func (s *Service) Get(ctx context.Context, id string) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// List returns one page of campaigns and the next cursor.
func (s *Service) List(ctx context.Context, p store.CampaignListParams) ([]store.Campaign, string, error) {
	return nil, "", errUnbuilt
}

// Update changes the given fields of a campaign that is not running (KindConflict naming its
// state otherwise).
func (s *Service) Update(ctx context.Context, id string, in Input) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// Delete deletes a campaign that is not running or paused.
func (s *Service) Delete(ctx context.Context, id string) error { return errUnbuilt }

// Start schedules a draft campaign: a run starts now (schedule now), at its time, or at each
// occurrence of its cron schedule. KindConflict when it is not a draft.
func (s *Service) Start(ctx context.Context, id string) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// Pause pauses a running or scheduled campaign (reason manual): its current run stops
// creating messages and holds those not handed to a relay yet.
func (s *Service) Pause(ctx context.Context, id string) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// Resume lifts the given pause reasons (all when none are given); the campaign runs again once
// no reason is left. KindConflict when it is not paused.
func (s *Service) Resume(ctx context.Context, id string, reasons []string) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// Cancel cancels a campaign and its current run: pending recipients and messages not handed
// to a relay yet are cancelled. KindConflict when it is finished or cancelled.
func (s *Service) Cancel(ctx context.Context, id string) (store.Campaign, error) {
	return store.Campaign{}, errUnbuilt
}

// Test sends the campaign's message to each of p.To now, as the run would (broadcast stream,
// list headers and footer), with the tag "test" and no run: nothing counts it.
func (s *Service) Test(ctx context.Context, id string, p TestParams) ([]message.Result, error) {
	return nil, errUnbuilt
}

// Runs returns a campaign's runs with their progress, newest first.
func (s *Service) Runs(ctx context.Context, campaignID string) ([]RunView, error) {
	return nil, errUnbuilt
}

// Run returns one run of a campaign with its progress.
func (s *Service) Run(ctx context.Context, campaignID, runID string) (RunView, error) {
	return RunView{}, errUnbuilt
}

// Serve starts due occurrences and works this node's runs until ctx ends, then hands its run
// leases back.
func (s *Service) Serve(ctx context.Context) error { return errUnbuilt }

// Tick does one pass of Serve's work at now: starts due occurrences, claims runs, and works
// each claimed run one step (a materialisation chunk, a window of messages, its end). Tests
// drive a clock through it.
func (s *Service) Tick(ctx context.Context, now time.Time) error { return errUnbuilt }
