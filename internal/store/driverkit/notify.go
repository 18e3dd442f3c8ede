package driverkit

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// The notify area's rules every driver shares: how a group of accepted events becomes the rows
// to write (PlanEvents), how a group of action finishes applies (PlanFinish), and the JSON
// columns of a trigger. Drivers load the rows these ask for, run them in the transaction, and
// write the result.

// ActionWake is the name, among the streams of Wakers and of the drivers' cross-node
// wake-ups, under which the action workers are woken; no message stream takes it.
const ActionWake = "notify.actions"

// EventKey is an event's client id, unique per API key.
type EventKey struct{ APIKeyID, ClientID string }

// StoredEvent is what a duplicate returns of the event stored earlier.
type StoredEvent struct {
	ID, ContactID string
	Actions       []string
}

// PlannedAction is a new action with the time of its event (which cancels must not precede).
type PlannedAction struct {
	store.Action
	EventAt time.Time
}

// ActionJoin is one event a digest action carries (its first one included).
type ActionJoin struct{ ActionID, EventID string }

// EventCancel is one cancel key an accepted event satisfied.
type EventCancel struct {
	Key, EventID string
	At           time.Time
}

// EventsPlan is a group of accepted events applied in memory: the rows to insert, in this
// order (events, then actions, then joins and cancels), and each event's outcome.
type EventsPlan struct {
	Results []store.EventAccepted
	Events  []store.AppEvent
	Actions []PlannedAction
	Joins   []ActionJoin
	Cancels []EventCancel
}

// EventsTx is what PlanEvents asks of the driver's transaction.
type EventsTx interface {
	// StoredEvents returns the stored events of keys.
	StoredEvents(keys []EventKey) (map[EventKey]StoredEvent, error)
	// UpsertContacts applies the upserts as ContactsUpsert does, in the transaction.
	UpsertContacts(items []store.ContactUpsert) ([]store.ContactUpsertResult, error)
	// PendingDigest returns the pending action of the trigger and digest key that no one has
	// claimed, the one due first, or "".
	PendingDigest(triggerID, digestKey string) (string, error)
}

// CheckEvents checks the events of p before anything is written.
func CheckEvents(p store.EventsAcceptParams) error {
	for i, in := range p.Events {
		e := in.Event
		switch {
		case e.ID == "":
			return fmt.Errorf("event %d: no id", i)
		case e.Name == "":
			return fmt.Errorf("event %s: no name", e.ID)
		case e.OccurredAt.IsZero():
			return fmt.Errorf("event %s: no occurred_at", e.ID)
		case len(e.Data) > 0 && !json.Valid(e.Data):
			return fmt.Errorf("event %s: data is not JSON", e.ID)
		}
		for _, a := range in.Actions {
			if a.ID == "" || a.TriggerID == "" || a.DueAt.IsZero() {
				return fmt.Errorf("event %s: an action needs an id, a trigger and a due time", e.ID)
			}
		}
	}
	return nil
}

// EventClientKeys returns the distinct client ids of the events.
func EventClientKeys(events []store.EventIn) []EventKey {
	var keys []EventKey
	seen := map[EventKey]bool{}
	for _, in := range events {
		k := EventKey{in.Event.APIKeyID, in.Event.ClientID}
		if k.ClientID != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// PlanEvents applies p in the transaction tx: duplicates (by client id, stored or earlier in
// the group) return the stored event; each other event upserts its contact (an error there is
// the event's own, and it is not stored), is inserted with its actions, joins the pending
// digest action of its trigger and key when there is one, and records its cancels.
func PlanEvents(tx EventsTx, p store.EventsAcceptParams) (EventsPlan, error) {
	n := len(p.Events)
	plan := EventsPlan{Results: make([]store.EventAccepted, n)}
	stored := map[EventKey]StoredEvent{}
	if keys := EventClientKeys(p.Events); len(keys) > 0 {
		var err error
		if stored, err = tx.StoredEvents(keys); err != nil {
			return plan, fmt.Errorf("loading events by client id: %w", err)
		}
	}
	first := map[EventKey]int{} // the event of the group that took each client id
	dup := make([]int, n)       // -1, or the group's event this one repeats
	var items []store.ContactUpsert
	item := make([]int, n) // the index in items of each event's contact, -1 for none
	for i, in := range p.Events {
		dup[i], item[i] = -1, -1
		k := EventKey{in.Event.APIKeyID, in.Event.ClientID}
		if k.ClientID != "" {
			if st, ok := stored[k]; ok {
				plan.Results[i] = store.EventAccepted{ID: st.ID, ContactID: st.ContactID, Duplicate: true, Actions: st.Actions}
				dup[i] = i
				continue
			}
			if j, ok := first[k]; ok {
				dup[i] = j
				continue
			}
			first[k] = i
		}
		if in.Contact != nil {
			c := *in.Contact
			if c.LastActiveAt.IsZero() {
				c.LastActiveAt = in.Event.OccurredAt
			}
			item[i] = len(items)
			items = append(items, c)
		}
	}
	var contacts []store.ContactUpsertResult
	if len(items) > 0 {
		var err error
		if contacts, err = tx.UpsertContacts(items); err != nil {
			return plan, err
		}
	}
	digests := map[[2]string]string{} // (trigger, digest key) → the pending action joined
	for i, in := range p.Events {
		if dup[i] >= 0 {
			continue
		}
		e := in.Event
		e.Actions = nil
		if e.CreatedAt.IsZero() {
			e.CreatedAt = p.Now
		}
		e.ContactID, e.Email = "", ""
		if in.Contact != nil {
			r := contacts[item[i]]
			if r.Err != nil {
				plan.Results[i] = store.EventAccepted{Err: r.Err}
				continue
			}
			e.ContactID, e.Email = r.ID, in.Contact.Email
		}
		res := store.EventAccepted{ID: e.ID, ContactID: e.ContactID}
		plan.Events = append(plan.Events, e)
		for _, a := range in.Actions {
			a.EventID, a.ContactID, a.Email = e.ID, e.ContactID, e.Email
			a.Status, a.MessageIDs, a.Reason, a.LeaseOwner, a.LeaseUntil = store.ActionPending, nil, "", "", time.Time{}
			a.CreatedAt, a.UpdatedAt = p.Now, p.Now
			if a.DigestKey != "" {
				dk := [2]string{a.TriggerID, a.DigestKey}
				joined, ok := digests[dk]
				if !ok {
					var err error
					if joined, err = tx.PendingDigest(a.TriggerID, a.DigestKey); err != nil {
						return plan, fmt.Errorf("finding the digest of trigger %s: %w", a.TriggerID, err)
					}
				}
				if joined != "" {
					digests[dk] = joined
					plan.Joins = append(plan.Joins, ActionJoin{ActionID: joined, EventID: e.ID})
					res.Actions = append(res.Actions, joined)
					continue
				}
				digests[dk] = a.ID
				plan.Joins = append(plan.Joins, ActionJoin{ActionID: a.ID, EventID: e.ID})
			}
			a.EventIDs = nil
			plan.Actions = append(plan.Actions, PlannedAction{Action: a, EventAt: e.OccurredAt})
			res.Actions = append(res.Actions, a.ID)
		}
		for _, key := range in.Cancels {
			plan.Cancels = append(plan.Cancels, EventCancel{Key: key, EventID: e.ID, At: e.OccurredAt})
		}
		plan.Results[i] = res
	}
	for i := range dup {
		if j := dup[i]; j >= 0 && j != i {
			r := plan.Results[j]
			if r.Err != nil {
				plan.Results[i] = store.EventAccepted{Err: r.Err}
				continue
			}
			r.Duplicate = true
			plan.Results[i] = r
		}
	}
	return plan, nil
}

// HeldAction is what a finish needs of a pending action its owner leases.
type HeldAction struct{ ID, TriggerID, EventID, Owner string }

// CapKey names one frequency cap: a trigger and a key.
type CapKey struct{ TriggerID, Key string }

// FinishedAction is the new state of one action.
type FinishedAction struct {
	ID, Status, Reason string
	MessageIDs         []string
	Trigger, Event     string
	EventName          string // for the event.triggered report
}

// FinishPlan is a group of finishes applied in memory: each one's result, the actions to
// update, the messages to insert (EventID and TriggerID filled), and the caps to record.
type FinishPlan struct {
	Results  []store.ActionFinishResult
	Done     []FinishedAction
	Messages []store.NewMessage
	Caps     map[CapKey]time.Time
}

// CheckFinish checks a group of finishes before anything is written.
func CheckFinish(p []store.ActionFinishParams) error {
	for _, f := range p {
		switch f.Status {
		case store.ActionDone:
		case store.ActionFailed, store.ActionSkipped:
			if len(f.Messages) > 0 {
				return fmt.Errorf("action %s: messages given with status %s", f.ID, f.Status)
			}
		default:
			return fmt.Errorf("action %s: cannot finish as %q", f.ID, f.Status)
		}
		if f.ID == "" || f.Owner == "" {
			return errors.New("an action finish needs an id and an owner")
		}
	}
	return nil
}

// CapKeys returns the caps the finishes check.
func CapKeys(p []store.ActionFinishParams, held map[string]HeldAction) []CapKey {
	var keys []CapKey
	for _, f := range p {
		if a, ok := held[f.ID]; ok && f.Status == store.ActionDone && f.CapKey != "" && f.CapPeriod > 0 {
			keys = append(keys, CapKey{a.TriggerID, f.CapKey})
		}
	}
	return keys
}

// PlanFinish applies the finishes p at now to the actions their owners still hold (held, by
// id) and the caps' last sends (caps; changed in place for the caps recorded).
func PlanFinish(now time.Time, p []store.ActionFinishParams, held map[string]HeldAction, caps map[CapKey]time.Time) FinishPlan {
	plan := FinishPlan{Results: make([]store.ActionFinishResult, len(p)), Caps: map[CapKey]time.Time{}}
	done := map[string]bool{}
	for i, f := range p {
		a, ok := held[f.ID]
		if !ok || a.Owner != f.Owner || done[f.ID] {
			continue
		}
		done[f.ID] = true
		fa := FinishedAction{ID: f.ID, Status: f.Status, Reason: f.Reason, Trigger: a.TriggerID, Event: a.EventID,
			EventName: f.EventName}
		if f.Status == store.ActionDone && f.CapKey != "" && f.CapPeriod > 0 {
			k := CapKey{a.TriggerID, f.CapKey}
			if last, ok := caps[k]; ok && now.Sub(last) < f.CapPeriod {
				fa.Status, fa.Reason = store.ActionCapped, "frequency cap: sent to "+f.CapKey+" at "+last.UTC().Format(time.RFC3339)
			} else {
				caps[k] = now
				plan.Caps[k] = now
			}
		}
		if fa.Status == store.ActionDone {
			for _, m := range f.Messages {
				if m.Message.EventID == "" {
					m.Message.EventID = a.EventID
				}
				if m.Message.TriggerID == "" {
					m.Message.TriggerID = a.TriggerID
				}
				plan.Messages = append(plan.Messages, m)
				fa.MessageIDs = append(fa.MessageIDs, m.Message.ID)
			}
		}
		plan.Done = append(plan.Done, fa)
		plan.Results[i] = store.ActionFinishResult{Applied: true, Status: fa.Status}
	}
	return plan
}

// TriggerJSON is the JSON of a trigger's columns: nil for none.
type TriggerJSON struct {
	Condition, To, CancelIf, Digest, Tags []byte
}

// CheckTrigger checks what every stored trigger has.
func CheckTrigger(t store.Trigger) error {
	switch {
	case t.ID == "":
		return errors.New("a trigger needs an id")
	case t.Event == "":
		return fmt.Errorf("trigger %s: no event", t.ID)
	case t.Template == "":
		return fmt.Errorf("trigger %s: no template", t.ID)
	case len(t.Condition) > 0 && !json.Valid(t.Condition):
		return fmt.Errorf("trigger %s: the condition is not JSON", t.ID)
	}
	return nil
}

// EncodeTriggerJSON checks t (CheckTrigger) and encodes its JSON columns.
func EncodeTriggerJSON(t store.Trigger) (TriggerJSON, error) {
	var j TriggerJSON
	err := CheckTrigger(t)
	if err != nil {
		return j, err
	}
	if len(t.Condition) > 0 && string(t.Condition) != "null" {
		j.Condition = t.Condition
	}
	if j.To, err = json.Marshal(t.To); err != nil {
		return j, err
	}
	if t.CancelIf != nil {
		if j.CancelIf, err = json.Marshal(t.CancelIf); err != nil {
			return j, err
		}
	}
	if t.Digest != nil {
		if j.Digest, err = json.Marshal(t.Digest); err != nil {
			return j, err
		}
	}
	if len(t.Tags) > 0 {
		j.Tags, err = json.Marshal(t.Tags)
	}
	return j, err
}

// Decode fills t's fields from the JSON columns.
func (j TriggerJSON) Decode(t *store.Trigger) error {
	if len(j.Condition) > 0 {
		t.Condition = json.RawMessage(j.Condition)
	}
	if err := json.Unmarshal(j.To, &t.To); err != nil {
		return fmt.Errorf("trigger %s: decoding to: %w", t.ID, err)
	}
	if len(j.CancelIf) > 0 {
		t.CancelIf = &store.TriggerCancel{}
		if err := json.Unmarshal(j.CancelIf, t.CancelIf); err != nil {
			return fmt.Errorf("trigger %s: decoding cancel_if: %w", t.ID, err)
		}
	}
	if len(j.Digest) > 0 {
		t.Digest = &store.TriggerDigest{}
		if err := json.Unmarshal(j.Digest, t.Digest); err != nil {
			return fmt.Errorf("trigger %s: decoding digest: %w", t.ID, err)
		}
	}
	if len(j.Tags) > 0 {
		if err := json.Unmarshal(j.Tags, &t.Tags); err != nil {
			return fmt.Errorf("trigger %s: decoding tags: %w", t.ID, err)
		}
	}
	return nil
}

// IDCursor checks a listing cursor that is the last id of the previous page (prefix_…).
func IDCursor(cursor, prefix string) error {
	if cursor != "" && !strings.HasPrefix(cursor, prefix+"_") {
		return fmt.Errorf("cursor %q: %w", cursor, store.ErrBadCursor)
	}
	return nil
}

// IDPage cuts a listing read with limit+1 rows to a page of limit and returns the id of the
// page's last row as the next cursor ("" on the last page).
func IDPage[T any](page []T, limit int, id func(T) string) ([]T, string) {
	return cutPage(page, limit, id)
}

// ActionReader reads actions for FillActions: those events created or joined, and the
// events each digest action carries (by action id, in order).
type ActionReader struct {
	OfEvents func(eventIDs []string) ([]store.Action, error)
	Joins    func(digestIDs []string) (map[string][]string, error)
}

// FillActions sets the Actions of events (each with its EventIDs).
func FillActions(events []store.AppEvent, r ActionReader) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]string, len(events))
	byID := make(map[string]int, len(events))
	for i, e := range events {
		ids[i] = e.ID
		byID[e.ID] = i
	}
	actions, err := r.OfEvents(ids)
	if err != nil {
		return err
	}
	joins, err := ReadJoins(actions, r.Joins)
	if err != nil {
		return err
	}
	for _, a := range actions {
		a.EventIDs = joins[a.ID]
		if len(a.EventIDs) == 0 {
			a.EventIDs = []string{a.EventID}
		}
		for _, e := range a.EventIDs {
			if i, ok := byID[e]; ok {
				events[i].Actions = append(events[i].Actions, a)
			}
		}
	}
	return nil
}

// ReadJoins returns the events each digest action among actions carries, read with joins
// (not called when there is no digest).
func ReadJoins(actions []store.Action, joins func(digestIDs []string) (map[string][]string, error)) (map[string][]string, error) {
	var digests []string
	for _, a := range actions {
		if a.DigestKey != "" {
			digests = append(digests, a.ID)
		}
	}
	if len(digests) == 0 {
		return map[string][]string{}, nil
	}
	return joins(digests)
}

// SetEventIDs fills the EventIDs of claimed actions (joins as ReadJoins returns) and sorts
// them by due time, then id.
func SetEventIDs(actions []store.Action, joins map[string][]string) {
	for i := range actions {
		a := &actions[i]
		if a.EventIDs = joins[a.ID]; len(a.EventIDs) == 0 {
			a.EventIDs = []string{a.EventID}
		}
	}
	slices.SortFunc(actions, func(a, b store.Action) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// EventsInOrder returns the events of found in the order of ids (each once).
func EventsInOrder(found []store.AppEvent, ids []string) []store.AppEvent {
	byID := make(map[string]store.AppEvent, len(found))
	for _, e := range found {
		byID[e.ID] = e
	}
	out := make([]store.AppEvent, 0, len(found))
	for _, id := range ids {
		if e, ok := byID[id]; ok {
			out = append(out, e)
			delete(byID, id)
		}
	}
	return out
}

// TriggeredEvents returns the event.triggered reports of a finish plan: one per action done,
// about its event, with its trigger, action and messages, at now.
func TriggeredEvents(plan FinishPlan, now time.Time) ([]OutboxEvent, error) {
	var evs []OutboxEvent
	for _, d := range plan.Done {
		if d.Status != store.ActionDone {
			continue
		}
		detail, err := json.Marshal(struct {
			Name       string   `json:"name,omitempty"`
			TriggerID  string   `json:"trigger_id"`
			ActionID   string   `json:"action_id"`
			MessageIDs []string `json:"message_ids"`
		}{d.EventName, d.Trigger, d.ID, append([]string{}, d.MessageIDs...)})
		if err != nil {
			return nil, err
		}
		evs = append(evs, OutboxEvent{Type: store.WebhookEventTriggered, Subject: d.Event, At: now, Detail: detail})
	}
	return evs, nil
}
