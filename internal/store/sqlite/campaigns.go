package sqlite

// The campaigns area (store.Campaigns): campaigns, runs and their recipients. Every write is
// one operation of the writer; materialising a chunk of a run's audience is one INSERT … SELECT
// (materialiseQuery).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// scanCampaign reads one row of campaignColumns.
func scanCampaign(sc scanner) (store.Campaign, error) {
	var (
		c                          store.Campaign
		lists, data, tags, reasons sql.NullString
		schedule, capJSON          string
		version                    int64
		resume                     bool
		next, last                 sql.NullInt64
		created, updated           int64
	)
	if err := sc.Scan(&c.ID, &c.Name, &c.Template, &version, &lists, &c.Segment, &c.From, &c.ReplyTo, &c.Subject,
		&data, &tags, &c.Rate, &schedule, &capJSON, &resume, &c.State, &reasons, &next, &last, &created,
		&updated); err != nil {
		return store.Campaign{}, err
	}
	c.TemplateVersion, c.ResumeNextDay = int(version), resume
	c.NextRunAt, c.LastRunAt = fromMicros(next.Int64), fromMicros(last.Int64)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	j := driverkit.CampaignJSON{Schedule: []byte(schedule), Cap: []byte(capJSON)}
	if lists.Valid {
		j.Lists = []byte(lists.String)
	}
	if data.Valid {
		j.Data = []byte(data.String)
	}
	if tags.Valid {
		j.Tags = []byte(tags.String)
	}
	if reasons.Valid {
		j.PauseReasons = []byte(reasons.String)
	}
	return c, j.Decode(&c)
}

// bytesText stores JSON bytes as TEXT, nil as NULL.
func bytesText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// jsonArray is a JSON array of strings, bound as TEXT (for json_each).
func jsonArray(ss []string) (string, error) {
	b, err := json.Marshal(nonNilStrings(ss))
	return string(b), err
}

// CampaignCreate implements store.Campaigns.
func (s *Store) CampaignCreate(ctx context.Context, c store.Campaign) (store.Campaign, error) {
	j, err := driverkit.EncodeCampaignJSON(c)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: campaign %s: %w", c.ID, err)
	}
	var out store.Campaign
	err = s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qCampaignInsert, c.ID, c.Name, c.Template, int64(c.TemplateVersion), bytesText(j.Lists),
			c.Segment, c.From, c.ReplyTo, c.Subject, bytesText(j.Data), bytesText(j.Tags), c.Rate, string(j.Schedule),
			string(j.Cap), c.ResumeNextDay, c.State, bytesText(j.PauseReasons), nullMicros(c.NextRunAt),
			nullMicros(c.LastRunAt), micros(c.CreatedAt), micros(c.UpdatedAt))
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanCampaign)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("campaign %s exists: %w", c.ID, store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: creating campaign %s: %w", c.ID, err)
	}
	return out, nil
}

// CampaignGet implements store.Campaigns.
func (s *Store) CampaignGet(ctx context.Context, id string) (store.Campaign, error) {
	c, err := readOne(ctx, s, qCampaignGet, []any{id}, scanCampaign)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Campaign{}, fmt.Errorf("campaign %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: campaign %s: %w", id, err)
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
		return nil, "", fmt.Errorf("sqlite: listing campaigns: %w", err)
	}
	page, next := driverkit.CampaignPage(page, limit)
	return page, next, nil
}

// campaignRefused returns the error of a change that matched no row of campaign id: ErrNotFound
// when there is none, else ErrConflict with the campaign as it is.
func campaignRefused(t *wtx, id string) (store.Campaign, error) {
	rows, err := t.query(qCampaignGet, id)
	if err != nil {
		return store.Campaign{}, err
	}
	c, err := scanFirst(rows, scanCampaign)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Campaign{}, fmt.Errorf("campaign %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Campaign{}, err
	}
	return c, fmt.Errorf("campaign %s is %s: %w", id, c.State, store.ErrConflict)
}

// CampaignUpdate implements store.Campaigns.
func (s *Store) CampaignUpdate(ctx context.Context, c store.Campaign, states []string) (store.Campaign, error) {
	j, err := driverkit.EncodeCampaignJSON(c)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: campaign %s: %w", c.ID, err)
	}
	from, err := jsonArray(states)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: %w", err)
	}
	var out store.Campaign
	err = s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qCampaignUpdate, c.ID, from, c.Name, c.Template, int64(c.TemplateVersion),
			bytesText(j.Lists), c.Segment, c.From, c.ReplyTo, c.Subject, bytesText(j.Data), bytesText(j.Tags), c.Rate,
			string(j.Schedule), string(j.Cap), c.ResumeNextDay, nullMicros(c.NextRunAt), micros(c.UpdatedAt))
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanCampaign)
		if errors.Is(err, sql.ErrNoRows) {
			out, err = campaignRefused(t, c.ID)
		}
		return err
	})
	return out, campaignErr(err, "updating", c.ID)
}

// campaignErr wraps the error of a change of campaign id, leaving the sentinel errors the
// caller tests as they are.
func campaignErr(err error, doing, id string) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return err
	}
	return fmt.Errorf("sqlite: %s campaign %s: %w", doing, id, err)
}

// CampaignDelete implements store.Campaigns. Its runs and their recipients go with it (foreign
// keys); its messages stay.
func (s *Store) CampaignDelete(ctx context.Context, id string, states []string) error {
	from, err := jsonArray(states)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	err = s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qCampaignDelete, id, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		_, err = campaignRefused(t, id)
		return err
	})
	return campaignErr(err, "deleting", id)
}

// CampaignSetState implements store.Campaigns.
func (s *Store) CampaignSetState(ctx context.Context, p store.CampaignSetStateParams) (store.Campaign, error) {
	from, err := jsonArray(p.From)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: %w", err)
	}
	reasons, err := driverkit.EncodeReasons(p.PauseReasons)
	if err != nil {
		return store.Campaign{}, fmt.Errorf("sqlite: %w", err)
	}
	var out store.Campaign
	err = s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qCampaignSetState, p.ID, from, p.To, bytesText(reasons), nullMicros(p.NextRunAt),
			micros(p.Now))
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanCampaign)
		if errors.Is(err, sql.ErrNoRows) {
			out, err = campaignRefused(t, p.ID)
		}
		return err
	})
	return out, campaignErr(err, "changing the state of", p.ID)
}

// CampaignsDue implements store.Campaigns.
func (s *Store) CampaignsDue(ctx context.Context, now time.Time, limit int) ([]store.Campaign, error) {
	cs, err := readAll(ctx, s, qCampaignsDue, []any{micros(now), int64(limit)}, scanCampaign)
	if err != nil {
		return nil, fmt.Errorf("sqlite: campaigns due: %w", err)
	}
	return cs, nil
}

// CampaignDayCount implements store.Campaigns.
func (s *Store) CampaignDayCount(ctx context.Context, day string) (int, error) {
	n, err := readOne(ctx, s, qCampaignDayCount, []any{day}, scanValue[int64])
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: campaign messages of %s: %w", day, err)
	}
	return int(n), nil
}

// scanRun reads one row of runColumns.
func scanRun(sc scanner) (store.Run, error) {
	var (
		r                           store.Run
		reasons                     sql.NullString
		excluded                    string
		scheduled, started, updated int64
		version, recipients         int64
		leaseUntil, finished        sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.CampaignID, &scheduled, &r.State, &reasons, &version, &r.Materialised, &r.Cursor,
		&recipients, &excluded, &r.LeaseOwner, &leaseUntil, &started, &finished, &updated); err != nil {
		return store.Run{}, err
	}
	r.ScheduledAt, r.StartedAt, r.UpdatedAt = fromMicros(scheduled), fromMicros(started), fromMicros(updated)
	r.LeaseUntil, r.FinishedAt = fromMicros(leaseUntil.Int64), fromMicros(finished.Int64)
	r.TemplateVersion, r.Recipients = int(version), int(recipients)
	return r, driverkit.DecodeRun(&r, []byte(reasons.String), []byte(excluded))
}

// runErr wraps the error of a change of run id as campaignErr does.
func runErr(err error, doing, id string) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return err
	}
	return fmt.Errorf("sqlite: %s run %s: %w", doing, id, err)
}

// RunCreate implements store.Campaigns.
func (s *Store) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, error) {
	r := p.Run
	var out store.Run
	err := s.w.do(ctx, 1, func(t *wtx) error {
		var state string
		err := t.queryRow(qCampaignState, []any{r.CampaignID}, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("campaign %s: %w", r.CampaignID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(p.CampaignFrom, state) {
			return fmt.Errorf("campaign %s is %s: %w", r.CampaignID, state, store.ErrConflict)
		}
		rows, err := t.query(qRunInsert, r.ID, r.CampaignID, micros(r.ScheduledAt), int64(r.TemplateVersion), p.Owner,
			nullMicros(p.LeaseUntil), micros(r.StartedAt))
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanRun)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("campaign %s has a run at %v: %w", r.CampaignID, r.ScheduledAt, store.ErrConflict)
		}
		if err != nil {
			return err
		}
		_, err = t.exec(qRunCampaignStarted, r.CampaignID, nullMicros(p.NextRunAt), micros(r.ScheduledAt),
			micros(r.StartedAt))
		return err
	})
	return out, runErr(err, "creating", r.ID)
}

// RunGet implements store.Campaigns.
func (s *Store) RunGet(ctx context.Context, id string) (store.Run, error) {
	r, err := readOne(ctx, s, qRunGet, []any{id}, scanRun)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Run{}, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("sqlite: run %s: %w", id, err)
	}
	return r, nil
}

// RunList implements store.Campaigns.
func (s *Store) RunList(ctx context.Context, campaignID string, limit int) ([]store.Run, error) {
	rs, err := readAll(ctx, s, qRunList, []any{campaignID, int64(driverkit.ListLimit(limit))}, scanRun)
	if err != nil {
		return nil, fmt.Errorf("sqlite: runs of campaign %s: %w", campaignID, err)
	}
	return rs, nil
}

// RunClaim implements store.Campaigns.
func (s *Store) RunClaim(ctx context.Context, p store.RunClaimParams) ([]store.Run, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("sqlite: RunClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	var out []store.Run
	err := s.w.do(ctx, 1, func(t *wtx) error {
		var err error
		out, err = queryAll(t, qRunClaim, []any{p.Owner, micros(p.Now), micros(p.LeaseUntil), int64(p.Limit)}, scanRun)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claiming runs: %w", err)
	}
	slices.SortFunc(out, func(a, b store.Run) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RunRenewLeases implements store.Campaigns.
func (s *Store) RunRenewLeases(ctx context.Context, p store.RunRenewParams) (int, error) {
	if len(p.IDs) == 0 {
		return 0, nil
	}
	ids, err := jsonArray(p.IDs)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	n, err := s.execCount(ctx, qRunRenew, micros(p.Until), ids, p.Owner)
	if err != nil {
		return 0, fmt.Errorf("sqlite: renewing run leases: %w", err)
	}
	return n, nil
}

// RunReleaseLeases implements store.Campaigns: the leases whose owner begins with owner.
func (s *Store) RunReleaseLeases(ctx context.Context, owner string) (int, error) {
	n, err := s.execCount(ctx, qRunRelease, owner)
	if err != nil {
		return 0, fmt.Errorf("sqlite: releasing run leases: %w", err)
	}
	return n, nil
}

// execCount runs one statement in a write and returns the rows it changed.
func (s *Store) execCount(ctx context.Context, q string, args ...any) (int, error) {
	return s.execWeighted(ctx, 1, q, args...)
}

// execWeighted is execCount for a statement that may change up to weight rows (writer.do).
func (s *Store) execWeighted(ctx context.Context, weight int, q string, args ...any) (int, error) {
	var n int64
	err := s.w.do(ctx, weight, func(t *wtx) error {
		res, err := t.exec(q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// runWork is a run as a chunk finds it (qRunWork).
type runWork struct {
	campaign             string
	state, owner, cursor string
	materialised         bool
	excluded             store.ExcludedCounts
	capKind              string
}

// workOn reads run id for a chunk of owner: ErrNotFound when there is none, ErrConflict when
// owner does not hold its lease or its state is not one of states.
func workOn(t *wtx, id, owner string, states ...string) (runWork, error) {
	var (
		w                 runWork
		excluded, capJSON string
	)
	err := t.queryRow(qRunWork, []any{id}, &w.campaign, &w.state, &w.owner, &w.materialised, &w.cursor, &excluded,
		&capJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return w, err
	}
	if w.owner != owner {
		return w, fmt.Errorf("run %s is leased to %q, not %q: %w", id, w.owner, owner, store.ErrConflict)
	}
	if !slices.Contains(states, w.state) {
		return w, fmt.Errorf("run %s is %s: %w", id, w.state, store.ErrConflict)
	}
	var c store.FrequencyCap
	if err := json.Unmarshal([]byte(capJSON), &c); err != nil {
		return w, fmt.Errorf("run %s: its campaign's cap: %w", id, err)
	}
	w.capKind = c.Kind
	return w, json.Unmarshal([]byte(excluded), &w.excluded)
}

// A chunk of RunMaterialise holds the writer, which every other write (transactional accepts
// among them) then waits for: a chunk considers as many contacts as the writer gets through in
// chunkBudget, at the pace the last chunks went (chunkPacer), and never more than the caller
// asks.
const (
	chunkBudget   = 15 * time.Millisecond
	minChunk      = 200
	maxChunk      = 4000
	firstChunkPer = 10 * time.Microsecond // the pace assumed before any chunk was timed
)

// chunkPacer keeps the writer's time per contact of RunMaterialise's chunks, a moving average
// over the last chunks: it follows the machine, its load and the audience's shape.
type chunkPacer struct {
	perContact atomic.Int64 // nanoseconds; 0 before the first chunk
}

// size is the contacts the next chunk considers.
func (c *chunkPacer) size() int {
	per := time.Duration(c.perContact.Load())
	if per <= 0 {
		per = firstChunkPer
	}
	return min(max(int(chunkBudget/per), minChunk), maxChunk)
}

// took records that a chunk of n contacts held the writer for d. Chunks of a few contacts say
// little about the pace and are left out.
func (c *chunkPacer) took(n int, d time.Duration) {
	if n < minChunk/2 {
		return
	}
	per := int64(d) / int64(n)
	if old := c.perContact.Load(); old > 0 {
		per = (3*old + per) / 4
	}
	c.perContact.Store(per)
}

// RunMaterialise implements store.Campaigns: one INSERT … SELECT of the chunk (see
// materialiseQuery), then the contacts it left out are deleted and counted and the run's cursor
// and counts move, in one write.
func (s *Store) RunMaterialise(ctx context.Context, p store.RunMaterialiseParams) (store.RunMaterialiseResult, error) {
	limit := s.chunks.size()
	if p.Limit > 0 {
		limit = min(limit, p.Limit)
	}
	q, err := materialiseQuery(p.Audience, p.Now)
	if err != nil {
		return store.RunMaterialiseResult{}, fmt.Errorf("sqlite: run %s: %w", p.RunID, err)
	}
	var res store.RunMaterialiseResult
	err = s.w.do(ctx, limit, func(t *wtx) error {
		res = store.RunMaterialiseResult{}
		var considered int64
		start := time.Now()
		defer func() { s.chunks.took(int(considered), time.Since(start)) }()
		w, err := workOn(t, p.RunID, p.Owner, store.RunRunning, store.RunPaused)
		if err != nil {
			return err
		}
		if w.materialised {
			res.Done = true
			return nil
		}
		args := slices.Clone(q.args)
		args[0], args[1], args[2] = p.RunID, w.cursor, int64(limit)
		cursor := w.cursor
		if q.bound != "" {
			// The chunk's bounds first: its contacts are those up to the last one considered.
			var last sql.NullString
			if err := t.queryRow(q.bound, append([]any{w.cursor, int64(limit)}, q.boundArgs...), &considered,
				&last); err != nil {
				return err
			}
			res.Done = considered < int64(limit)
			if considered == 0 {
				return t.execMaterialised(p, w, cursor, res)
			}
			cursor, args[3] = last.String, last.String
		}
		var ins sql.Result
		if q.cache {
			ins, err = t.exec(q.text, args...)
		} else {
			// A segment's statement differs with each segment: prepared for this one use.
			ins, err = t.w.conn.ExecContext(context.Background(), q.text, args...)
		}
		if err != nil {
			return err
		}
		inserted, err := ins.RowsAffected()
		if err != nil {
			return err
		}
		if q.bound == "" {
			considered = inserted
			res.Done = considered < int64(limit)
			if considered > 0 {
				if err := t.queryRow(qRunLastContact, []any{p.RunID}, &cursor); err != nil {
					return err
				}
			}
		}
		x := &res.Excluded
		rows, err := t.query(qRunDropExcluded, p.RunID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var why string
			if err := rows.Scan(&why); err != nil {
				rows.Close()
				return err
			}
			switch why {
			case "-unsubscribed":
				x.Unsubscribed++
			case "-pending":
				x.Pending++
			case "-suppressed":
				x.Suppressed++
			case "-capped":
				x.Capped++
			}
			inserted--
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		res.Added = int(inserted)
		return t.execMaterialised(p, w, cursor, res)
	})
	if err != nil {
		return store.RunMaterialiseResult{}, runErr(err, "materialising", p.RunID)
	}
	return res, nil
}

// execMaterialised records a chunk's outcome on its run: the cursor, the counts, done.
func (t *wtx) execMaterialised(p store.RunMaterialiseParams, w runWork, cursor string, res store.RunMaterialiseResult) error {
	total := w.excluded
	total.Unsubscribed += res.Excluded.Unsubscribed
	total.Pending += res.Excluded.Pending
	total.Suppressed += res.Excluded.Suppressed
	total.Capped += res.Excluded.Capped
	excluded, err := json.Marshal(total)
	if err != nil {
		return err
	}
	_, err = t.exec(qRunMaterialised, p.RunID, cursor, int64(res.Added), string(excluded), res.Done, micros(p.Now))
	return err
}

// materialiseStmt is a chunk's INSERT … SELECT: its text, the values of its parameters (the
// first four, the run, the cursor, the limit and the chunk's last contact id, are left for the
// writer to set), and whether the writer may keep it prepared. bound, for an audience with a
// segment, is the query the chunk's bounds are found with first (the count and the last id of
// the next contacts by id; its parameters are the cursor, the limit and boundArgs).
type materialiseStmt struct {
	text      string
	args      []any
	cache     bool
	bound     string
	boundArgs []any
}

// materialiseQuery assembles the statements of one chunk of a run's audience. The chunk is the
// next contacts by id after the cursor: with lists, the members of any of them (one ordered scan
// of each list's primary key, merged by UNION), each with the lowest of its subscribed audience
// lists (one probe of the primary key per list, lowest first); with a segment alone, every
// contact. A segment then keeps those it matches: the chunk is first bounded
// (materialiseStmt.bound) by the contacts it considers, so that a segment matching few of them
// does not make the chunk read many. Every contact kept is inserted with the state naming the
// first reason it is left out ("-unsubscribed" or "-pending" on every audience list,
// "-unsubscribed" from broadcast mail, "-suppressed" in the global or broadcast scope,
// "-capped") or pending; RunMaterialise then deletes and counts the ones left out. So the
// chunk is read once, and without a segment its count and last id are those of the rows
// inserted. The chunk is a subquery with a LIMIT, which SQLite does not flatten into the join
// with contacts: its list is computed once per contact, though read twice.
func materialiseQuery(a store.RunAudience, now time.Time) (materialiseStmt, error) {
	if len(a.Lists) == 0 && a.Filter == nil {
		return materialiseStmt{}, errors.New("an audience needs lists or a segment")
	}
	var (
		st  = materialiseStmt{args: make([]any, 4), cache: a.Filter == nil}
		f   driverkit.FilterSQL
		err error
	)
	run, cursor, limit, last := "?1", "?2", "?3", "?4"
	if a.Filter != nil {
		if f, err = driverkit.FilterWhere(dialect{}, a.Filter, now, 5); err != nil {
			return st, err
		}
		st.args = append(st.args, f.Args...)
	}
	arg := func(v any) string {
		st.args = append(st.args, v)
		return "?" + strconv.Itoa(len(st.args))
	}
	lists := slices.Compact(slices.Sorted(slices.Values(a.Lists)))
	listArg := make([]string, len(lists)) // the parameter of each list
	for i, l := range lists {
		listArg[i] = arg(l)
	}
	// members is the merge of the lists' members after the cursor, up to upTo, as column cid.
	members := func(lists []string, cursor, upTo string) string {
		var b strings.Builder
		for i, l := range lists {
			if i > 0 {
				b.WriteString(" UNION ")
			}
			b.WriteString("SELECT contact_id AS cid FROM subscriptions WHERE list_id = " + l + " AND contact_id > " +
				cursor + upTo)
		}
		return b.String() + " ORDER BY 1"
	}

	var b strings.Builder
	if len(lists) > 0 {
		upTo := ""
		if a.Filter != nil {
			upTo = " AND contact_id <= " + last
		}
		b.WriteString("WITH chunk(cid, lid) AS (SELECT m.cid, coalesce(")
		for _, l := range listArg {
			b.WriteString("(SELECT " + l + " FROM subscriptions s WHERE s.list_id = " + l +
				" AND s.contact_id = m.cid AND s.status = 'subscribed'), ")
		}
		b.WriteString("NULL) FROM (" + members(listArg, cursor, upTo) + ") AS m LIMIT " + limit + ")\n")
	} else {
		b.WriteString("WITH chunk(cid, lid) AS (SELECT id, NULL FROM contacts WHERE id > " + cursor + " AND id <= " +
			last + " LIMIT " + limit + ")\n")
	}
	if a.Filter != nil {
		st.boundArgs = make([]any, len(lists))
		boundLists := make([]string, len(lists))
		for i, l := range lists {
			st.boundArgs[i] = l
			boundLists[i] = "?" + strconv.Itoa(i+3)
		}
		if len(lists) > 0 {
			st.bound = "SELECT count(*), max(cid) FROM (" + members(boundLists, "?1", "") + " LIMIT ?2)"
		} else {
			st.bound = "SELECT count(*), max(id) FROM (SELECT id FROM contacts WHERE id > ?1 ORDER BY id LIMIT ?2)"
		}
	}

	nowArg := arg(micros(now))
	// A global suppression, or one in the broadcast scope (one range of the primary key): an
	// unsubscribe from all broadcast mail counts as unsubscribed, any other cause as suppressed.
	state := "coalesce((SELECT CASE min(CASE WHEN scope = 'broadcast' AND reason = 'unsubscribe' THEN 2 ELSE 1 END)" +
		" WHEN 1 THEN '-suppressed' WHEN 2 THEN '-unsubscribed' END FROM suppressions" +
		" WHERE email = contacts.email_key AND scope BETWEEN 'broadcast' AND 'global'" +
		" AND +scope IN ('broadcast', 'global') AND (expires_at IS NULL OR expires_at > " + nowArg + ")), "
	if since, ok := driverkit.CapSince(a.Cap, now); ok {
		state += "CASE WHEN EXISTS (SELECT 1 FROM campaign_contacts WHERE campaign_id = " + arg(a.CampaignID) +
			" AND contact_id = chunk.cid AND last_at > " + arg(micros(since)) + ") THEN '-capped' ELSE 'pending' END)"
	} else {
		state += "'pending')"
	}
	if len(lists) > 0 {
		listsJSON, err := jsonArray(lists)
		if err != nil {
			return st, err
		}
		state = "CASE WHEN lid IS NULL THEN CASE WHEN EXISTS (SELECT 1 FROM subscriptions s" +
			" WHERE s.contact_id = chunk.cid AND s.list_id IN (SELECT value FROM json_each(" + arg(listsJSON) + "))" +
			" AND s.status = 'pending') THEN '-pending' ELSE '-unsubscribed' END ELSE " + state + " END"
	}
	b.WriteString("INSERT INTO campaign_recipients (run_id, contact_id, email, list_id, status, updated_at)\n")
	b.WriteString("SELECT " + run + ", chunk.cid, contacts.email, coalesce(lid, ''), " + state + ", " + nowArg +
		" FROM chunk CROSS JOIN contacts ON contacts.id = chunk.cid" + f.Joins)
	if a.Filter != nil {
		b.WriteString(" WHERE " + f.Where)
	}
	st.text = b.String()
	return st, nil
}

// scanRecipient reads the recipientColumns of a row.
func scanRunRecipient(r *store.RunRecipient, sc scanner, more ...any) error {
	var updated int64
	dest := append([]any{&r.ContactID, &r.Email, &r.ListID, &r.Status, &r.MessageID, &r.Reason, &updated}, more...)
	if err := sc.Scan(dest...); err != nil {
		return err
	}
	r.UpdatedAt = fromMicros(updated)
	return nil
}

// RunPending implements store.Campaigns, on the read pool.
func (s *Store) RunPending(ctx context.Context, p store.RunPendingParams) ([]store.RunRecipient, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	rs, err := readAll(ctx, s, qRunPending, []any{p.RunID, p.After, int64(limit)}, func(sc scanner) (store.RunRecipient, error) {
		r := store.RunRecipient{RunID: p.RunID}
		var (
			c                store.Contact
			ext              sql.NullString
			attrs            string
			active           sql.NullInt64
			created, updated int64
		)
		err := scanRunRecipient(&r, sc, &c.ID, &c.Email, &c.EmailKey, &ext, &c.Name, &c.Locale, &c.Timezone, &attrs,
			&active, &created, &updated)
		c.ExternalID, c.Attributes = ext.String, json.RawMessage(attrs)
		c.LastActiveAt, c.CreatedAt, c.UpdatedAt = fromMicros(active.Int64), fromMicros(created), fromMicros(updated)
		r.Contact = c
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending recipients of run %s: %w", p.RunID, err)
	}
	return rs, nil
}

// RunRecipients implements store.Campaigns, on the read pool. A cursor that is not a contact
// id is ErrBadCursor.
func (s *Store) RunRecipients(ctx context.Context, p store.RunRecipientListParams) ([]store.RunRecipient, string, error) {
	if p.Cursor != "" && !strings.HasPrefix(p.Cursor, id.Contact+"_") {
		return nil, "", fmt.Errorf("recipient cursor %q: %w", p.Cursor, store.ErrBadCursor)
	}
	limit := driverkit.ListLimit(p.Limit)
	q, args := qRunRecipients, []any{p.RunID, p.Cursor, int64(limit + 1)}
	if p.Status != "" {
		q, args = qRunRecipientsByStatus, append(args, p.Status)
	}
	page, err := readAll(ctx, s, q, args, func(sc scanner) (store.RunRecipient, error) {
		r := store.RunRecipient{RunID: p.RunID}
		return r, scanRunRecipient(&r, sc)
	})
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: recipients of run %s: %w", p.RunID, err)
	}
	page, next := driverkit.RunRecipientPage(page, limit)
	return page, next, nil
}

// queueStmts are the writes of a RunQueue: the messages' INSERTs, the recipients' outcomes (the
// JSON qRunQueueRecipients reads) and the contacts given a message.
type queueStmts struct {
	inserts  []insertStmt
	outcomes string
	queued   []string
}

// queueItem is a RunQueueItem encoded by the caller's goroutine.
type queueItem struct {
	contact string
	msg     int   // index in the messages, -1 for none
	outcome []any // [contact, state, message id or nil, reason]
}

// RunQueue implements store.Campaigns. The messages are encoded by the caller's goroutine into
// MessagesAccept's INSERTs (messageInserts); the writer checks which recipients are still
// pending and, in the rare case that some are not, encodes the INSERTs again for the others.
func (s *Store) RunQueue(ctx context.Context, p store.RunQueueParams) error {
	if err := driverkit.CheckRunQueue(p); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	var (
		newMsgs []store.NewMessage
		items   = make([]queueItem, len(p.Items))
		ids     = make([]string, len(p.Items))
	)
	for i, it := range p.Items {
		items[i] = queueItem{contact: it.ContactID, msg: -1}
		ids[i] = it.ContactID
		if it.Message != nil {
			items[i].msg = len(newMsgs)
			newMsgs = append(newMsgs, *it.Message)
			items[i].outcome = []any{it.ContactID, store.CampaignRecipientQueued, it.Message.Message.ID, ""}
		} else {
			items[i].outcome = []any{it.ContactID, it.Status, nil, it.Reason}
		}
	}
	msgs, raws, err := driverkit.PrepareAccepts(store.MessagesAcceptParams{Messages: newMsgs, Now: p.Now})
	if err != nil {
		return fmt.Errorf("sqlite: run %s: %w", p.RunID, err)
	}
	streams := map[string]struct{}{} // to wake
	for _, m := range msgs {
		streams[m.Stream] = struct{}{}
	}
	// encode returns the statements of the items whose contacts are in pending (all when nil).
	encode := func(pending map[string]bool) (queueStmts, error) {
		var (
			q    queueStmts
			ms   []store.Message
			rs   [][]byte
			outs [][]any
		)
		for _, it := range items {
			if pending != nil && !pending[it.contact] {
				continue
			}
			outs = append(outs, it.outcome)
			if it.msg >= 0 {
				ms, rs = append(ms, msgs[it.msg]), append(rs, raws[it.msg])
				q.queued = append(q.queued, it.contact)
			}
		}
		var err error
		if q.inserts, err = messageInserts(ms, rs, map[string]struct{}{}); err != nil {
			return q, err
		}
		b, err := json.Marshal(outs)
		q.outcomes = string(b)
		return q, err
	}
	all, err := encode(nil)
	if err != nil {
		return fmt.Errorf("sqlite: run %s: %w", p.RunID, err)
	}
	idsJSON, err := jsonArray(ids)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	added := 0
	err = s.w.do(ctx, len(msgs)+1, func(t *wtx) error {
		added = 0
		w, err := workOn(t, p.RunID, p.Owner, store.RunRunning)
		if err != nil {
			return err
		}
		pending, err := queryAll(t, qRunQueuePending, []any{p.RunID, idsJSON}, scanValue[string])
		if err != nil {
			return err
		}
		q := all
		if len(pending) < len(items) {
			set := make(map[string]bool, len(pending))
			for _, id := range pending {
				set[id] = true
			}
			if q, err = encode(set); err != nil {
				return err
			}
		}
		if err := execAll(t, q.inserts); err != nil {
			return err
		}
		if _, err := t.exec(qRunQueueRecipients, p.RunID, micros(p.Now), q.outcomes); err != nil {
			return err
		}
		if len(q.queued) == 0 {
			return nil
		}
		if w.capKind != store.CapNone {
			contacts, err := jsonArray(q.queued)
			if err != nil {
				return err
			}
			if _, err := t.exec(qRunQueueContacts, w.campaign, micros(p.Now), contacts); err != nil {
				return err
			}
		}
		added = len(q.queued)
		_, err = t.exec(qRunQueueDay, p.Day, int64(added))
		return err
	})
	if err != nil {
		return runErr(err, "queueing recipients of", p.RunID)
	}
	if added > 0 {
		s.signal(streams)
	}
	return nil
}

// RunSetState implements store.Campaigns.
func (s *Store) RunSetState(ctx context.Context, p store.RunSetStateParams) (store.Run, error) {
	from, err := jsonArray(p.From)
	if err != nil {
		return store.Run{}, fmt.Errorf("sqlite: %w", err)
	}
	reasons, err := driverkit.EncodeReasons(p.PauseReasons)
	if err != nil {
		return store.Run{}, fmt.Errorf("sqlite: %w", err)
	}
	campaignReasons, err := driverkit.EncodeReasons(p.CampaignReasons)
	if err != nil {
		return store.Run{}, fmt.Errorf("sqlite: %w", err)
	}
	var finished any
	if p.To == store.RunFinished || p.To == store.RunCancelled {
		finished = micros(p.Now)
	}
	now := micros(p.Now)
	var (
		out     store.Run
		resume  bool
		written int
	)
	err = s.w.do(ctx, 1, func(t *wtx) error {
		written = 0
		var was string
		err := t.queryRow(qRunState, []any{p.ID}, &was)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("run %s: %w", p.ID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := t.query(qRunSetState, p.ID, from, p.To, bytesText(reasons), finished, now)
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanRun)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("run %s is %s: %w", p.ID, was, store.ErrConflict)
		}
		if err != nil {
			return err
		}
		resume = false
		switch {
		case p.To == store.RunPaused:
			_, err = t.exec(qRunHold, p.ID, micros(store.HeldUntil), now)
		case p.To == store.RunRunning && was == store.RunPaused:
			resume = true
			_, err = t.exec(qRunUnhold, p.ID, micros(store.HeldUntil), now, micros(p.Now.Add(p.TTL)))
		case p.To == store.RunCancelled:
			if s.routes.has(store.WebhookMessageCancelled) {
				var res sql.Result
				if res, err = t.exec(qRunCancelWebhooks, p.ID, now); err == nil {
					var n int64
					n, err = res.RowsAffected()
					written += int(n)
				}
			}
			for _, q := range []string{qRunCancelEvents, qRunCancelMessages, qRunCancelRecipients} {
				if err != nil {
					break
				}
				_, err = t.exec(q, p.ID, now)
			}
		case p.To == store.RunFinished && was != store.RunFinished:
			var n int
			n, err = s.reportRunFinished(t, out, p.Now)
			written += n
		}
		if err != nil || p.Campaign == "" {
			return err
		}
		_, err = t.exec(qRunCampaignState, out.CampaignID, p.Campaign, bytesText(campaignReasons),
			nullMicros(p.NextRunAt), now)
		return err
	})
	if err != nil {
		return store.Run{}, runErr(err, "changing the state of", p.ID)
	}
	if resume {
		s.wake.Signal(store.StreamBroadcast)
	}
	s.webhooksWritten(written)
	return out, nil
}

// reportRunFinished writes, in t, the campaign.run_finished reports of run r, with its counts
// (counted only when the type has a route), and returns how many.
func (s *Store) reportRunFinished(t *wtx, r store.Run, now time.Time) (int, error) {
	if !s.routes.has(store.WebhookCampaignRunFinished) {
		return 0, nil
	}
	rows, err := t.query(qRunProgress, r.ID)
	if err != nil {
		return 0, err
	}
	progress, err := scanProgress(rows)
	if err := errors.Join(err, rows.Close()); err != nil {
		return 0, err
	}
	return s.outboxWrite(t, now, []outboxEvent{{Type: store.WebhookCampaignRunFinished, Subject: r.ID,
		CampaignID: r.CampaignID, RunID: r.ID, At: now, Detail: driverkit.RunFinishedDetail(progress)}})
}

// RunProgress implements store.Campaigns, on the read pool. A run that does not exist has
// nothing to count.
func (s *Store) RunProgress(ctx context.Context, runID string) (store.RunProgress, error) {
	var progress store.RunProgress
	err := s.read(ctx, qRunProgress, []any{runID}, func(rows *sql.Rows) error {
		var err error
		progress, err = scanProgress(rows)
		return err
	})
	if err != nil {
		return store.RunProgress{}, fmt.Errorf("sqlite: progress of run %s: %w", runID, err)
	}
	return progress, nil
}

// scanProgress reads the rows of qRunProgress.
func scanProgress(rows *sql.Rows) (store.RunProgress, error) {
	messages, recipients := map[string]int{}, map[string]int{}
	for rows.Next() {
		var (
			kind, state string
			n           int64
		)
		if err := rows.Scan(&kind, &state, &n); err != nil {
			return store.RunProgress{}, err
		}
		if kind == "m" {
			messages[state] += int(n)
		} else {
			recipients[state] += int(n)
		}
	}
	return driverkit.Progress(messages, recipients), rows.Err()
}

// RunInFlight returns how many of the run's messages are scheduled, queued or sending
// (store.RunProgress.InFlight), counted over those alone: the campaign runner asks it, when the
// store offers it, between the full counts of RunProgress, which read every message of the run.
func (s *Store) RunInFlight(ctx context.Context, runID string) (int, error) {
	n, err := readOne(ctx, s, qRunInFlight, []any{runID}, scanValue[int64])
	if err != nil {
		return 0, fmt.Errorf("sqlite: messages in flight of run %s: %w", runID, err)
	}
	return int(n), nil
}
