package campaign

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// The campaign's states: draft → scheduled → running ⇄ paused → finished | cancelled; a
// recurring campaign goes back to scheduled between its runs. The states each operation
// starts from:
var (
	updatable = []string{store.CampaignDraft, store.CampaignScheduled, store.CampaignPaused}
	deletable = []string{store.CampaignDraft, store.CampaignScheduled, store.CampaignFinished, store.CampaignCancelled}
	pausable  = []string{store.CampaignScheduled, store.CampaignRunning, store.CampaignPaused}
	active    = []string{store.RunRunning, store.RunPaused} // a run not over yet
)

// Create validates in and stores a new campaign as a draft. Failures are *message.Error:
// KindInvalid naming each bad field ("template", "audience.lists[1]", "schedule.cron",
// "data/price").
func (s *Service) Create(ctx context.Context, in Input) (store.Campaign, error) {
	now := s.now()
	c := store.Campaign{ID: id.New(id.Campaign), State: store.CampaignDraft,
		Schedule: store.Schedule{Kind: store.ScheduleNow}, CreatedAt: now, UpdatedAt: now}
	apply(&c, in)
	if _, err := s.check(ctx, &c, checkParams{now: now, at: true}); err != nil {
		return store.Campaign{}, err
	}
	c, err := s.cfg.Store.CampaignCreate(ctx, c)
	return c, storeFailure(err, "campaign")
}

// Get returns one campaign (KindNotFound when none).
func (s *Service) Get(ctx context.Context, id string) (store.Campaign, error) {
	c, err := s.cfg.Store.CampaignGet(ctx, id)
	return c, storeFailure(err, "campaign "+id)
}

// List returns one page of campaigns and the next cursor.
func (s *Service) List(ctx context.Context, p store.CampaignListParams) ([]store.Campaign, string, error) {
	if p.State != "" && !slices.Contains(store.CampaignStates, p.State) {
		return nil, "", &message.Error{Kind: message.KindInvalid, Problems: []message.Problem{{Field: "state",
			Message: "want draft, scheduled, running, paused, finished or cancelled", Value: p.State}}}
	}
	page, next, err := s.cfg.Store.CampaignList(ctx, p)
	return page, next, storeFailure(err, "campaigns")
}

// Update changes the given fields of a campaign that is a draft, scheduled or paused
// (KindConflict naming its state otherwise). A scheduled campaign's next occurrence follows a
// new schedule.
func (s *Service) Update(ctx context.Context, id string, in Input) (store.Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if !slices.Contains(updatable, c.State) {
		return store.Campaign{}, conflict(c, "only a draft, scheduled or paused campaign can be changed")
	}
	now := s.now()
	from := c.State
	apply(&c, in)
	if _, err := s.check(ctx, &c, checkParams{now: now, at: in.Schedule != nil}); err != nil {
		return store.Campaign{}, err
	}
	if c.State != store.CampaignDraft && in.Schedule != nil {
		cur, err := s.currentRun(ctx, c.ID)
		if err != nil {
			return store.Campaign{}, err
		}
		if c.NextRunAt, err = s.nextAfterChange(c, cur != nil, now); err != nil {
			return store.Campaign{}, storeFailure(err, "campaign "+c.ID)
		}
	}
	c.UpdatedAt = now
	out, err := s.cfg.Store.CampaignUpdate(ctx, c, []string{from})
	if errors.Is(err, store.ErrConflict) {
		return store.Campaign{}, conflict(out, "only a draft, scheduled or paused campaign can be changed")
	}
	return out, storeFailure(err, "campaign "+id)
}

// nextAfterChange is the next occurrence of a scheduled or paused campaign whose schedule
// changed at now: after a current run (running), only a cron schedule has more.
func (s *Service) nextAfterChange(c store.Campaign, running bool, now time.Time) (time.Time, error) {
	switch {
	case c.Schedule.Kind == store.ScheduleCron:
		return scheduleNext(c.Schedule, now)
	case running:
		return time.Time{}, nil
	case c.Schedule.Kind == store.ScheduleAt:
		return c.Schedule.At, nil
	}
	return now, nil // kind now: at once
}

// Delete deletes a campaign that is not running or paused, with its runs and recipients (their
// messages stay).
func (s *Service) Delete(ctx context.Context, id string) error {
	err := s.cfg.Store.CampaignDelete(ctx, id, deletable)
	if errors.Is(err, store.ErrConflict) {
		c, gerr := s.Get(ctx, id)
		if gerr != nil {
			return gerr
		}
		return conflict(c, "pause or cancel it first: a running or paused campaign cannot be deleted")
	}
	return storeFailure(err, "campaign "+id)
}

// Start schedules a draft campaign: a run starts now (schedule now), at its time, or at each
// occurrence of its cron schedule. The campaign is checked again (its template and data may
// have changed since it was saved). KindConflict when it is not a draft.
func (s *Service) Start(ctx context.Context, id string) (store.Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if c.State != store.CampaignDraft {
		return store.Campaign{}, conflict(c, "only a draft can be started")
	}
	now := s.now()
	version, err := s.check(ctx, &c, checkParams{now: now, at: true})
	if err != nil {
		return store.Campaign{}, err
	}
	if c.Schedule.Kind == store.ScheduleNow {
		return s.startRun(ctx, c, version, now, []string{store.CampaignDraft}, time.Time{}, now)
	}
	next, err := scheduleNext(c.Schedule, now)
	if err != nil {
		return store.Campaign{}, storeFailure(err, "campaign "+id)
	}
	if next.IsZero() { // an "at" time reached within the slack: now
		next = now
	}
	out, err := s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: id,
		From: []string{store.CampaignDraft}, To: store.CampaignScheduled, NextRunAt: next, Now: now})
	if errors.Is(err, store.ErrConflict) {
		return store.Campaign{}, conflict(out, "only a draft can be started")
	}
	s.poke()
	return out, storeFailure(err, "campaign "+id)
}

// startRun starts the occurrence at of c, with the template version its data was checked
// against, from one of the campaign states from; next is the campaign's next occurrence
// after it. This node holds the new run's lease and works it first.
func (s *Service) startRun(ctx context.Context, c store.Campaign, version int, at time.Time, from []string, next, now time.Time) (store.Campaign, error) {
	run, err := s.cfg.Store.RunCreate(ctx, store.RunCreateParams{
		Run: store.Run{ID: id.New(id.Run), CampaignID: c.ID, ScheduledAt: at.UTC(), State: store.RunRunning,
			TemplateVersion: version, StartedAt: now, UpdatedAt: now},
		CampaignFrom: from, NextRunAt: next, Owner: s.cfg.Owner, LeaseUntil: now.Add(s.cfg.Lease),
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			if cur, gerr := s.Get(ctx, c.ID); gerr == nil {
				return store.Campaign{}, conflict(cur, "it was started already")
			}
		}
		return store.Campaign{}, storeFailure(err, "campaign "+c.ID)
	}
	s.log.Info("campaign run started", "campaign", c.ID, "run", run.ID, "scheduled_at", run.ScheduledAt,
		"template", c.Template, "version", version)
	s.hold(run, now.Add(s.cfg.Lease))
	return s.Get(ctx, c.ID)
}

// currentRun is the campaign's run that is not over (running or paused), nil when none.
func (s *Service) currentRun(ctx context.Context, campaignID string) (*store.Run, error) {
	runs, err := s.cfg.Store.RunList(ctx, campaignID, 1)
	if err != nil {
		return nil, storeFailure(err, "campaign "+campaignID)
	}
	if len(runs) == 0 || !slices.Contains(active, runs[0].State) {
		return nil, nil
	}
	return &runs[0], nil
}

// Pause pauses a running or scheduled campaign (reason manual): its current run stops
// creating messages and holds those not handed to a relay yet. Pausing a campaign paused for
// another reason (its daily quota, its complaint rate) adds manual, so that it stays paused
// when that reason is lifted; one paused manually already is a conflict.
func (s *Service) Pause(ctx context.Context, id string) (store.Campaign, error) {
	return s.addReason(ctx, id, store.PauseManual)
}

// addReason pauses a campaign (and its current run) for reason.
func (s *Service) addReason(ctx context.Context, id, reason string) (store.Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if !slices.Contains(pausable, c.State) {
		return store.Campaign{}, conflict(c, "only a scheduled, running or paused campaign can be paused")
	}
	if slices.Contains(c.PauseReasons, reason) {
		return store.Campaign{}, conflict(c, "it is paused for "+reason+" already")
	}
	reasons := withReason(c.PauseReasons, reason)
	now := s.now()
	cur, err := s.currentRun(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if cur != nil {
		_, err = s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: cur.ID, From: active, To: store.RunPaused,
			PauseReasons: withReason(cur.PauseReasons, reason), Campaign: store.CampaignPaused,
			CampaignReasons: reasons, NextRunAt: c.NextRunAt, Now: now})
	} else {
		_, err = s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: id,
			From: []string{store.CampaignScheduled, store.CampaignPaused}, To: store.CampaignPaused,
			PauseReasons: reasons, NextRunAt: c.NextRunAt, Now: now})
	}
	if err != nil {
		return store.Campaign{}, s.stateFailure(ctx, id, err, "it changed state meanwhile")
	}
	s.log.Info("campaign paused", "campaign", id, "reasons", reasons)
	return s.Get(ctx, id)
}

// Resume lifts the given pause reasons (all when none are given); the campaign runs again once
// no reason is left: its current run goes on (its held messages become due, with their expiry
// extended), or a campaign paused while scheduled is scheduled again. KindConflict when it is
// not paused.
func (s *Service) Resume(ctx context.Context, id string, reasons []string) (store.Campaign, error) {
	return s.resumeAt(ctx, id, reasons, s.now())
}

// resumeAt is Resume at now.
func (s *Service) resumeAt(ctx context.Context, id string, reasons []string, now time.Time) (store.Campaign, error) {
	for i, r := range reasons {
		if !slices.Contains([]string{store.PauseManual, store.PauseDailyQuota, store.PauseComplaintRate}, r) {
			return store.Campaign{}, &message.Error{Kind: message.KindInvalid, Problems: []message.Problem{{
				Field: fmt.Sprintf("reasons[%d]", i), Message: "want manual, daily_quota or complaint_rate", Value: r}}}
		}
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if c.State != store.CampaignPaused {
		return store.Campaign{}, conflict(c, "only a paused campaign can be resumed")
	}
	left := []string(nil)
	if len(reasons) > 0 {
		for _, r := range c.PauseReasons {
			if !slices.Contains(reasons, r) {
				left = append(left, r)
			}
		}
	}
	cur, err := s.currentRun(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	switch {
	case cur != nil && len(left) > 0:
		runLeft := slices.DeleteFunc(slices.Clone(cur.PauseReasons), func(r string) bool { return !slices.Contains(left, r) })
		_, err = s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: cur.ID, From: []string{store.RunPaused},
			To: store.RunPaused, PauseReasons: runLeft, Campaign: store.CampaignPaused, CampaignReasons: left,
			NextRunAt: c.NextRunAt, Now: now})
	case cur != nil:
		_, err = s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: cur.ID, From: []string{store.RunPaused},
			To: store.RunRunning, TTL: s.cfg.MessageTTL, Campaign: store.CampaignRunning, NextRunAt: c.NextRunAt, Now: now})
	case len(left) > 0:
		_, err = s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: id, From: []string{store.CampaignPaused},
			To: store.CampaignPaused, PauseReasons: left, NextRunAt: c.NextRunAt, Now: now})
	default:
		_, err = s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: id, From: []string{store.CampaignPaused},
			To: store.CampaignScheduled, NextRunAt: c.NextRunAt, Now: now})
	}
	if err != nil {
		return store.Campaign{}, s.stateFailure(ctx, id, err, "it changed state meanwhile")
	}
	if len(left) == 0 {
		s.log.Info("campaign resumed", "campaign", id)
		s.poke()
	}
	return s.Get(ctx, id)
}

// Cancel cancels a campaign and its current run: pending recipients and messages not handed
// to a relay yet are cancelled. KindConflict when it is finished or cancelled.
func (s *Service) Cancel(ctx context.Context, id string) (store.Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if c.State == store.CampaignFinished || c.State == store.CampaignCancelled {
		return store.Campaign{}, conflict(c, "it is over already")
	}
	now := s.now()
	cur, err := s.currentRun(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	if cur != nil {
		_, err = s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: cur.ID, From: active, To: store.RunCancelled,
			Campaign: store.CampaignCancelled, Now: now})
	} else {
		_, err = s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: id,
			From: []string{store.CampaignDraft, store.CampaignScheduled, store.CampaignPaused}, To: store.CampaignCancelled, Now: now})
	}
	if err != nil {
		return store.Campaign{}, s.stateFailure(ctx, id, err, "it changed state meanwhile")
	}
	s.log.Info("campaign cancelled", "campaign", id)
	return s.Get(ctx, id)
}

// stateFailure words a failed state change: a conflict names the state the campaign is in now.
func (s *Service) stateFailure(ctx context.Context, id string, err error, what string) error {
	if errors.Is(err, store.ErrConflict) {
		if c, gerr := s.Get(ctx, id); gerr == nil {
			return conflict(c, what)
		}
	}
	return storeFailure(err, "campaign "+id)
}

// withReason is reasons with r added, sorted, without duplicates.
func withReason(reasons []string, r string) []string {
	out := append(slices.Clone(reasons), r)
	slices.Sort(out)
	return slices.Compact(out)
}
