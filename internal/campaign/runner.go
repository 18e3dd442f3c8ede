package campaign

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/bulkgc"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// The runner. Each pass (Tick) does, in order:
//
//  1. Start the due occurrences: every scheduled campaign whose next occurrence has come gets a
//     run (store.RunCreate, unique per occurrence, so two nodes or a restart never start one
//     twice), its template version pinned and its data checked against the schema first.
//     Occurrences missed while postie was down run once, the latest, when it is within
//     MissedGrace; older ones are skipped.
//  2. Lift the daily-quota pause of campaigns that asked for it (ResumeNextDay) once the
//     campaigns' share of the day's quota has room again: the next UTC day.
//  3. Claim runs whose lease is free (new, or left by a node that died), up to MaxRuns, and
//     renew the leases this node holds. Steps 1 to 3 but the renewal are done at most once per
//     Poll; a busy run makes passes much more often.
//  4. Work each run one step: copy the next chunks of its audience into its recipients
//     (RunMaterialise) until it is all there (under Serve, a goroutine of its own does this,
//     beside the steps); read the run's progress; pause it when its
//     complaint rate is too high; finish it when every recipient is settled; otherwise create
//     the next messages: pending recipients are composed through message.Service.Compose
//     (each from the run's pinned template version, with the contact as .contact) and stored
//     with their recipients' new state by store.RunQueue, as long as fewer than Window of the
//     run's messages wait to be sent, within the campaign's rate and the campaigns' share of
//     the transport's daily quota.
//
// Every step is one store transaction and the lease is checked by each, so a node that dies
// mid-step leaves the run where its last transaction put it, and the next owner goes on from
// there. Messages are created lazily, a window ahead of delivery, so memory does not grow with
// the audience, and a message's TTL starts when it is created.

// Sizes of a step.
const (
	materialiseChunk  = 5000 // contacts considered per RunMaterialise (a driver may take fewer)
	materialiseBudget = 200 * time.Millisecond
	queueChunk        = 100 // recipients per RunPending and RunQueue: ~15 ms of the SQLite writer for 10 KB messages
	createBudget      = 300 * time.Millisecond
	activePoll        = 100 * time.Millisecond // Serve's pace while a run waits for its window
	progressEvery     = 10 * time.Second       // how old a run's counts may be for creating more
	// runGCPercent is how often the collector runs while this node works a run: every message
	// composed is garbage once stored, and under serve's GOGC=400 the heap of a run would grow
	// to five times its small live set (package bulkgc).
	runGCPercent = 100
	dueBatch     = 20
)

// runState is a run this node holds the lease of, with what working it needs.
type runState struct {
	id         string
	leaseUntil time.Time

	ready bool // camp, audience, renderer and limiter are loaded
	camp  store.Campaign
	// audience is read by Serve's materialiser too; materialised: the whole audience is in
	// the run's recipients.
	audience     atomic.Pointer[store.RunAudience]
	materialised atomic.Bool
	paused       atomic.Bool // as its last step found it: Serve looks at it once per Poll
	renderer     message.Renderer
	limiter      *rate.Limiter // nil: no rate of its own
	after        string        // the contact id of the last pending recipient handled

	// Complaints are counted from base on: the counts when the run was last resumed from a
	// complaint-rate pause (an operator who resumes it accepts what came before).
	sawComplaintPause bool
	base              struct{ delivered, complained int }

	// The run's counts as last read (known), when (progressAt, on the wall clock), and the
	// messages created and recipients handled since; stale: read them at the next step.
	known, stale     bool
	prog             store.RunProgress
	progressAt       time.Time
	created, handled int
}

// runRenderer renders a run's messages: the campaign's template at the run's pinned version,
// with the campaign's subject, when it has one, in place of the template's.
type runRenderer struct {
	cat     *templates.Catalog
	version int
	subject string
}

func (r runRenderer) Render(ctx context.Context, p templates.RenderParams) (templates.Rendered, error) {
	p.Version = r.version
	out, err := r.cat.Render(ctx, p)
	if err == nil && r.subject != "" {
		out.Subject = r.subject
	}
	return out, err
}

// errDropped: the run is no longer this node's to work.
var errDropped = errors.New("run dropped")

// errStale: the run changed under a step (paused, cancelled, its lease lost); the next step
// reads it again.
var errStale = errors.New("run changed meanwhile")

// hold records that this node holds the lease of run until until, and wakes Serve.
func (s *Service) hold(run store.Run, until time.Time) {
	s.mu.Lock()
	if rs, ok := s.runs[run.ID]; ok {
		rs.leaseUntil = until
	} else {
		s.runs[run.ID] = &runState{id: run.ID, leaseUntil: until}
		if len(s.runs) == 1 {
			s.restoreGC = bulkgc.Lower(runGCPercent)
		}
	}
	s.mu.Unlock()
	s.poke()
}

// drop forgets a run this node no longer works.
func (s *Service) drop(id string) {
	s.mu.Lock()
	if _, ok := s.runs[id]; ok {
		delete(s.runs, id)
		if len(s.runs) == 0 {
			s.restoreGC()
		}
	}
	s.mu.Unlock()
}

// poke wakes Serve (and its materialiser) without waiting.
func (s *Service) poke() {
	for _, c := range []chan struct{}{s.wake, s.matWake} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// held returns the runs this node holds, oldest id first.
func (s *Service) held() []*runState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*runState, 0, len(s.runs))
	for _, rs := range s.runs {
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b *runState) int { return strings.Compare(a.id, b.id) })
	return out
}

// errPanicked is the error of a step of a run that panicked (the panic is reported).
var errPanicked = errors.New("internal error in a campaign run (reported to the operator)")

// Serve starts due occurrences and works this node's runs until ctx ends, then hands its run
// leases back. Runs still being materialised are materialised by a goroutine of their own, so
// that copying a large audience and creating the first messages go on together.
func (s *Service) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = errtrack.Supervise(ctx, s.cfg.Errors, "campaign materialiser", func(ctx context.Context) error {
			s.materialiser(ctx)
			return nil
		})
	})
	defer func() {
		wg.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if n, err := s.cfg.Store.RunReleaseLeases(rctx, s.cfg.Owner); err != nil {
			s.log.Error("handing back campaign run leases failed", "err", err)
		} else if n > 0 {
			s.log.Info("handed back campaign run leases", "runs", n)
		}
		s.mu.Lock()
		if len(s.runs) > 0 {
			clear(s.runs)
			s.restoreGC()
		}
		s.mu.Unlock()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.wake:
		}
		var busy bool
		var err error
		// A panic in a pass is reported and the next pass goes on (Serve's deferred clean-up
		// waits for the materialiser, so a panic must not leave this loop).
		if errtrack.Guard(ctx, s.cfg.Errors, "campaign runner", func() { busy, err = s.pass(ctx, s.cfg.Now(), false) }) {
			err = errPanicked
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error("campaign runner", "err", err)
		}
		wait := s.cfg.Poll
		switch {
		case busy:
			wait = 0
		case slices.ContainsFunc(s.held(), func(rs *runState) bool { return !rs.paused.Load() }):
			wait = min(wait, activePoll) // a run waits for its window to empty
		}
		timer.Reset(wait)
	}
}

// Tick does one pass of Serve's work at now: starts due occurrences, claims runs, and works
// each claimed run one step (a materialisation chunk, a window of messages, its end). Tests
// drive a clock through it.
func (s *Service) Tick(ctx context.Context, now time.Time) error {
	_, err := s.pass(ctx, now, true)
	return err
}

// pass is Tick, reporting whether a run has more to do at once; inline: the runs' audiences
// are materialised by the pass (Tick) rather than by Serve's materialiser.
func (s *Service) pass(ctx context.Context, now time.Time, inline bool) (busy bool, err error) {
	now = now.UTC().Truncate(time.Microsecond)
	var errs []error
	if s.looked(now) {
		errs = append(errs, s.startDue(ctx, now), s.resumeQuota(ctx, now), s.claim(ctx, now))
	}
	errs = append(errs, s.renew(ctx, now))
	for _, rs := range s.held() {
		more, err := s.step(ctx, rs, now, inline)
		if errors.Is(err, errDropped) {
			s.drop(rs.id)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", rs.id, err))
		}
		busy = busy || more
	}
	return busy, errors.Join(errs...)
}

// startDue starts the occurrences that have come.
func (s *Service) startDue(ctx context.Context, now time.Time) error {
	due, err := s.cfg.Store.CampaignsDue(ctx, now, dueBatch)
	if err != nil {
		return fmt.Errorf("due campaigns: %w", err)
	}
	var errs []error
	for _, c := range due {
		if err := s.startOccurrence(ctx, c, now); err != nil {
			errs = append(errs, fmt.Errorf("campaign %s: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

// startOccurrence starts the run of a due campaign, or skips the occurrences missed beyond
// the grace.
func (s *Service) startOccurrence(ctx context.Context, c store.Campaign, now time.Time) error {
	at, ok, next, err := dueOccurrence(c.Schedule, c.NextRunAt, now, s.cfg.MissedGrace)
	if err != nil {
		return err
	}
	if !ok {
		s.log.Warn("campaign occurrences missed by more than the grace (POSTIE_CAMPAIGN_MISSED_GRACE) are skipped",
			"campaign", c.ID, "missed_from", c.NextRunAt, "next", next, "grace", s.cfg.MissedGrace)
		_, err := s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID,
			From: []string{store.CampaignScheduled}, To: store.CampaignScheduled, NextRunAt: next, Now: now})
		if errors.Is(err, store.ErrConflict) {
			return nil // changed meanwhile (paused, cancelled, or another node did this)
		}
		return err
	}
	if !at.Equal(c.NextRunAt) {
		s.log.Warn("campaign occurrences were missed: running the latest once", "campaign", c.ID,
			"missed_from", c.NextRunAt, "running", at)
	}
	version, err := s.check(ctx, &c, checkParams{now: now})
	var me *message.Error
	if errors.As(err, &me) && me.Kind == message.KindInvalid {
		// The template or an audience list changed since the campaign was saved: nothing
		// can be sent as it stands. Back to draft, where it can be fixed and started again.
		s.log.Error("a due campaign no longer checks: it is back to draft", "campaign", c.ID, "err", err)
		_, err := s.cfg.Store.CampaignSetState(ctx, store.CampaignSetStateParams{ID: c.ID,
			From: []string{store.CampaignScheduled}, To: store.CampaignDraft, Now: now})
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	_, err = s.startRun(ctx, c, version, at, []string{store.CampaignScheduled}, next, now)
	if errors.As(err, &me) && me.Kind == message.KindConflict {
		return nil // another node started it, or the campaign changed meanwhile
	}
	return err
}

// resumeQuota lifts the daily-quota pause of the campaigns that asked for it, once the day's
// share has room again. It looks at most once a minute, and at each new UTC day.
func (s *Service) resumeQuota(ctx context.Context, now time.Time) error {
	if s.cfg.DailyQuota <= 0 {
		return nil
	}
	s.mu.Lock()
	last := s.quota
	if !last.IsZero() && day(last) == day(now) && now.Sub(last) < time.Minute && !now.Before(last) {
		s.mu.Unlock()
		return nil
	}
	s.quota = now
	s.mu.Unlock()
	left, err := s.quotaLeft(ctx, now)
	if err != nil || left <= 0 {
		return err
	}
	cursor := ""
	for {
		page, next, err := s.cfg.Store.CampaignList(ctx, store.CampaignListParams{State: store.CampaignPaused,
			Cursor: cursor, Limit: store.MaxListLimit})
		if err != nil {
			return fmt.Errorf("paused campaigns: %w", err)
		}
		for _, c := range page {
			if !c.ResumeNextDay || !slices.Contains(c.PauseReasons, store.PauseDailyQuota) {
				continue
			}
			if _, err := s.resumeAt(ctx, c.ID, []string{store.PauseDailyQuota}, now); err != nil {
				var me *message.Error
				if !errors.As(err, &me) || me.Kind != message.KindConflict {
					return err
				}
				continue
			}
			s.log.Info("campaign resumed: a new day's quota", "campaign", c.ID, "left", left)
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// day is t's UTC day as campaign_days counts it.
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// quotaLeft is how many campaign messages may still be created on now's UTC day
// (math.MaxInt without a daily quota).
func (s *Service) quotaLeft(ctx context.Context, now time.Time) (int, error) {
	if s.cfg.DailyQuota <= 0 {
		return math.MaxInt, nil
	}
	used, err := s.cfg.Store.CampaignDayCount(ctx, day(now))
	if err != nil {
		return 0, fmt.Errorf("campaign day count: %w", err)
	}
	return int(math.Floor(float64(s.cfg.DailyQuota)*s.cfg.QuotaShare)) - used, nil
}

// looked reports whether it is time to look for due campaigns and free runs again (at most
// once per Poll of now: a pass while a run is busy comes every few milliseconds), and notes
// that it is.
func (s *Service) looked(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lookedAt.IsZero() && now.Sub(s.lookedAt) < s.cfg.Poll && !now.Before(s.lookedAt) {
		return false
	}
	s.lookedAt = now
	return true
}

// renew renews the leases this node holds once half of one is used.
func (s *Service) renew(ctx context.Context, now time.Time) error {
	until := now.Add(s.cfg.Lease)
	var renew []string
	s.mu.Lock()
	for id, rs := range s.runs {
		if rs.leaseUntil.Sub(now) < s.cfg.Lease/2 {
			renew = append(renew, id)
		}
	}
	s.mu.Unlock()
	if len(renew) == 0 {
		return nil
	}
	if _, err := s.cfg.Store.RunRenewLeases(ctx, store.RunRenewParams{Owner: s.cfg.Owner, IDs: renew, Until: until}); err != nil {
		return fmt.Errorf("renewing run leases: %w", err)
	}
	// A lease that was lost is found by the run's next step (RunGet shows its owner).
	s.mu.Lock()
	for _, id := range renew {
		if rs, ok := s.runs[id]; ok {
			rs.leaseUntil = until
		}
	}
	s.mu.Unlock()
	return nil
}

// claim takes free runs (new ones left by no node, or a dead node's) up to MaxRuns.
func (s *Service) claim(ctx context.Context, now time.Time) error {
	until := now.Add(s.cfg.Lease)
	s.mu.Lock()
	n := len(s.runs)
	s.mu.Unlock()
	if n >= s.cfg.MaxRuns {
		return nil
	}
	runs, err := s.cfg.Store.RunClaim(ctx, store.RunClaimParams{Owner: s.cfg.Owner, Limit: s.cfg.MaxRuns - n,
		Now: now, LeaseUntil: until})
	if err != nil {
		return fmt.Errorf("claiming runs: %w", err)
	}
	for _, r := range runs {
		s.log.Info("campaign run taken over", "run", r.ID, "campaign", r.CampaignID)
		s.hold(r, until)
	}
	return nil
}

// step works one run one step at now, reporting whether it has more to do at once.
// errDropped: the run is not this node's to work any more.
func (s *Service) step(ctx context.Context, rs *runState, now time.Time, inline bool) (bool, error) {
	run, err := s.cfg.Store.RunGet(ctx, rs.id)
	if errors.Is(err, store.ErrNotFound) {
		return false, errDropped // its campaign was deleted
	}
	if err != nil {
		return false, err
	}
	if run.LeaseOwner != s.cfg.Owner {
		return false, errDropped
	}
	switch run.State {
	case store.RunPaused:
		// Held until resumed; the lease is kept, so a resume here goes on at once.
		// The campaign may be changed while paused (not its run's template version): it is
		// read again when the run goes on, as a node taking the run over would.
		rs.sawComplaintPause = rs.sawComplaintPause || slices.Contains(run.PauseReasons, store.PauseComplaintRate)
		rs.stale, rs.ready = true, false
		rs.paused.Store(true)
		return false, nil
	case store.RunRunning:
		rs.paused.Store(false)
	default:
		return false, errDropped
	}
	if !rs.ready {
		if err := s.prepare(ctx, rs, run, now); err != nil {
			return false, err
		}
	}

	if run.Materialised {
		rs.materialised.Store(true)
	} else if inline {
		added, done, err := s.materialise(ctx, rs, now)
		if errors.Is(err, errStale) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		run.Recipients += added
		run.Materialised = done
	}
	inFlight, pending, fresh, err := s.progress(ctx, rs, run, false, now)
	if err != nil {
		return false, err
	}
	if fresh {
		if s.tooManyComplaints(rs, rs.prog) {
			return false, s.pauseRun(ctx, run, store.PauseComplaintRate, now)
		}
		if run.Materialised && rs.prog.Open == 0 {
			return false, s.finish(ctx, run, now)
		}
	}
	room := s.cfg.Window - inFlight
	if pending <= 0 || room <= 0 {
		return inline && !run.Materialised, nil
	}
	left, err := s.quotaLeft(ctx, now)
	if err != nil {
		return false, err
	}
	if left <= 0 {
		// The campaigns' share of the day is used up. Pause once what was created today has
		// gone out (a pause would hold it until the run resumes).
		if !fresh {
			if inFlight, _, _, err = s.progress(ctx, rs, run, true, now); err != nil {
				return false, err
			}
		}
		if inFlight == 0 {
			return false, s.pauseRun(ctx, run, store.PauseDailyQuota, now)
		}
		return false, nil
	}
	n := min(room, left)
	if rs.limiter != nil {
		n = min(n, int(rs.limiter.TokensAt(now)))
		if n <= 0 {
			return false, nil
		}
	}
	created, handled, more, err := s.create(ctx, rs, run, n, now)
	rs.created += created
	rs.handled += handled
	if handled == 0 {
		rs.stale = true // nothing where the counts said: read them again
	}
	if err != nil {
		return false, err
	}
	return more || inline && !run.Materialised, nil
}

// progress returns a run's messages in flight and recipients pending, from its counts
// (RunProgress) read a moment ago and what this node created and handled since: counting a
// large run is not free (RunProgress counts every recipient and message of the run), and the
// estimate errs on the safe side (deliveries only lower what is in flight, materialisation
// only adds pending recipients). When the estimate says the window is full, RunInFlight,
// whose cost follows the messages in flight, says whether it still is. The counts are read
// again (fresh) when force is set, when they are older than progressEvery, or when the
// estimate leaves nothing to do, so a decision to finish or pause is always made on fresh
// counts (rs.prog).
func (s *Service) progress(ctx context.Context, rs *runState, run store.Run, force bool, now time.Time) (inFlight, pending int, fresh bool, err error) {
	if !force && rs.known && !rs.stale && time.Since(rs.progressAt) < progressEvery {
		inFlight = rs.prog.InFlight + rs.created
		pending = rs.prog.Counts[store.CampaignRecipientPending] - rs.handled
		if inFlight >= s.cfg.Window && pending > 0 {
			n, err := s.cfg.Store.RunInFlight(ctx, run.ID)
			if err != nil {
				return 0, 0, false, err
			}
			// From here, what was created is counted in n.
			rs.prog.InFlight, rs.created = n, 0
			return n, pending, false, nil
		}
		if inFlight < s.cfg.Window && pending > 0 {
			return inFlight, pending, false, nil
		}
	}
	prog, err := s.cfg.Store.RunProgress(ctx, run.ID)
	if err != nil {
		return 0, 0, false, err
	}
	rs.prog, rs.known, rs.stale, rs.progressAt, rs.created, rs.handled = prog, true, false, time.Now(), 0, 0
	s.note(run, prog, now)
	s.share(run, prog)
	if rs.sawComplaintPause {
		rs.sawComplaintPause = false
		rs.base.delivered, rs.base.complained = delivered(prog), prog.Counts[string(store.RecipientComplained)]
	}
	return prog.InFlight, prog.Counts[store.CampaignRecipientPending], true, nil
}

// prepare loads what working a run needs: its campaign, its audience (the segment's filter
// compiled, while the run still materialises), its renderer and rate limiter.
func (s *Service) prepare(ctx context.Context, rs *runState, run store.Run, now time.Time) error {
	c, err := s.cfg.Store.CampaignGet(ctx, run.CampaignID)
	if errors.Is(err, store.ErrNotFound) {
		return errDropped
	}
	if err != nil {
		return err
	}
	aud := store.RunAudience{Lists: c.Lists, CampaignID: c.ID, Cap: c.Cap}
	if c.Segment != "" && !run.Materialised {
		f, err := s.segmentFilter(ctx, c.Segment)
		var fe *audience.FilterError
		if errors.Is(err, store.ErrNotFound) || errors.As(err, &fe) {
			// Its audience cannot be built any more: nothing this run could send is right.
			s.log.Error("a campaign run's segment is gone or no longer checks: the run is cancelled",
				"campaign", c.ID, "run", run.ID, "segment", c.Segment, "err", err)
			to, next := store.CampaignCancelled, time.Time{}
			if c.Schedule.Kind == store.ScheduleCron {
				to, next = store.CampaignScheduled, c.NextRunAt
			}
			_, err := s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: active,
				To: store.RunCancelled, Campaign: to, NextRunAt: next, Now: now})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
			return errDropped
		}
		if err != nil {
			return err
		}
		aud.Filter = f
	}
	rs.camp = c
	rs.audience.Store(&aud)
	if !run.Materialised {
		s.poke() // Serve's materialiser may start on it
	}
	rs.renderer = runRenderer{cat: s.cfg.Templates, version: run.TemplateVersion, subject: c.Subject}
	if c.Rate > 0 {
		burst := max(1, int(math.Ceil(c.Rate)))
		rs.limiter = rate.NewLimiter(rate.Limit(c.Rate), burst)
		rs.limiter.SetBurstAt(now, burst) // full from the start, on the run's clock
	}
	rs.ready = true
	return nil
}

// materialise copies the next chunks of a run's audience into its recipients for up to
// materialiseBudget, and reports how many it added and whether the whole audience is there.
func (s *Service) materialise(ctx context.Context, rs *runState, now time.Time) (added int, done bool, err error) {
	aud := rs.audience.Load()
	if aud == nil {
		return 0, false, nil // not prepared yet
	}
	start := time.Now()
	for {
		res, err := s.cfg.Store.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: rs.id, Owner: s.cfg.Owner,
			Audience: *aud, Limit: materialiseChunk, Now: now})
		if errors.Is(err, store.ErrConflict) {
			return added, false, errStale // the lease went to another node, or the run changed: the next step sees
		}
		if err != nil {
			return added, false, err
		}
		added += res.Added
		if res.Done {
			rs.materialised.Store(true)
			s.log.Info("campaign run materialised", "run", rs.id)
			return added, true, nil
		}
		if time.Since(start) >= materialiseBudget {
			return added, false, nil
		}
	}
}

// materialiser materialises the audiences of the runs this node holds until ctx ends (Serve's
// helper), waking the runner as recipients arrive.
func (s *Service) materialiser(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.matWake:
		}
		busy := false
		for _, rs := range s.held() {
			if rs.materialised.Load() || rs.audience.Load() == nil {
				continue
			}
			added, done, err := s.materialise(ctx, rs, s.cfg.Now().UTC().Truncate(time.Microsecond))
			if err != nil && !errors.Is(err, errStale) && ctx.Err() == nil {
				s.log.Error("campaign materialisation", "run", rs.id, "err", err)
			}
			if added > 0 || done {
				s.poke()
			}
			busy = busy || err == nil && !done
		}
		wait := s.cfg.Poll
		if busy {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// create composes and queues up to n messages of pending recipients, in chunks, for up to
// createBudget. It reports how many messages it created, how many recipients it handled
// (messages and other outcomes), and whether it stopped with more it could do now.
//
// The chunks are pipelined: the next one is composed (on every core) while the previous one
// is being stored (by the database's writer). A chunk that fails to be stored leaves its
// recipients and the next chunk's pending; the cursor goes back to the start, so they are
// read again.
func (s *Service) create(ctx context.Context, rs *runState, run store.Run, n int, now time.Time) (created, handled int, more bool, err error) {
	start, restarted := time.Now(), false
	var storing chan error // the chunk being stored, nil when none
	var storingK, storingN int
	settle := func() error {
		if storing == nil {
			return nil
		}
		err := <-storing
		k, m := storingK, storingN
		storing, storingK, storingN = nil, 0, 0
		if err != nil {
			rs.after = ""
			return err
		}
		created += k
		handled += m
		if rs.limiter != nil && k > 0 {
			rs.limiter.ReserveN(now, k)
		}
		return nil
	}
	defer func() {
		if serr := settle(); err == nil {
			err = serr
		}
		if errors.Is(err, errStale) {
			err, more = nil, false
		}
	}()
	for created+storingK < n {
		if created > 0 && time.Since(start) >= createBudget {
			return created, handled, true, nil
		}
		recips, err := s.cfg.Store.RunPending(ctx, store.RunPendingParams{RunID: run.ID, After: rs.after,
			Limit: min(queueChunk, n-created-storingK)})
		if err != nil {
			return created, handled, false, err
		}
		if len(recips) == 0 {
			if storing != nil {
				// Read again once the chunk being stored is in (a cursor reset would find it).
				if err := settle(); err != nil {
					return created, handled, false, err
				}
				continue
			}
			if rs.after == "" || restarted || !run.Materialised {
				return created, handled, false, nil
			}
			// Some recipient before the cursor is still pending (its chunk was not queued):
			// go round again.
			rs.after, restarted = "", true
			continue
		}
		items, k, err := s.compose(ctx, rs, run, recips, now)
		if err != nil {
			return created, handled, false, err
		}
		if err := settle(); err != nil {
			return created, handled, false, err
		}
		ch, cmpID := make(chan error, 1), rs.camp.ID
		go func() {
			var err error
			if errtrack.Guard(ctx, s.cfg.Errors, "campaign run", func() { err = s.queue(ctx, cmpID, run.ID, items, now) }) {
				err = errPanicked
			}
			ch <- err
		}()
		storing, storingK, storingN = ch, k, len(recips)
		rs.after = recips[len(recips)-1].ContactID
	}
	return created, handled, false, nil
}

// compose composes the messages of recips: their RunQueue outcomes, and how many have a
// message. A recipient whose message cannot be composed (a render failure of their data) is
// failed with the reason; one suppressed or unsubscribed since the run materialised is given
// that state without a message. Other failures (the store's) fail the whole chunk.
func (s *Service) compose(ctx context.Context, rs *runState, run store.Run, recips []store.RunRecipient, now time.Time) ([]store.RunQueueItem, int, error) {
	emails := make([]string, len(recips))
	scopes := []string{store.ScopeGlobal, store.ScopeBroadcast}
	for i, r := range recips {
		emails[i] = strings.ToLower(r.Email)
		if r.ListID != "" && !slices.Contains(scopes, r.ListID) {
			scopes = append(scopes, r.ListID)
		}
	}
	sups, err := s.cfg.Store.SuppressionMatch(ctx, emails, scopes, now)
	if err != nil {
		return nil, 0, err
	}
	c := rs.camp
	info := campaignData(c, run)
	items := make([]store.RunQueueItem, len(recips))
	errs := make([]error, len(recips))
	panics := fanout.Try(len(recips), func(i int) error {
		r := recips[i]
		items[i].ContactID = r.ContactID
		if st, reason, ok := suppressed(sups[emails[i]], r.ListID); ok {
			items[i].Status, items[i].Reason = st, reason
			return nil
		}
		locale := r.Contact.Locale
		if !templates.ValidLocale(locale) {
			locale = ""
		}
		req := message.Request{From: c.From, ReplyTo: c.ReplyTo, To: []string{r.Email}, Template: c.Template,
			TemplateVersion: run.TemplateVersion, Data: c.Data, Locale: locale, Renderer: rs.renderer, Tags: c.Tags,
			Stream: store.StreamBroadcast, ListID: r.ListID, Contact: audience.ContactData(r.Contact), Campaign: info,
			CampaignID: c.ID}
		m, err := s.cfg.Messages.Compose(ctx, &req, message.ComposeParams{Now: now})
		var me *message.Error
		switch {
		case errors.As(err, &me) && (me.Kind == message.KindInvalid || me.Kind == message.KindTooLarge):
			items[i].Status, items[i].Reason = store.CampaignRecipientFailed, err.Error()
		case err != nil:
			errs[i] = err
		default:
			m.Message.CampaignID, m.Message.RunID = c.ID, run.ID
			items[i].Message = &m.NewMessage
		}
		return nil
	})
	for i, err := range panics {
		var p *fanout.Panic
		if errors.As(err, &p) {
			// A panic composing one recipient fails that recipient alone: trying the chunk
			// again would panic again and hold the whole run.
			s.cfg.Errors.Panic(ctx, "campaign render", p.Value, p.Stack)
			items[i].Status, items[i].Reason, items[i].Message = store.CampaignRecipientFailed, "internal error; see the server log", nil
			errs[i] = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err // nothing stored: the chunk is tried again
	}
	k := 0
	for _, it := range items {
		if it.Message != nil {
			k++
		}
	}
	return items, k, nil
}

// queue stores a chunk's outcomes (RunQueue) under this node's lease; errStale when the run
// was paused, cancelled or its lease lost meanwhile (the next step sees which).
func (s *Service) queue(ctx context.Context, campaignID, runID string, items []store.RunQueueItem, now time.Time) error {
	err := s.cfg.Store.RunQueue(ctx, store.RunQueueParams{RunID: runID, CampaignID: campaignID, Owner: s.cfg.Owner,
		Items: items, Day: day(now), Now: now})
	if errors.Is(err, store.ErrConflict) {
		return errStale
	}
	return err
}

// campaignData is what templates see of a run's campaign as {{.campaign}}: id, name, run_id
// and scheduled_at (RFC 3339; both "" for a test send). Templates only read it, so one map
// serves every message of a chunk.
func campaignData(c store.Campaign, run store.Run) map[string]any {
	at := ""
	if !run.ScheduledAt.IsZero() {
		at = run.ScheduledAt.UTC().Format(time.RFC3339)
	}
	return map[string]any{"id": c.ID, "name": c.Name, "run_id": run.ID, "scheduled_at": at}
}

// suppressed says whether a recipient on listID is stopped by one of sups (the suppressions
// of their address), and as what: unsubscribed (from the list, or from all broadcast mail by
// a link) or suppressed.
func suppressed(sups []store.Suppression, listID string) (state, reason string, ok bool) {
	for _, sup := range sups {
		if sup.Scope != store.ScopeGlobal && sup.Scope != store.ScopeBroadcast && sup.Scope != listID {
			continue
		}
		state = store.CampaignRecipientSuppressed
		if sup.Reason == store.ReasonUnsubscribe || sup.Scope == listID {
			state = store.CampaignRecipientUnsubscribed
		}
		return state, sup.Reason + " (" + sup.Scope + ")", true
	}
	return "", "", false
}

// tooManyComplaints reports whether the run's complaints since its base reached
// ComplaintRate of its delivered messages, once ComplaintMinSent were delivered.
func (s *Service) tooManyComplaints(rs *runState, prog store.RunProgress) bool {
	if s.cfg.ComplaintRate <= 0 {
		return false
	}
	d := delivered(prog) - rs.base.delivered
	c := prog.Counts[string(store.RecipientComplained)] - rs.base.complained
	return d >= s.cfg.ComplaintMinSent && float64(c) >= s.cfg.ComplaintRate*float64(d)
}

// delivered counts the recipients whose message a relay took: sent, and later bounced or
// complained.
func delivered(p store.RunProgress) int {
	return p.Counts[string(store.RecipientSent)] + p.Counts[string(store.RecipientBounced)] +
		p.Counts[string(store.RecipientComplained)]
}

// pauseRun pauses a running run and its campaign for reason (the runner's own reasons: the
// daily quota, the complaint rate).
func (s *Service) pauseRun(ctx context.Context, run store.Run, reason string, now time.Time) error {
	c, err := s.cfg.Store.CampaignGet(ctx, run.CampaignID)
	if err != nil {
		return err
	}
	_, err = s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning},
		To: store.RunPaused, PauseReasons: withReason(run.PauseReasons, reason), Campaign: store.CampaignPaused,
		CampaignReasons: withReason(c.PauseReasons, reason), NextRunAt: c.NextRunAt, Now: now})
	if errors.Is(err, store.ErrConflict) {
		return nil // paused or cancelled meanwhile: the next step sees it
	}
	if err == nil {
		s.log.Warn("campaign run paused", "campaign", c.ID, "run", run.ID, "reason", reason)
	}
	return err
}

// finish ends a run whose recipients are all settled: the campaign is finished, or a recurring
// one scheduled for its next occurrence.
func (s *Service) finish(ctx context.Context, run store.Run, now time.Time) error {
	c, err := s.cfg.Store.CampaignGet(ctx, run.CampaignID)
	if err != nil {
		return err
	}
	to, next := store.CampaignFinished, time.Time{}
	if c.Schedule.Kind == store.ScheduleCron {
		to, next = store.CampaignScheduled, c.NextRunAt
		if next.IsZero() {
			if next, err = scheduleNext(c.Schedule, now); err != nil {
				return err
			}
		}
	}
	_, err = s.cfg.Store.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning},
		To: store.RunFinished, Campaign: to, NextRunAt: next, Now: now})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Info("campaign run finished", "campaign", c.ID, "run", run.ID, "recipients", run.Recipients, "campaign_state", to)
	return errDropped
}
