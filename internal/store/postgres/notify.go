package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The notify area (store.Notify): events, triggers and actions.
//
// EventsAccept is grouped as MessagesAccept is (group.go's grouper): concurrent calls join the
// pending group, and a flusher accepts every event of a group in one transaction: one query for the
// client ids already used, one locking the contacts named, one pipelined batch writing the
// contacts and another every event, action, join and cancel (one unnest INSERT per table). A
// group that fails on one call's rows is accepted again call by call. ActionClaim is one
// statement; ActionFinish one transaction whose writes (messages with MessagesAccept's INSERTs,
// caps, actions) go as one pipelined batch.

var _ store.Notify = (*Store)(nil)

// eventsGroupMax is the most events one group accepts; more wait for the next one.
const eventsGroupMax = 2000

// eventsReq is one EventsAccept call waiting for its group.
type eventsReq struct {
	p    store.EventsAcceptParams
	res  []store.EventAccepted
	done chan error
}

func (r *eventsReq) rows() int        { return len(r.p.Events) }
func (r *eventsReq) finish(err error) { r.done <- err }

// EventsAccept implements store.Notify.
func (s *Store) EventsAccept(ctx context.Context, p store.EventsAcceptParams) ([]store.EventAccepted, error) {
	if err := driverkit.CheckEvents(p); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if len(p.Events) == 0 {
		return nil, nil
	}
	r := &eventsReq{p: p, done: make(chan error, 1)}
	s.events.add(r)
	select {
	case err := <-r.done:
		if err != nil {
			return nil, fmt.Errorf("postgres: accepting events: %w", unavailable(err))
		}
		return r.res, nil
	case <-ctx.Done():
		// The events may still be stored, as with a commit whose answer was lost.
		return nil, ctx.Err()
	}
}

// acceptEvents accepts the events of reqs in one transaction and sets each call's results. The
// group's rows take the latest Now of its calls.
func (s *Store) acceptEvents(reqs []*eventsReq) error {
	all := store.EventsAcceptParams{Events: reqs[0].p.Events, Now: reqs[0].p.Now}
	if len(reqs) > 1 {
		all.Events = nil
		for _, r := range reqs {
			all.Events = append(all.Events, r.p.Events...)
			if r.p.Now.After(all.Now) {
				all.Now = r.p.Now
			}
		}
	}
	ctx := context.Background() // the write outlives the call that started it
	var (
		plan     driverkit.EventsPlan
		reported int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		et := &eventsTx{ctx: ctx, tx: tx, now: all.Now}
		var err error
		if plan, err = driverkit.PlanEvents(et, all); err != nil {
			return err
		}
		reported = et.reported
		return writeEvents(ctx, tx, &plan)
	})
	if err != nil {
		return err
	}
	s.webhooksWritten(reported)
	at := 0
	for _, r := range reqs {
		r.res = plan.Results[at : at+len(r.p.Events)]
		at += len(r.p.Events)
	}
	if len(plan.Actions) > 0 {
		s.signal(map[string]struct{}{driverkit.ActionWake: {}})
	}
	return nil
}

// eventsTx is driverkit.EventsTx on a transaction.
type eventsTx struct {
	ctx      context.Context
	tx       pgx.Tx
	now      time.Time
	reported int // webhook deliveries the contact upserts wrote
}

func (e *eventsTx) StoredEvents(keys []driverkit.EventKey) (map[driverkit.EventKey]driverkit.StoredEvent, error) {
	apiKeys, clients := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		apiKeys[i], clients[i] = k.APIKeyID, k.ClientID
	}
	rows, err := e.tx.Query(e.ctx, qEventsByClient, apiKeys, clients)
	if err != nil {
		return nil, err
	}
	out := map[driverkit.EventKey]driverkit.StoredEvent{}
	byID := map[string]driverkit.EventKey{}
	var ids []string
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
		ids = append(ids, se.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	rows, err = e.tx.Query(e.ctx, qActionIDsOfEvents, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var actionID, eventID string
		if err := rows.Scan(&actionID, &eventID); err != nil {
			return nil, err
		}
		k := byID[eventID]
		se := out[k]
		if !slices.Contains(se.Actions, actionID) {
			se.Actions = append(se.Actions, actionID)
		}
		out[k] = se
	}
	return out, rows.Err()
}

func (e *eventsTx) UpsertContacts(items []store.ContactUpsert) ([]store.ContactUpsertResult, error) {
	results, reported, err := upsertContacts(e.ctx, e.tx, items, e.now)
	e.reported += reported
	return results, err
}

func (e *eventsTx) PendingDigest(triggerID, digestKey string) (string, error) {
	var id string
	err := e.tx.QueryRow(e.ctx, qPendingDigest, triggerID, digestKey).Scan(&id)
	if noRows(err) {
		return "", nil
	}
	return id, err
}

// writeEvents inserts the rows of plan in one pipelined batch, parents first.
func writeEvents(ctx context.Context, tx pgx.Tx, plan *driverkit.EventsPlan) error {
	b := &pgx.Batch{}
	if len(plan.Events) > 0 {
		rows := make([][]any, len(plan.Events))
		for i := range plan.Events {
			ev := &plan.Events[i]
			rows[i] = []any{ev.ID, ev.Name, ev.ClientID, ev.APIKeyID, ev.ContactID, ev.Email, textOrNil(ev.Data),
				tsNotNull(ev.OccurredAt), tsNotNull(ev.CreatedAt)}
		}
		b.Queue(qAppEventInsert, columns(rows, eventParamTypes...)...)
	}
	if len(plan.Actions) > 0 {
		rows := make([][]any, len(plan.Actions))
		for i := range plan.Actions {
			rows[i] = append(actionArgs(&plan.Actions[i].Action), tsNotNull(plan.Actions[i].EventAt))
		}
		b.Queue(qActionInsert, columns(rows, actionParamTypes...)...)
	}
	if len(plan.Joins) > 0 {
		rows := make([][]any, len(plan.Joins))
		for i, j := range plan.Joins {
			rows[i] = []any{j.ActionID, j.EventID}
		}
		b.Queue(qActionEventInsert, columns(rows, joinParamTypes...)...)
	}
	if len(plan.Cancels) > 0 {
		rows := make([][]any, len(plan.Cancels))
		for i, c := range plan.Cancels {
			rows[i] = []any{c.Key, c.EventID, tsNotNull(c.At)}
		}
		b.Queue(qEventCancelInsert, columns(rows, cancelParamTypes...)...)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// actionArgs returns the values of actionCols for a.
func actionArgs(a *store.Action) []any {
	var ids any
	if len(a.MessageIDs) > 0 {
		b, _ := json.Marshal(a.MessageIDs) // strings always marshal
		ids = string(b)
	}
	return []any{a.ID, a.TriggerID, a.EventID, a.ContactID, a.Email, tsNotNull(a.DueAt), a.Status, a.CancelKey,
		a.DigestKey, a.CapKey, ids, a.Reason, a.LeaseOwner, ts(a.LeaseUntil), tsNotNull(a.CreatedAt),
		tsNotNull(a.UpdatedAt)}
}

// scanAction reads one row of actionCols.
func scanAction(sc scanner) (store.Action, error) {
	var (
		a                        store.Action
		ids                      []byte
		due, until, created, upd pgtype.Timestamptz
	)
	err := sc.Scan(&a.ID, &a.TriggerID, &a.EventID, &a.ContactID, &a.Email, &due, &a.Status, &a.CancelKey,
		&a.DigestKey, &a.CapKey, &ids, &a.Reason, &a.LeaseOwner, &until, &created, &upd)
	if err != nil {
		return a, err
	}
	a.DueAt, a.LeaseUntil = fromTS(due), fromTS(until)
	a.CreatedAt, a.UpdatedAt = fromTS(created), fromTS(upd)
	if len(ids) > 0 {
		if err := json.Unmarshal(ids, &a.MessageIDs); err != nil {
			return a, fmt.Errorf("action %s: decoding message ids: %w", a.ID, err)
		}
	}
	return a, nil
}

// scanEvent reads one row of eventCols.
func scanEvent(sc scanner) (store.AppEvent, error) {
	var (
		e                 store.AppEvent
		data              []byte
		occurred, created pgtype.Timestamptz
	)
	err := sc.Scan(&e.ID, &e.Name, &e.ClientID, &e.APIKeyID, &e.ContactID, &e.Email, &data, &occurred, &created)
	if len(data) > 0 {
		e.Data = json.RawMessage(data)
	}
	e.OccurredAt, e.CreatedAt = fromTS(occurred), fromTS(created)
	return e, err
}

// actionReader reads actions for driverkit.FillActions.
func (s *Store) actionReader(ctx context.Context) driverkit.ActionReader {
	return driverkit.ActionReader{
		OfEvents: func(ids []string) ([]store.Action, error) {
			return readAll(ctx, s, qActionsOfEvents, []any{ids}, scanAction)
		},
		Joins: func(digests []string) (map[string][]string, error) {
			pairs, err := readAll(ctx, s, qActionJoins, []any{digests}, func(sc scanner) ([2]string, error) {
				var p [2]string
				err := sc.Scan(&p[0], &p[1])
				return p, err
			})
			joins := map[string][]string{}
			for _, p := range pairs {
				joins[p[0]] = append(joins[p[0]], p[1])
			}
			return joins, err
		},
	}
}

// EventGet implements store.Notify.
func (s *Store) EventGet(ctx context.Context, id string) (store.AppEvent, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, qEventGet, id))
	if noRows(err) {
		return store.AppEvent{}, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	if err == nil {
		events := []store.AppEvent{e}
		err = driverkit.FillActions(events, s.actionReader(ctx))
		e = events[0]
	}
	if err != nil {
		return store.AppEvent{}, fmt.Errorf("postgres: event %s: %w", id, unavailable(err))
	}
	return e, nil
}

// EventList implements store.Notify: newest first, by id.
func (s *Store) EventList(ctx context.Context, p store.EventListParams) ([]store.AppEvent, string, error) {
	if err := driverkit.IDCursor(p.Cursor, "evt"); err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	q := `SELECT ` + eventColumns + ` FROM events WHERE true`
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND "+cond, len(args))
	}
	if p.Name != "" {
		add("name = $%d", p.Name)
	}
	if p.ContactID != "" {
		add("contact_id = $%d AND contact_id <> ''", p.ContactID)
	}
	if !p.After.IsZero() {
		add("occurred_at >= $%d", tsNotNull(p.After))
	}
	if !p.Before.IsZero() {
		add("occurred_at < $%d", tsNotNull(p.Before))
	}
	if p.Cursor != "" {
		add("id < $%d", p.Cursor)
	}
	args = append(args, int64(limit+1))
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	events, err := readAll(ctx, s, q, args, scanEvent)
	next := ""
	if err == nil {
		events, next = driverkit.IDPage(events, limit, func(e store.AppEvent) string { return e.ID })
		err = driverkit.FillActions(events, s.actionReader(ctx))
	}
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing events: %w", unavailable(err))
	}
	return events, next, nil
}

// EventsByID implements store.Notify.
func (s *Store) EventsByID(ctx context.Context, ids []string) ([]store.AppEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	found, err := readAll(ctx, s, qEventsByID, []any{ids}, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading events: %w", unavailable(err))
	}
	return driverkit.EventsInOrder(found, ids), nil
}

// EventPurge implements store.Notify.
func (s *Store) EventPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, qEventPurge, tsNotNull(before), int64(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: purging events: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// triggerArgs returns the values of triggerColumns for t.
func triggerArgs(t store.Trigger) ([]any, error) {
	j, err := driverkit.EncodeTriggerJSON(t)
	if err != nil {
		return nil, err
	}
	return []any{t.ID, t.Name, t.Event, textOrNil(j.Condition), t.Template, string(j.To), t.Stream,
		int64(t.Delay), textOrNil(j.CancelIf), textOrNil(j.Digest), int64(t.Cap), t.HonourUnsubscribes,
		t.From, textOrNil(j.Tags), t.Enabled, tsNotNull(t.CreatedAt), tsNotNull(t.UpdatedAt)}, nil
}

// scanTrigger reads one row of triggerColumns.
func scanTrigger(sc scanner) (store.Trigger, error) {
	var (
		t            store.Trigger
		j            driverkit.TriggerJSON
		delay, capNS int64
		created, upd pgtype.Timestamptz
	)
	err := sc.Scan(&t.ID, &t.Name, &t.Event, &j.Condition, &t.Template, &j.To, &t.Stream, &delay, &j.CancelIf,
		&j.Digest, &capNS, &t.HonourUnsubscribes, &t.From, &j.Tags, &t.Enabled, &created, &upd)
	if err != nil {
		return t, err
	}
	t.Delay, t.Cap = time.Duration(delay), time.Duration(capNS)
	t.CreatedAt, t.UpdatedAt = fromTS(created), fromTS(upd)
	return t, j.Decode(&t)
}

// TriggerCreate implements store.Notify.
func (s *Store) TriggerCreate(ctx context.Context, t store.Trigger) error {
	args, err := triggerArgs(t)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err = s.pool.Exec(ctx, qTriggerInsert, args...)
	if isUnique(err) {
		return fmt.Errorf("trigger %s exists: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: creating trigger %s: %w", t.ID, unavailable(err))
	}
	return nil
}

// TriggerUpdate implements store.Notify.
func (s *Store) TriggerUpdate(ctx context.Context, t store.Trigger) error {
	args, err := triggerArgs(t)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	// Every column but created_at.
	tag, err := s.pool.Exec(ctx, qTriggerUpdate, append(args[:15:15], args[16])...)
	if err != nil {
		return fmt.Errorf("postgres: updating trigger %s: %w", t.ID, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("trigger %s: %w", t.ID, store.ErrNotFound)
	}
	return nil
}

// TriggerGet implements store.Notify.
func (s *Store) TriggerGet(ctx context.Context, id string) (store.Trigger, error) {
	t, err := scanTrigger(s.pool.QueryRow(ctx, qTriggerGet, id))
	if noRows(err) {
		return store.Trigger{}, fmt.Errorf("trigger %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Trigger{}, fmt.Errorf("postgres: trigger %s: %w", id, unavailable(err))
	}
	return t, nil
}

// TriggerList implements store.Notify.
func (s *Store) TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.Trigger, string, error) {
	if err := driverkit.IDCursor(p.Cursor, "trg"); err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	page, err := readAll(ctx, s, qTriggerList, []any{p.Cursor, int64(limit + 1), p.Event}, scanTrigger)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing triggers: %w", unavailable(err))
	}
	page, next := driverkit.IDPage(page, limit, func(t store.Trigger) string { return t.ID })
	return page, next, nil
}

// TriggersEnabled implements store.Notify.
func (s *Store) TriggersEnabled(ctx context.Context) ([]store.Trigger, error) {
	ts, err := readAll(ctx, s, qTriggerEnabled, nil, scanTrigger)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing enabled triggers: %w", unavailable(err))
	}
	return ts, nil
}

// TriggerDelete implements store.Notify: one statement deletes the trigger and its caps and
// cancels its pending actions.
func (s *Store) TriggerDelete(ctx context.Context, id string, now time.Time) error {
	var n int64
	if err := s.pool.QueryRow(ctx, qTriggerDelete, id, tsNotNull(now)).Scan(&n); err != nil {
		return fmt.Errorf("postgres: deleting trigger %s: %w", id, unavailable(err))
	}
	if n == 0 {
		return fmt.Errorf("trigger %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// ActionClaim implements store.Notify: one statement cancels the due actions a recorded cancel
// names and leases the others.
func (s *Store) ActionClaim(ctx context.Context, p store.ActionClaimParams) ([]store.Action, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("postgres: ActionClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	out, err := readAll(ctx, s, qActionClaim, []any{tsNotNull(p.Now), p.Owner, tsNotNull(p.LeaseUntil), int64(p.Limit)},
		scanAction)
	if err == nil {
		var joins map[string][]string
		if joins, err = driverkit.ReadJoins(out, s.actionReader(ctx).Joins); err == nil {
			driverkit.SetEventIDs(out, joins)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming actions: %w", unavailable(err))
	}
	return out, nil
}

// ActionFinish implements store.Notify: one transaction locks the actions still held and the
// caps checked, writes the messages, caps and actions in one pipelined batch, and reports each
// action done to webhooks (event.triggered, outboxWrite).
func (s *Store) ActionFinish(ctx context.Context, now time.Time, p []store.ActionFinishParams) ([]store.ActionFinishResult, error) {
	if err := driverkit.CheckFinish(p); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if len(p) == 0 {
		return nil, nil
	}
	ids := make([]string, len(p))
	for i, f := range p {
		ids[i] = f.ID
	}
	var (
		plan     driverkit.FinishPlan
		streams  map[string]struct{}
		reported int // webhook deliveries written
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		streams, reported = nil, 0
		held := map[string]driverkit.HeldAction{}
		list, err := queryTx(ctx, tx, qActionsHeld, []any{ids}, func(sc scanner) (driverkit.HeldAction, error) {
			var a driverkit.HeldAction
			err := sc.Scan(&a.ID, &a.TriggerID, &a.EventID, &a.Owner)
			return a, err
		})
		if err != nil {
			return err
		}
		for _, a := range list {
			held[a.ID] = a
		}
		caps := map[driverkit.CapKey]time.Time{}
		if keys := driverkit.CapKeys(p, held); len(keys) > 0 {
			if caps, err = lockCaps(ctx, tx, keys); err != nil {
				return err
			}
		}
		plan = driverkit.PlanFinish(now, p, held, caps)
		if len(plan.Done) == 0 {
			return nil
		}
		msgs, raws, err := driverkit.PrepareAccepts(store.MessagesAcceptParams{Messages: plan.Messages, Now: now})
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		if len(msgs) > 0 {
			rows, st, err := acceptRowsOf(msgs, raws)
			if err != nil {
				return err
			}
			streams = st
			queueAccept(b, rows.msgs, rows.raws, rows.recips)
		}
		if len(plan.Caps) > 0 {
			var triggers, keys []string
			var ats []pgtype.Timestamptz
			for k, at := range plan.Caps {
				triggers, keys, ats = append(triggers, k.TriggerID), append(keys, k.Key), append(ats, tsNotNull(at))
			}
			b.Queue(qCapsSet, triggers, keys, ats)
		}
		n := len(plan.Done)
		doneIDs, statuses, reasons, msgIDs := make([]string, n), make([]string, n), make([]string, n), make([]pgtype.Text, n)
		for i, d := range plan.Done {
			doneIDs[i], statuses[i], reasons[i] = d.ID, d.Status, d.Reason
			if len(d.MessageIDs) > 0 {
				j, _ := json.Marshal(d.MessageIDs) // strings always marshal
				msgIDs[i] = pgtype.Text{String: string(j), Valid: true}
			}
		}
		b.Queue(qActionFinish, doneIDs, statuses, reasons, msgIDs, tsNotNull(now))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		evs, err := driverkit.TriggeredEvents(plan, now)
		if err != nil {
			return err
		}
		reported, err = outboxWrite(ctx, tx, now, evs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: finishing actions: %w", unavailable(err))
	}
	s.signal(streams)
	s.webhooksWritten(reported)
	return plan.Results, nil
}

// lockCaps locks (creating) the caps keys name and returns their last sends.
func lockCaps(ctx context.Context, tx pgx.Tx, keys []driverkit.CapKey) (map[driverkit.CapKey]time.Time, error) {
	var triggers, names []string
	seen := map[driverkit.CapKey]bool{}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			triggers, names = append(triggers, k.TriggerID), append(names, k.Key)
		}
	}
	rows, err := tx.Query(ctx, qCapsLock, triggers, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	caps := map[driverkit.CapKey]time.Time{}
	for rows.Next() {
		var (
			k  driverkit.CapKey
			at pgtype.Timestamptz
		)
		if err := rows.Scan(&k.TriggerID, &k.Key, &at); err != nil {
			return nil, err
		}
		if t := fromTS(at); !t.IsZero() {
			caps[k] = t
		}
	}
	return caps, rows.Err()
}

// ActionReleaseLeases implements store.Notify.
func (s *Store) ActionReleaseLeases(ctx context.Context, ownerPrefix string, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, qActionRelease, ownerPrefix, tsNotNull(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: releasing action leases: %w", unavailable(err))
	}
	if tag.RowsAffected() > 0 {
		s.signal(map[string]struct{}{driverkit.ActionWake: {}})
	}
	return int(tag.RowsAffected()), nil
}

// ActionNextDue implements store.Notify.
func (s *Store) ActionNextDue(ctx context.Context) (time.Time, bool, error) {
	var due pgtype.Timestamptz
	if err := s.pool.QueryRow(ctx, qActionNextDue).Scan(&due); err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due action: %w", unavailable(err))
	}
	if !due.Valid {
		return time.Time{}, false, nil
	}
	return fromTS(due), true, nil
}

// ActionWakeups implements store.Notify: woken by this node's accepts and releases at once, and
// by the other nodes' through the wake-up channel (NOTIFY, listen.go), as messages are.
func (s *Store) ActionWakeups() <-chan struct{} {
	return s.wake.Chan(driverkit.ActionWake)
}
