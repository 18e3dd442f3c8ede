package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The campaigns area (store.Campaigns). Runs are leased as messages are (RunClaim with FOR
// UPDATE SKIP LOCKED), so nodes share the runs and never work one at once. A run's audience is
// materialised by one INSERT … SELECT per chunk that also moves the run's cursor and counts;
// a chunk of messages is stored with its recipients' new states in one transaction, by the
// inserts of MessagesAccept, and wakes every node's workers as an accept does.

// defaultMaterialiseLimit is RunMaterialise's chunk when the caller gives none.
const defaultMaterialiseLimit = 1000

// scanCampaign reads one row of campaignColumns.
func scanCampaign(sc scanner) (store.Campaign, error) {
	var (
		c                            store.Campaign
		j                            driverkit.CampaignJSON
		version                      int32
		next, last, created, updated pgtype.Timestamptz
	)
	if err := sc.Scan(&c.ID, &c.Name, &c.Template, &version, &j.Lists, &c.Segment, &c.From, &c.ReplyTo,
		&c.Subject, &j.Data, &j.Tags, &c.Rate, &j.Schedule, &j.Cap, &c.ResumeNextDay, &c.State, &j.PauseReasons,
		&next, &last, &created, &updated); err != nil {
		return store.Campaign{}, err
	}
	c.TemplateVersion = int(version)
	c.NextRunAt, c.LastRunAt = fromTS(next), fromTS(last)
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	if err := j.Decode(&c); err != nil {
		return store.Campaign{}, err
	}
	if !c.Schedule.At.IsZero() {
		c.Schedule.At = c.Schedule.At.UTC()
	}
	return c, nil
}

// campaignArgs are the values of $2…$15 of qCampaignUpdate (and of the insert's, in its order).
func campaignArgs(c *store.Campaign, j driverkit.CampaignJSON) []any {
	return []any{c.Name, c.Template, int32(c.TemplateVersion), textOrNil(j.Lists), c.Segment, c.From,
		c.ReplyTo, c.Subject, textOrNil(j.Data), textOrNil(j.Tags), c.Rate, string(j.Schedule),
		string(j.Cap), c.ResumeNextDay}
}

// CampaignCreate implements store.Campaigns. An id that exists is ErrConflict.
func (s *Store) CampaignCreate(ctx context.Context, c store.Campaign) (store.Campaign, error) {
	j, err := driverkit.EncodeCampaignJSON(c)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: campaign %s: %w", c.ID, err)
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	args := append([]any{c.ID}, campaignArgs(&c, j)...)
	args = append(args, c.State, textOrNil(j.PauseReasons), ts(c.NextRunAt), ts(c.LastRunAt),
		tsNotNull(c.CreatedAt), tsNotNull(c.UpdatedAt))
	out, err := scanCampaign(s.pool.QueryRow(ctx, qCampaignInsert, args...))
	if isUnique(err) {
		return store.Campaign{}, fmt.Errorf("campaign %s exists: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: creating campaign %s: %w", c.ID, unavailable(err))
	}
	return out, nil
}

// CampaignGet implements store.Campaigns.
func (s *Store) CampaignGet(ctx context.Context, id string) (store.Campaign, error) {
	c, err := scanCampaign(s.pool.QueryRow(ctx, qCampaignGet, id))
	if noRows(err) {
		return store.Campaign{}, fmt.Errorf("campaign %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: campaign %s: %w", id, unavailable(err))
	}
	return c, nil
}

// CampaignList implements store.Campaigns. A cursor that is not a campaign id is ErrBadCursor.
func (s *Store) CampaignList(ctx context.Context, p store.CampaignListParams) ([]store.Campaign, string, error) {
	if p.Cursor != "" && !strings.HasPrefix(p.Cursor, id.Campaign+"_") {
		return nil, "", fmt.Errorf("campaign cursor %q: %w", p.Cursor, store.ErrBadCursor)
	}
	limit := driverkit.ListLimit(p.Limit)
	page, err := readAll(ctx, s, qCampaignList, []any{p.State, p.Cursor, int64(limit + 1)}, scanCampaign)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing campaigns: %w", unavailable(err))
	}
	page, next := driverkit.CampaignPage(page, limit)
	return page, next, nil
}

// campaignStateError is the error of a change refused for the campaign's state: ErrNotFound
// without the campaign, else ErrConflict with the campaign as it is.
func (s *Store) campaignStateError(ctx context.Context, id, what string) (store.Campaign, error) {
	c, err := s.CampaignGet(ctx, id)
	if err != nil {
		return store.Campaign{}, err
	}
	return c, fmt.Errorf("campaign %s is %s, cannot %s it: %w", id, c.State, what, store.ErrConflict)
}

// CampaignUpdate implements store.Campaigns.
func (s *Store) CampaignUpdate(ctx context.Context, c store.Campaign, states []string) (store.Campaign, error) {
	j, err := driverkit.EncodeCampaignJSON(c)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: campaign %s: %w", c.ID, err)
	}
	args := append([]any{c.ID}, campaignArgs(&c, j)...)
	args = append(args, ts(c.NextRunAt), tsNotNull(c.UpdatedAt), nonNilStrings(states))
	out, err := scanCampaign(s.pool.QueryRow(ctx, qCampaignUpdate, args...))
	if noRows(err) {
		return s.campaignStateError(ctx, c.ID, "update")
	}
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: updating campaign %s: %w", c.ID, unavailable(err))
	}
	return out, nil
}

// CampaignDelete implements store.Campaigns: the runs, recipients and frequency-cap records go
// with it (ON DELETE CASCADE); the messages stay.
func (s *Store) CampaignDelete(ctx context.Context, id string, states []string) error {
	tag, err := s.pool.Exec(ctx, qCampaignDelete, id, nonNilStrings(states))
	if err != nil {
		return fmt.Errorf("postgres: deleting campaign %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		_, err := s.campaignStateError(ctx, id, "delete")
		return err
	}
	return nil
}

// CampaignSetState implements store.Campaigns.
func (s *Store) CampaignSetState(ctx context.Context, p store.CampaignSetStateParams) (store.Campaign, error) {
	reasons, err := driverkit.EncodeReasons(p.PauseReasons)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: campaign %s: %w", p.ID, err)
	}
	c, err := scanCampaign(s.pool.QueryRow(ctx, qCampaignSetState, p.ID, p.To, textOrNil(reasons), ts(p.NextRunAt),
		tsNotNull(p.Now), nonNilStrings(p.From)))
	if noRows(err) {
		return s.campaignStateError(ctx, p.ID, "make "+p.To)
	}
	if err != nil {
		return store.Campaign{}, fmt.Errorf("postgres: campaign %s: %w", p.ID, unavailable(err))
	}
	return c, nil
}

// CampaignsDue implements store.Campaigns.
func (s *Store) CampaignsDue(ctx context.Context, now time.Time, limit int) ([]store.Campaign, error) {
	if limit <= 0 {
		return nil, nil
	}
	cs, err := readAll(ctx, s, qCampaignsDue, []any{tsNotNull(now), int64(limit)}, scanCampaign)
	if err != nil {
		return nil, fmt.Errorf("postgres: campaigns due: %w", unavailable(err))
	}
	return cs, nil
}

// CampaignDayCount implements store.Campaigns.
func (s *Store) CampaignDayCount(ctx context.Context, day string) (int, error) {
	var n int32
	err := s.pool.QueryRow(ctx, qCampaignDayCount, day).Scan(&n)
	if noRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: campaign messages of %s: %w", day, unavailable(err))
	}
	return int(n), nil
}

// scanRun reads one row of runColumns.
func scanRun(sc scanner) (store.Run, error) {
	var (
		r                                                 store.Run
		reasons, excluded                                 []byte
		version, recipients                               int32
		scheduled, leaseUntil, started, finished, updated pgtype.Timestamptz
	)
	if err := sc.Scan(&r.ID, &r.CampaignID, &scheduled, &r.State, &reasons, &version, &r.Materialised,
		&r.Cursor, &recipients, &excluded, &r.LeaseOwner, &leaseUntil, &started, &finished, &updated); err != nil {
		return store.Run{}, err
	}
	r.TemplateVersion, r.Recipients = int(version), int(recipients)
	r.ScheduledAt, r.LeaseUntil = fromTS(scheduled), fromTS(leaseUntil)
	r.StartedAt, r.FinishedAt, r.UpdatedAt = fromTS(started), fromTS(finished), fromTS(updated)
	return r, driverkit.DecodeRun(&r, reasons, excluded)
}

// RunCreate implements store.Campaigns.
func (s *Store) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, error) {
	r := p.Run
	var out store.Run
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, qCampaignLockState, r.CampaignID).Scan(&state)
		if noRows(err) {
			return fmt.Errorf("campaign %s: %w", r.CampaignID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(p.CampaignFrom, state) {
			return fmt.Errorf("campaign %s is %s, cannot start a run: %w", r.CampaignID, state, store.ErrConflict)
		}
		out, err = scanRun(tx.QueryRow(ctx, qRunInsert, r.ID, r.CampaignID, tsNotNull(r.ScheduledAt),
			int32(r.TemplateVersion), p.Owner, ts(p.LeaseUntil), tsNotNull(r.StartedAt)))
		if noRows(err) {
			return fmt.Errorf("campaign %s has a run scheduled at %s: %w", r.CampaignID,
				r.ScheduledAt.UTC().Format(time.RFC3339Nano), store.ErrConflict)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, qCampaignStarted, r.CampaignID, ts(p.NextRunAt), tsNotNull(r.ScheduledAt),
			tsNotNull(r.StartedAt))
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return store.Run{}, err
		}
		if isUnique(err) { // the id of another run
			return store.Run{}, fmt.Errorf("run %s exists: %w", r.ID, store.ErrConflict)
		}
		return store.Run{}, fmt.Errorf("postgres: creating run %s: %w", r.ID, unavailable(err))
	}
	return out, nil
}

// RunGet implements store.Campaigns.
func (s *Store) RunGet(ctx context.Context, id string) (store.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, qRunGet, id))
	if noRows(err) {
		return store.Run{}, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("postgres: run %s: %w", id, unavailable(err))
	}
	return r, nil
}

// RunList implements store.Campaigns. A limit <= 0 is DefaultListLimit.
func (s *Store) RunList(ctx context.Context, campaignID string, limit int) ([]store.Run, error) {
	runs, err := readAll(ctx, s, qRunList, []any{campaignID, int64(driverkit.ListLimit(limit))}, scanRun)
	if err != nil {
		return nil, fmt.Errorf("postgres: runs of campaign %s: %w", campaignID, unavailable(err))
	}
	return runs, nil
}

// RunClaim implements store.Campaigns. Owner and LeaseUntil are required; a Limit <= 0 claims
// nothing.
func (s *Store) RunClaim(ctx context.Context, p store.RunClaimParams) ([]store.Run, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("postgres: RunClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	runs, err := readAll(ctx, s, qRunClaim, []any{p.Owner, ts(p.LeaseUntil), tsNotNull(p.Now), int64(p.Limit)}, scanRun)
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming runs: %w", unavailable(err))
	}
	// RETURNING does not keep the subquery's order.
	slices.SortFunc(runs, func(a, b store.Run) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return runs, nil
}

// RunRenewLeases implements store.Campaigns.
func (s *Store) RunRenewLeases(ctx context.Context, p store.RunRenewParams) (int, error) {
	if p.Owner == "" || p.Until.IsZero() {
		return 0, errors.New("postgres: RunRenewLeases needs an Owner and an Until")
	}
	if len(p.IDs) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, qRunRenew, ts(p.Until), p.IDs, p.Owner)
	if err != nil {
		return 0, fmt.Errorf("postgres: renewing run leases: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// RunReleaseLeases implements store.Campaigns: owner is a prefix of the owners whose leases end.
func (s *Store) RunReleaseLeases(ctx context.Context, owner string) (int, error) {
	tag, err := s.pool.Exec(ctx, qRunRelease, owner)
	if err != nil {
		return 0, fmt.Errorf("postgres: releasing run leases: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// runLeaseError is the error of a step refused because Owner does not hold run id's lease (or
// the run's state forbids it): ErrNotFound without the run, else ErrConflict.
func (s *Store) runLeaseError(ctx context.Context, id, owner string) error {
	var one int
	err := s.pool.QueryRow(ctx, qRunExists, id).Scan(&one)
	switch {
	case noRows(err):
		return fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: run %s: %w", id, unavailable(err))
	}
	return fmt.Errorf("run %s is not leased to %s or not running: %w", id, owner, store.ErrConflict)
}

// RunMaterialise implements store.Campaigns: one statement (materialiseQuery) reads the next
// contacts of the audience after the run's cursor, classifies them, inserts the included ones
// and moves the run's cursor and counts. With a segment it differs with every filter, so it runs
// unprepared (filterMode), as SegmentCount does.
func (s *Store) RunMaterialise(ctx context.Context, p store.RunMaterialiseParams) (store.RunMaterialiseResult, error) {
	a := p.Audience
	lists := slices.Compact(slices.Sorted(slices.Values(a.Lists)))
	if len(lists) == 0 && a.Filter == nil {
		return store.RunMaterialiseResult{}, fmt.Errorf("postgres: run %s: an audience needs lists or a segment", p.RunID)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultMaterialiseLimit
	}
	// NULL: no cap; -infinity (tsNotNull of the zero time): once per contact.
	var capFrom pgtype.Timestamptz
	if since, ok := driverkit.CapSince(a.Cap, p.Now); ok {
		capFrom = tsNotNull(since)
	}
	args := []any{p.RunID, p.Owner, int64(limit), tsNotNull(p.Now), capFrom, a.CampaignID}
	if len(lists) > 0 {
		args = append(args, lists)
	}
	var joins, where string
	if a.Filter != nil {
		q, err := driverkit.FilterWhere(dialect{}, a.Filter, p.Now, matFilterFirst(len(lists) > 0))
		if err != nil {
			return store.RunMaterialiseResult{}, fmt.Errorf("postgres: %w", err)
		}
		joins, where = q.Joins, q.Where
		args = append(append([]any{s.filterMode()}, args...), q.Args...)
	}
	var (
		res                                       store.RunMaterialiseResult
		added, unsub, pending, suppressed, capped int64
		held                                      bool
	)
	err := s.pool.QueryRow(ctx, materialiseQuery(len(lists) > 0, joins, where), args...).Scan(
		&added, &unsub, &pending, &suppressed, &capped, &res.Done, &held)
	if err != nil {
		return store.RunMaterialiseResult{}, fmt.Errorf("postgres: materialising run %s: %w", p.RunID, unavailable(err))
	}
	if !held {
		return store.RunMaterialiseResult{}, s.runLeaseError(ctx, p.RunID, p.Owner)
	}
	res.Added = int(added)
	res.Excluded = store.ExcludedCounts{Unsubscribed: int(unsub), Pending: int(pending),
		Suppressed: int(suppressed), Capped: int(capped)}
	return res, nil
}

// runRecipientScan reads the columns of runRecipientColumns into r, then into more (the
// columns that follow them).
type runRecipientScan struct {
	sc      scanner
	r       *store.RunRecipient
	updated pgtype.Timestamptz
}

func (rs *runRecipientScan) Scan(more ...any) error {
	r := rs.r
	dest := append([]any{&r.RunID, &r.ContactID, &r.Email, &r.ListID, &r.Status, &r.MessageID, &r.Reason,
		&rs.updated}, more...)
	if err := rs.sc.Scan(dest...); err != nil {
		return err
	}
	r.UpdatedAt = fromTS(rs.updated)
	return nil
}

func scanRunRecipient(sc scanner) (store.RunRecipient, error) {
	var r store.RunRecipient
	err := (&runRecipientScan{sc: sc, r: &r}).Scan()
	return r, err
}

// RunPending implements store.Campaigns. A limit <= 0 is DefaultListLimit.
func (s *Store) RunPending(ctx context.Context, p store.RunPendingParams) ([]store.RunRecipient, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	out, err := readAll(ctx, s, qRunPending, []any{p.RunID, p.After, int64(limit)}, func(sc scanner) (store.RunRecipient, error) {
		var r store.RunRecipient
		c, err := scanContact(&runRecipientScan{sc: sc, r: &r})
		r.Contact = c
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pending recipients of run %s: %w", p.RunID, unavailable(err))
	}
	return out, nil
}

// RunQueue implements store.Campaigns, in one transaction: the run is locked (shared) and its
// lease checked; the recipients still pending take their outcomes; the messages of those that got one are inserted as MessagesAccept inserts them (and, as
// there, the due ones this node's delivery has room for are stored claimed and handed to it);
// the cap's records and the day's count follow. Once committed, every node's workers of the
// messages' streams are woken.
func (s *Store) RunQueue(ctx context.Context, p store.RunQueueParams) error {
	if err := driverkit.CheckRunQueue(p); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	items := make(map[string]*store.RunQueueItem, len(p.Items))
	var contacts, statuses, msgIDs, reasons []string
	var news []store.NewMessage
	for i := range p.Items {
		it := &p.Items[i]
		items[it.ContactID] = it // one per contact (CheckRunQueue)
		status, msgID := it.Status, ""
		if it.Message != nil {
			status, msgID = store.CampaignRecipientQueued, it.Message.Message.ID
			news = append(news, *it.Message)
		}
		contacts, statuses, msgIDs, reasons = append(contacts, it.ContactID), append(statuses, status),
			append(msgIDs, msgID), append(reasons, it.Reason)
	}
	// Checked before anything is written; the messages of recipients no longer pending are
	// dropped in the transaction.
	msgs, raws, err := driverkit.PrepareAccepts(store.MessagesAcceptParams{Messages: news, Now: p.Now})
	if err != nil {
		return fmt.Errorf("postgres: run %s: %w", p.RunID, err)
	}
	day := p.Day
	if day == "" {
		day = p.Now.UTC().Format(time.DateOnly)
	}
	var (
		handed  driverkit.HandOff
		streams map[string]struct{}
	)
	defer func() { handed.Unreserve() }() // unless delivered
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		handed.Unreserve() // of an earlier attempt
		handed, streams = nil, nil
		var state, owner, campaignID string
		err := tx.QueryRow(ctx, qRunLockShare, p.RunID).Scan(&state, &owner, &campaignID)
		if noRows(err) {
			return fmt.Errorf("run %s: %w", p.RunID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if owner != p.Owner || owner == "" || state != store.RunRunning {
			return fmt.Errorf("run %s is %s, leased to %q, not queueing for %q: %w", p.RunID, state, owner, p.Owner,
				store.ErrConflict)
		}
		if len(contacts) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, qRunRecipientsSet, p.RunID, tsNotNull(p.Now), contacts, statuses, msgIDs, reasons)
		if err != nil {
			return err
		}
		changed, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		queued := make(map[string]bool, len(changed)) // message ids to insert
		var sent []string                             // contacts given a message
		for _, c := range changed {
			if m := items[c].Message; m != nil {
				queued[m.Message.ID] = true
				sent = append(sent, c)
			}
		}
		var keep []store.Message
		var keepRaw [][]byte
		for i := range msgs {
			if queued[msgs[i].ID] {
				keep, keepRaw = append(keep, msgs[i]), append(keepRaw, raws[i])
			}
		}
		if len(keep) == 0 {
			return nil
		}
		handed = s.recv.Claim(keep, keepRaw, p.Now, roundTrip, s.streamPaused)
		acc, st, err := acceptRowsOf(keep, keepRaw)
		if err != nil {
			return err
		}
		streams = st
		b := &pgx.Batch{}
		queueAccept(b, acc.msgs, acc.raws, acc.recips)
		b.Queue(qCampaignContactsSet, campaignID, tsNotNull(p.Now), sent)
		b.Queue(qCampaignDayAdd, day, int32(len(keep)))
		paused, err := sendAccept(ctx, tx, b)
		handed = handed.Without(paused)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("postgres: queueing messages of run %s: %w", p.RunID, unavailable(err))
	}
	handed.Deliver()
	handed = nil
	s.signal(streams)
	return nil
}

// RunSetState implements store.Campaigns, in one transaction with the run locked.
func (s *Store) RunSetState(ctx context.Context, p store.RunSetStateParams) (store.Run, error) {
	reasons, err := driverkit.EncodeReasons(p.PauseReasons)
	if err != nil {
		return store.Run{}, fmt.Errorf("postgres: run %s: %w", p.ID, err)
	}
	campaignReasons, err := driverkit.EncodeReasons(p.CampaignReasons)
	if err != nil {
		return store.Run{}, fmt.Errorf("postgres: run %s: %w", p.ID, err)
	}
	now := tsNotNull(p.Now)
	var (
		out     store.Run
		streams = map[string]struct{}{}
		written int
	)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		clear(streams)
		written = 0
		var state, campaignID string
		err := tx.QueryRow(ctx, qRunLock, p.ID).Scan(&state, &campaignID)
		if noRows(err) {
			return fmt.Errorf("run %s: %w", p.ID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(p.From, state) {
			return fmt.Errorf("run %s is %s, cannot make it %s: %w", p.ID, state, p.To, store.ErrConflict)
		}
		switch {
		case p.To == store.RunPaused:
			// Paused again (another reason) holds what went back to the queue since it paused:
			// a message in flight then, deferred or requeued by a rescue since.
			_, err = tx.Exec(ctx, qRunHold, p.ID, tsNotNull(store.HeldUntil), now)
		case p.To == store.RunRunning && state == store.RunPaused:
			err = unhold(ctx, tx, p, streams)
		case p.To == store.RunCancelled && state != store.RunCancelled:
			var n int64
			if err = tx.QueryRow(ctx, qRunCancelMessages, p.ID, now).Scan(&n); err == nil {
				written = int(n)
				_, err = tx.Exec(ctx, qRunCancelPending, p.ID, now)
			}
		}
		if err != nil {
			return err
		}
		if out, err = scanRun(tx.QueryRow(ctx, qRunSetState, p.ID, p.To, textOrNil(reasons), now)); err != nil {
			return err
		}
		if p.To == store.RunFinished && state != store.RunFinished {
			if written, err = reportRunFinished(ctx, tx, out, p.Now); err != nil {
				return err
			}
		}
		if p.Campaign != "" {
			_, err = tx.Exec(ctx, qCampaignOfRunSetState, campaignID, p.Campaign, textOrNil(campaignReasons),
				ts(p.NextRunAt), now)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return store.Run{}, err
		}
		return store.Run{}, fmt.Errorf("postgres: run %s: %w", p.ID, unavailable(err))
	}
	s.signal(streams)
	s.webhooksWritten(written)
	return out, nil
}

// reportRunFinished writes, in tx, the campaign.run_finished reports of run r, with its counts
// (counted only when the type has a route), and returns how many.
func reportRunFinished(ctx context.Context, tx pgx.Tx, r store.Run, now time.Time) (int, error) {
	var routed bool
	if err := tx.QueryRow(ctx, qRouted, store.WebhookCampaignRunFinished).Scan(&routed); err != nil || !routed {
		return 0, err
	}
	progress, _, err := runProgress(ctx, tx, r.ID)
	if err != nil {
		return 0, err
	}
	return outboxWrite(ctx, tx, now, []outboxEvent{{Type: store.WebhookCampaignRunFinished, Subject: r.ID,
		CampaignID: r.CampaignID, RunID: r.ID, At: now, Detail: driverkit.RunFinishedDetail(progress)}})
}

// unhold makes the held messages of run p.ID due at p.Now, each with at least p.TTL to go, and
// adds their streams to streams.
func unhold(ctx context.Context, tx pgx.Tx, p store.RunSetStateParams, streams map[string]struct{}) error {
	rows, err := tx.Query(ctx, qRunUnhold, p.ID, tsNotNull(store.HeldUntil), tsNotNull(p.Now), tsNotNull(p.Now.Add(p.TTL)))
	if err != nil {
		return err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, st := range got {
		streams[st] = struct{}{}
	}
	return err
}

// RunProgress implements store.Campaigns.
func (s *Store) RunProgress(ctx context.Context, runID string) (store.RunProgress, error) {
	progress, exists, err := runProgress(ctx, s.pool, runID)
	if err != nil {
		return store.RunProgress{}, fmt.Errorf("postgres: progress of run %s: %w", runID, unavailable(err))
	}
	if !exists {
		return store.RunProgress{}, fmt.Errorf("run %s: %w", runID, store.ErrNotFound)
	}
	return progress, nil
}

// runProgress counts run runID's recipients (qRunProgress) on q and reports whether the run
// exists.
func runProgress(ctx context.Context, q querier, runID string) (store.RunProgress, bool, error) {
	messages, recipients := map[string]int{}, map[string]int{}
	exists := false
	rows, err := q.Query(ctx, qRunProgress, runID)
	if err != nil {
		return store.RunProgress{}, false, err
	}
	var (
		kind, status string
		n            int64
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &status, &n}, func() error {
		switch kind {
		case "x":
			exists = n > 0
		case "r":
			recipients[status] += int(n)
		case "m":
			messages[status] += int(n)
		}
		return nil
	})
	return driverkit.Progress(messages, recipients), exists, err
}

// RunInFlight returns how many of the run's messages are scheduled, queued or sending
// (RunProgress.InFlight), counting those alone: the campaign runner asks it each time its window
// fills, where counting the whole run would cost in proportion to the run. An unknown run has
// none.
func (s *Store) RunInFlight(ctx context.Context, runID string) (int, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, qRunInFlight, runID).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: messages in flight of run %s: %w", runID, unavailable(err))
	}
	return int(n), nil
}

// RunRecipients implements store.Campaigns. A cursor that is not a contact id is ErrBadCursor.
func (s *Store) RunRecipients(ctx context.Context, p store.RunRecipientListParams) ([]store.RunRecipient, string, error) {
	if p.Cursor != "" && !strings.HasPrefix(p.Cursor, id.Contact+"_") {
		return nil, "", fmt.Errorf("recipient cursor %q: %w", p.Cursor, store.ErrBadCursor)
	}
	limit := driverkit.ListLimit(p.Limit)
	page, err := readAll(ctx, s, qRunRecipients, []any{p.RunID, p.Status, p.Cursor, int64(limit + 1)},
		scanRunRecipient)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: recipients of run %s: %w", p.RunID, unavailable(err))
	}
	page, next := driverkit.RunRecipientPage(page, limit)
	return page, next, nil
}
