package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The notify area (store.Notify): events, triggers and actions. EventsAccept is one write
// operation of the group commit, as MessagesAccept: it reads what it must (client ids already
// used, the contacts named, a digest's pending action) and writes every row with multi-row
// statements. ActionFinish stores its messages with MessagesAccept's INSERTs (messageInserts).

var _ store.Notify = (*Store)(nil)

// EventsAccept implements store.Notify.
func (s *Store) EventsAccept(ctx context.Context, p store.EventsAcceptParams) ([]store.EventAccepted, error) {
	if err := driverkit.CheckEvents(p); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if len(p.Events) == 0 {
		return nil, nil
	}
	weight := len(p.Events)
	for _, in := range p.Events {
		weight += len(in.Actions)
	}
	var (
		plan     driverkit.EventsPlan
		reported int
	)
	err := s.w.do(ctx, weight, func(t *wtx) error {
		et := &eventsTx{s: s, t: t, now: p.Now}
		var err error
		if plan, err = driverkit.PlanEvents(et, p); err != nil {
			return err
		}
		reported = et.reported
		return writeEvents(t, &plan)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: accepting events: %w", err)
	}
	s.webhooksWritten(reported)
	if len(plan.Actions) > 0 {
		s.wake.Signal(driverkit.ActionWake)
	}
	return plan.Results, nil
}

// eventsTx is driverkit.EventsTx on a write transaction.
type eventsTx struct {
	s        *Store
	t        *wtx
	now      time.Time
	reported int // webhook deliveries the contact upserts wrote
}

func (e *eventsTx) StoredEvents(keys []driverkit.EventKey) (map[driverkit.EventKey]driverkit.StoredEvent, error) {
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.APIKeyID, k.ClientID}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	rows, err := e.t.query(qEventsByClient, string(b))
	if err != nil {
		return nil, err
	}
	out := map[driverkit.EventKey]driverkit.StoredEvent{}
	byID := map[string]driverkit.EventKey{}
	for rows.Next() {
		var (
			k  driverkit.EventKey
			se driverkit.StoredEvent
		)
		if err := rows.Scan(&se.ID, &k.APIKeyID, &k.ClientID, &se.ContactID); err != nil {
			rows.Close()
			return nil, err
		}
		out[k] = se
		byID[se.ID] = k
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	rows, err = e.t.query(qActionIDsOfEvents, jsonStrings(ids))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var actionID, eventID string
		if err := rows.Scan(&actionID, &eventID); err != nil {
			rows.Close()
			return nil, err
		}
		k := byID[eventID]
		se := out[k]
		if !slices.Contains(se.Actions, actionID) {
			se.Actions = append(se.Actions, actionID)
		}
		out[k] = se
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

func (e *eventsTx) UpsertContacts(items []store.ContactUpsert) ([]store.ContactUpsertResult, error) {
	keys, exts, ids := driverkit.UpsertKeys(items)
	results, reported, err := e.s.upsertContacts(e.t, items, jsonStrings(keys), jsonStrings(exts),
		jsonStrings(ids), driverkit.UpsertNeedsLists(items), e.now)
	e.reported += reported
	return results, err
}

func (e *eventsTx) PendingDigest(triggerID, digestKey string) (string, error) {
	var id string
	err := e.t.queryRow(qPendingDigest, []any{triggerID, digestKey}, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// writeEvents inserts the rows of plan, parents first.
func writeEvents(t *wtx, plan *driverkit.EventsPlan) error {
	var stmts []insertStmt
	rows := make([][]any, len(plan.Events))
	for i := range plan.Events {
		ev := &plan.Events[i]
		rows[i] = []any{ev.ID, ev.Name, ev.ClientID, ev.APIKeyID, ev.ContactID, ev.Email, rawJSONText(ev.Data),
			micros(ev.OccurredAt), micros(ev.CreatedAt)}
	}
	stmts = multiInsert(stmts, qAppEventInsertInto, eventColumnCount, rows)
	rows = make([][]any, len(plan.Actions))
	for i := range plan.Actions {
		rows[i] = append(actionArgs(&plan.Actions[i].Action), micros(plan.Actions[i].EventAt))
	}
	stmts = multiInsert(stmts, qActionInsertInto, actionColumnCount+1, rows)
	rows = make([][]any, len(plan.Joins))
	for i, j := range plan.Joins {
		rows[i] = []any{j.ActionID, j.EventID}
	}
	stmts = multiInsert(stmts, qActionEventInsertInto, 2, rows)
	rows = make([][]any, len(plan.Cancels))
	for i, c := range plan.Cancels {
		rows[i] = []any{c.Key, c.EventID, micros(c.At)}
	}
	stmts = multiInsert(stmts, qEventCancelInsertInto, 3, rows)
	return execAll(t, stmts)
}

// actionArgs returns the values of actionColumns for a.
func actionArgs(a *store.Action) []any {
	var ids any
	if len(a.MessageIDs) > 0 {
		ids = jsonStrings(a.MessageIDs)
	}
	return []any{a.ID, a.TriggerID, a.EventID, a.ContactID, a.Email, micros(a.DueAt), a.Status, a.CancelKey,
		a.DigestKey, a.CapKey, ids, a.Reason, a.LeaseOwner, nullMicros(a.LeaseUntil), micros(a.CreatedAt),
		micros(a.UpdatedAt)}
}

// scanAction reads one row of actionColumns.
func scanAction(sc scanner) (store.Action, error) {
	var (
		a                        store.Action
		ids                      sql.NullString
		due, until, created, upd sql.NullInt64
	)
	err := sc.Scan(&a.ID, &a.TriggerID, &a.EventID, &a.ContactID, &a.Email, &due, &a.Status, &a.CancelKey,
		&a.DigestKey, &a.CapKey, &ids, &a.Reason, &a.LeaseOwner, &until, &created, &upd)
	if err != nil {
		return a, err
	}
	a.DueAt, a.LeaseUntil = fromMicros(due.Int64), fromMicros(until.Int64)
	a.CreatedAt, a.UpdatedAt = fromMicros(created.Int64), fromMicros(upd.Int64)
	if ids.Valid {
		if err := json.Unmarshal([]byte(ids.String), &a.MessageIDs); err != nil {
			return a, fmt.Errorf("action %s: decoding message ids: %w", a.ID, err)
		}
	}
	return a, nil
}

// scanEvent reads one row of eventColumns.
func scanEvent(sc scanner) (store.AppEvent, error) {
	var (
		e                 store.AppEvent
		data              sql.NullString
		occurred, created int64
	)
	err := sc.Scan(&e.ID, &e.Name, &e.ClientID, &e.APIKeyID, &e.ContactID, &e.Email, &data, &occurred, &created)
	if data.Valid {
		e.Data = json.RawMessage(data.String)
	}
	e.OccurredAt, e.CreatedAt = fromMicros(occurred), fromMicros(created)
	return e, err
}

// actionReader reads actions from the read pool (driverkit.FillActions).
func (s *Store) actionReader(ctx context.Context) driverkit.ActionReader {
	return driverkit.ActionReader{
		OfEvents: func(ids []string) ([]store.Action, error) {
			return readAll(ctx, s, qActionsOfEvents, []any{jsonStrings(ids)}, scanAction)
		},
		Joins: func(digests []string) (map[string][]string, error) {
			joins := map[string][]string{}
			err := s.read(ctx, qActionJoins, []any{jsonStrings(digests)}, func(rows *sql.Rows) error {
				for rows.Next() {
					var a, e string
					if err := rows.Scan(&a, &e); err != nil {
						return err
					}
					joins[a] = append(joins[a], e)
				}
				return rows.Err()
			})
			return joins, err
		},
	}
}

// EventGet implements store.Notify.
func (s *Store) EventGet(ctx context.Context, id string) (store.AppEvent, error) {
	e, err := readOne(ctx, s, qEventGet, []any{id}, scanEvent)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	if err == nil {
		events := []store.AppEvent{e}
		err = driverkit.FillActions(events, s.actionReader(ctx))
		e = events[0]
	}
	if err != nil {
		return store.AppEvent{}, fmt.Errorf("sqlite: event %s: %w", id, err)
	}
	return e, nil
}

// EventList implements store.Notify: newest first, by id.
func (s *Store) EventList(ctx context.Context, p store.EventListParams) ([]store.AppEvent, string, error) {
	if err := driverkit.IDCursor(p.Cursor, "evt"); err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	q, args := eventListQuery(p, limit)
	events, err := readAll(ctx, s, q, args, scanEvent)
	next := ""
	if err == nil {
		events, next = driverkit.IDPage(events, limit, func(e store.AppEvent) string { return e.ID })
		err = driverkit.FillActions(events, s.actionReader(ctx))
	}
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing events: %w", err)
	}
	return events, next, nil
}

// eventListQuery returns the EventList statement reading limit+1 rows.
func eventListQuery(p store.EventListParams, limit int) (string, []any) {
	q := `SELECT ` + eventColumns + ` FROM events WHERE 1 = 1`
	var args []any
	add := func(cond string, v any) {
		q += " AND " + cond
		args = append(args, v)
	}
	if p.Name != "" {
		add("name = ?", p.Name)
	}
	if p.ContactID != "" {
		// contact_id <> '': the WHERE of the partial index events_contact.
		add("contact_id = ? AND contact_id <> ''", p.ContactID)
	}
	if !p.After.IsZero() {
		add("occurred_at >= ?", micros(p.After))
	}
	if !p.Before.IsZero() {
		add("occurred_at < ?", micros(p.Before))
	}
	if p.Cursor != "" {
		add("id < ?", p.Cursor)
	}
	return q + " ORDER BY id DESC LIMIT ?", append(args, int64(limit+1))
}

// EventsByID implements store.Notify.
func (s *Store) EventsByID(ctx context.Context, ids []string) ([]store.AppEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	found, err := readAll(ctx, s, qEventsByID, []any{jsonStrings(ids)}, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading events: %w", err)
	}
	return driverkit.EventsInOrder(found, ids), nil
}

// EventPurge implements store.Notify.
func (s *Store) EventPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := s.execCount(ctx, qEventPurge, micros(before), int64(limit))
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging events: %w", err)
	}
	return n, nil
}

// triggerArgs returns the values of triggerColumns for t.
func triggerArgs(t store.Trigger) ([]any, error) {
	j, err := driverkit.EncodeTriggerJSON(t)
	if err != nil {
		return nil, err
	}
	return []any{t.ID, t.Name, t.Event, bytesText(j.Condition), t.Template, string(j.To), t.Stream,
		int64(t.Delay), bytesText(j.CancelIf), bytesText(j.Digest), int64(t.Cap), t.HonourUnsubscribes,
		t.From, bytesText(j.Tags), t.Enabled, micros(t.CreatedAt), micros(t.UpdatedAt)}, nil
}

// scanTrigger reads one row of triggerColumns.
func scanTrigger(sc scanner) (store.Trigger, error) {
	var (
		t                          store.Trigger
		j                          driverkit.TriggerJSON
		cond, cancel, digest, tags sql.NullString
		to                         string
		delay, capNS, created, upd int64
	)
	err := sc.Scan(&t.ID, &t.Name, &t.Event, &cond, &t.Template, &to, &t.Stream, &delay, &cancel, &digest,
		&capNS, &t.HonourUnsubscribes, &t.From, &tags, &t.Enabled, &created, &upd)
	if err != nil {
		return t, err
	}
	t.Delay, t.Cap = time.Duration(delay), time.Duration(capNS)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(upd)
	j.To = []byte(to)
	for _, f := range []struct {
		src sql.NullString
		dst *[]byte
	}{{cond, &j.Condition}, {cancel, &j.CancelIf}, {digest, &j.Digest}, {tags, &j.Tags}} {
		if f.src.Valid {
			*f.dst = []byte(f.src.String)
		}
	}
	return t, j.Decode(&t)
}

// TriggerCreate implements store.Notify.
func (s *Store) TriggerCreate(ctx context.Context, t store.Trigger) error {
	args, err := triggerArgs(t)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := s.w.do(ctx, 1, func(tx *wtx) error {
		_, err := tx.exec(qTriggerInsert, args...)
		return err
	}); err != nil {
		return fmt.Errorf("sqlite: creating trigger %s: %w", t.ID, err)
	}
	return nil
}

// TriggerUpdate implements store.Notify.
func (s *Store) TriggerUpdate(ctx context.Context, t store.Trigger) error {
	args, err := triggerArgs(t)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	err = s.w.do(ctx, 1, func(tx *wtx) error {
		res, err := tx.exec(qTriggerUpdate, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmpErr(err, fmt.Errorf("trigger %s: %w", t.ID, store.ErrNotFound))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: updating trigger %s: %w", t.ID, err)
	}
	return nil
}

// TriggerGet implements store.Notify.
func (s *Store) TriggerGet(ctx context.Context, id string) (store.Trigger, error) {
	t, err := readOne(ctx, s, qTriggerGet, []any{id}, scanTrigger)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("trigger %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Trigger{}, fmt.Errorf("sqlite: trigger %s: %w", id, err)
	}
	return t, nil
}

// TriggerList implements store.Notify.
func (s *Store) TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.Trigger, string, error) {
	if err := driverkit.IDCursor(p.Cursor, "trg"); err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	q, args := qTriggerList, []any{p.Cursor, int64(limit + 1)}
	if p.Event != "" {
		q, args = qTriggerListEv, append(args, p.Event)
	}
	page, err := readAll(ctx, s, q, args, scanTrigger)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing triggers: %w", err)
	}
	page, next := driverkit.IDPage(page, limit, func(t store.Trigger) string { return t.ID })
	return page, next, nil
}

// TriggersEnabled implements store.Notify.
func (s *Store) TriggersEnabled(ctx context.Context) ([]store.Trigger, error) {
	ts, err := readAll(ctx, s, qTriggerEnabled, nil, scanTrigger)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing enabled triggers: %w", err)
	}
	return ts, nil
}

// TriggerDelete implements store.Notify.
func (s *Store) TriggerDelete(ctx context.Context, id string, now time.Time) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qTriggerDelete, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmpErr(err, fmt.Errorf("trigger %s: %w", id, store.ErrNotFound))
		}
		if _, err := t.exec(qTriggerCapsDelete, id); err != nil {
			return err
		}
		_, err = t.exec(qTriggerCancel, id, micros(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting trigger %s: %w", id, err)
	}
	return nil
}

// ActionClaim implements store.Notify: one write operation cancels the due actions a recorded
// cancel names and leases the others.
func (s *Store) ActionClaim(ctx context.Context, p store.ActionClaimParams) ([]store.Action, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("sqlite: ActionClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	var out []store.Action
	now := micros(p.Now)
	err := s.w.do(ctx, p.Limit, func(t *wtx) error {
		if _, err := t.exec(qActionCancelDue, now, int64(p.Limit)); err != nil {
			return err
		}
		var err error
		out, err = queryAll(t, qActionClaim, []any{now, p.Owner, micros(p.LeaseUntil), int64(p.Limit)}, scanAction)
		return err
	})
	if err == nil {
		var joins map[string][]string
		if joins, err = driverkit.ReadJoins(out, s.actionReader(ctx).Joins); err == nil {
			driverkit.SetEventIDs(out, joins)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: claiming actions: %w", err)
	}
	return out, nil
}

// ActionFinish implements store.Notify. The messages are encoded by the caller's goroutine, as
// if every finish applied; the writer encodes them again only for the rare group in which some
// did not (a lost lease, a cap). Each action done is reported to webhooks (event.triggered,
// outboxWrite) in the same write.
func (s *Store) ActionFinish(ctx context.Context, now time.Time, p []store.ActionFinishParams) ([]store.ActionFinishResult, error) {
	if err := driverkit.CheckFinish(p); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if len(p) == 0 {
		return nil, nil
	}
	ids := make([]string, len(p))
	for i, f := range p {
		ids[i] = f.ID
	}
	idsJSON := jsonStrings(ids)
	// The actions' triggers and events never change: read them first, for the messages.
	known := map[string]driverkit.HeldAction{}
	err := s.read(ctx, qActionsOf, []any{idsJSON}, func(rows *sql.Rows) error {
		for rows.Next() {
			var a driverkit.HeldAction
			if err := rows.Scan(&a.ID, &a.TriggerID, &a.EventID); err != nil {
				return err
			}
			known[a.ID] = a
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: finishing actions: %w", err)
	}
	assumed := map[string]driverkit.HeldAction{}
	for _, f := range p {
		if a, ok := known[f.ID]; ok {
			a.Owner = f.Owner
			assumed[f.ID] = a
		}
	}
	all := driverkit.PlanFinish(now, p, assumed, map[driverkit.CapKey]time.Time{})
	msgs, raws, err := driverkit.PrepareAccepts(store.MessagesAcceptParams{Messages: all.Messages, Now: now})
	if err != nil {
		return nil, fmt.Errorf("sqlite: finishing actions: %w", err)
	}
	inserts, err := messageInserts(msgs, raws, map[string]struct{}{})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	var (
		plan     driverkit.FinishPlan
		reported int // webhook deliveries written
	)
	err = s.w.do(ctx, len(p)+len(msgs), func(t *wtx) error {
		reported = 0
		held := map[string]driverkit.HeldAction{}
		rows, err := t.query(qActionsHeld, idsJSON)
		if err != nil {
			return err
		}
		for rows.Next() {
			var a driverkit.HeldAction
			if err := rows.Scan(&a.ID, &a.TriggerID, &a.EventID, &a.Owner); err != nil {
				rows.Close()
				return err
			}
			held[a.ID] = a
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		caps := map[driverkit.CapKey]time.Time{}
		if keys := driverkit.CapKeys(p, held); len(keys) > 0 {
			if caps, err = loadCaps(t, keys); err != nil {
				return err
			}
		}
		plan = driverkit.PlanFinish(now, p, held, caps)
		if len(plan.Done) == 0 {
			return nil
		}
		ins := inserts
		if len(plan.Messages) != len(msgs) {
			keep := map[string]bool{}
			for _, m := range plan.Messages {
				keep[m.Message.ID] = true
			}
			var ms []store.Message
			var rs [][]byte
			for i := range msgs {
				if keep[msgs[i].ID] {
					ms, rs = append(ms, msgs[i]), append(rs, raws[i])
				}
			}
			if len(ms) != len(plan.Messages) {
				// An action the first read did not find but the write holds: not made by a claim.
				return fmt.Errorf("%d of the finishes' messages were not prepared", len(plan.Messages)-len(ms))
			}
			if ins, err = messageInserts(ms, rs, map[string]struct{}{}); err != nil {
				return err
			}
		}
		if err := execAll(t, ins); err != nil {
			return err
		}
		if len(plan.Caps) > 0 {
			var capRows [][]any
			for k, at := range plan.Caps {
				capRows = append(capRows, []any{k.TriggerID, k.Key, micros(at)})
			}
			if err := execAll(t, multiInsert(nil, qTriggerCapPutInto, 3, capRows)); err != nil {
				return err
			}
		}
		done := make([][]any, len(plan.Done))
		for i, d := range plan.Done {
			var ids any
			if len(d.MessageIDs) > 0 {
				ids = d.MessageIDs
			}
			done[i] = []any{d.ID, d.Status, d.Reason, ids}
		}
		b, err := json.Marshal(done)
		if err != nil {
			return err
		}
		if _, err = t.exec(qActionFinish, string(b), micros(now)); err != nil {
			return err
		}
		evs, err := driverkit.TriggeredEvents(plan, now)
		if err != nil {
			return err
		}
		reported, err = s.outboxWrite(t, now, evs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: finishing actions: %w", err)
	}
	s.webhooksWritten(reported)
	if len(plan.Messages) > 0 {
		streams := map[string]struct{}{}
		for _, m := range plan.Messages {
			streams[m.Message.Stream] = struct{}{}
		}
		s.signal(streams)
	}
	return plan.Results, nil
}

// loadCaps returns the last sends of the caps keys name.
func loadCaps(t *wtx, keys []driverkit.CapKey) (map[driverkit.CapKey]time.Time, error) {
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.TriggerID, k.Key}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(qCapsOf, string(b))
	if err != nil {
		return nil, err
	}
	caps := map[driverkit.CapKey]time.Time{}
	for rows.Next() {
		var (
			k  driverkit.CapKey
			at int64
		)
		if err := rows.Scan(&k.TriggerID, &k.Key, &at); err != nil {
			rows.Close()
			return nil, err
		}
		caps[k] = fromMicros(at)
	}
	return caps, errors.Join(rows.Err(), rows.Close())
}

// ActionReleaseLeases implements store.Notify.
func (s *Store) ActionReleaseLeases(ctx context.Context, ownerPrefix string, now time.Time) (int, error) {
	n, err := s.execCount(ctx, qActionRelease, ownerPrefix, micros(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: releasing action leases: %w", err)
	}
	if n > 0 {
		s.wake.Signal(driverkit.ActionWake)
	}
	return n, nil
}

// ActionNextDue implements store.Notify.
func (s *Store) ActionNextDue(ctx context.Context) (time.Time, bool, error) {
	due, err := readOne(ctx, s, qActionNextDue, nil, scanValue[sql.NullInt64])
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next due action: %w", err)
	}
	if !due.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(due.Int64), true, nil
}

// ActionWakeups implements store.Notify: this process is the only one using the file, so its
// own accepts and releases are every reason to wake.
func (s *Store) ActionWakeups() <-chan struct{} {
	return s.wake.Chan(driverkit.ActionWake)
}
