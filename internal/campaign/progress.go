package campaign

import (
	"context"
	"errors"
	"time"

	"github.com/postie/postie/internal/store"
)

// Progress. A run's counts come from the store (RunProgress); its rate and ETA from how those
// counts moved: each reading of a run's progress (by the runner, or a request) is kept as a
// sample for rateWindow, and the rate is the change between the oldest sample kept and now.
// Without an older sample (a node that has just started, or the run just began), the run's
// average since it started is used.

const (
	rateWindow = time.Minute
	maxRuns    = 100 // runs returned by Runs
	// Counting a run costs in proportion to its recipients (about 0.2 s of CPU for a million on
	// SQLite), so the counts of a run of at least largeRun recipients are shared by the
	// requests and the runner of this node for countedFor; smaller runs are counted afresh.
	largeRun   = 10_000
	countedFor = time.Second
)

// counted is a run's counts as read at (on the wall clock), when the run was in state as of
// updated: a run that changed since (paused, finished) is counted again, so its counts agree
// with its state.
type counted struct {
	at      time.Time
	state   string
	updated time.Time
	prog    store.RunProgress
}

// runProgress returns run's counts: read now, or for a large run read within countedFor.
func (s *Service) runProgress(ctx context.Context, run store.Run) (store.RunProgress, error) {
	if run.Recipients >= largeRun {
		s.mu.Lock()
		c, ok := s.counted[run.ID]
		s.mu.Unlock()
		if ok && time.Since(c.at) < countedFor && c.state == run.State && c.updated.Equal(run.UpdatedAt) {
			return c.prog, nil
		}
	}
	prog, err := s.cfg.Store.RunProgress(ctx, run.ID)
	if err != nil {
		return store.RunProgress{}, err
	}
	s.share(run, prog)
	return prog, nil
}

// share keeps the counts of a large run just read for the next readers.
func (s *Service) share(run store.Run, prog store.RunProgress) {
	if run.Recipients < largeRun {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.counted {
		if time.Since(c.at) > countedFor {
			delete(s.counted, id)
		}
	}
	s.counted[run.ID] = counted{at: time.Now(), state: run.State, updated: run.UpdatedAt, prog: prog}
}

// sample is a run's counts at one moment.
type sample struct {
	at              time.Time
	delivered, done int // recipients delivered (sent, bounced, complained) and settled (not open)
}

// note records run's progress at now and returns the oldest sample within rateWindow.
func (s *Service) note(run store.Run, prog store.RunProgress, now time.Time) sample {
	cur := sample{at: now, delivered: delivered(prog), done: run.Recipients - prog.Open}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.samples {
		if len(ss) > 0 && now.Sub(ss[len(ss)-1].at) > 2*rateWindow {
			delete(s.samples, id) // a run nobody looked at lately
		}
	}
	ss := s.samples[run.ID]
	i := 0
	for i < len(ss) && now.Sub(ss[i].at) > rateWindow {
		i++
	}
	ss = ss[i:]
	oldest := cur
	if len(ss) > 0 {
		oldest = ss[0]
	}
	// One sample a second is enough for a minute's rate.
	if len(ss) == 0 || now.Sub(ss[len(ss)-1].at) >= time.Second {
		ss = append(ss, cur)
	}
	s.samples[run.ID] = ss
	return oldest
}

// view is run with its progress, rate and ETA at now.
func (s *Service) view(ctx context.Context, run store.Run, now time.Time) (RunView, error) {
	prog, err := s.runProgress(ctx, run)
	if err != nil {
		return RunView{}, storeFailure(err, "run "+run.ID)
	}
	v := RunView{Run: run, Progress: prog}
	cur := sample{at: now, delivered: delivered(prog), done: run.Recipients - prog.Open}
	old := s.note(run, prog, now)
	if !run.FinishedAt.IsZero() {
		old, cur.at = sample{at: run.StartedAt}, run.FinishedAt
	} else if cur.at.Sub(old.at) < time.Second {
		old = sample{at: run.StartedAt}
	}
	elapsed := cur.at.Sub(old.at).Seconds()
	if elapsed <= 0 {
		return v, nil
	}
	v.Rate = float64(cur.delivered-old.delivered) / elapsed
	if run.State == store.RunRunning && run.Materialised && prog.Open > 0 {
		if pace := float64(cur.done-old.done) / elapsed; pace > 0 {
			v.ETA = now.Add(time.Duration(float64(prog.Open) / pace * float64(time.Second))).Truncate(time.Second)
		}
	}
	return v, nil
}

// Runs returns a campaign's runs with their progress, newest first (the latest 100).
func (s *Service) Runs(ctx context.Context, campaignID string) ([]RunView, error) {
	if _, err := s.Get(ctx, campaignID); err != nil {
		return nil, err
	}
	runs, err := s.cfg.Store.RunList(ctx, campaignID, maxRuns)
	if err != nil {
		return nil, storeFailure(err, "campaign "+campaignID)
	}
	now := s.now()
	out := make([]RunView, 0, len(runs))
	for _, r := range runs {
		v, err := s.view(ctx, r, now)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Run returns one run of a campaign with its progress.
func (s *Service) Run(ctx context.Context, campaignID, runID string) (RunView, error) {
	run, err := s.cfg.Store.RunGet(ctx, runID)
	if err == nil && run.CampaignID != campaignID {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		if _, gerr := s.Get(ctx, campaignID); gerr != nil {
			return RunView{}, gerr
		}
	}
	if err != nil {
		return RunView{}, storeFailure(err, "run "+runID)
	}
	return s.view(ctx, run, s.now())
}
