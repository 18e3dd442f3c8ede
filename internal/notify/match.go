package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// compiled is an enabled trigger ready for matching.
type compiled struct {
	t     store.Trigger
	cond  *Condition
	match [][]string // cancel_if.match's paths
	dkey  []string   // digest.key's path (nil: by contact)
	to    []string   // to.data's path
}

// triggerSet is the enabled triggers as loaded at one moment.
type triggerSet struct {
	loaded   time.Time
	byEvent  map[string][]*compiled // by the event name they match
	cancelBy map[string][]*compiled // by their cancel_if event name
	byID     map[string]*compiled
}

// triggerCache holds the enabled triggers for matching: reloaded when a trigger changed on this
// node (invalidate) and, for changes made on other nodes, once older than Refresh.
type triggerCache struct {
	set   atomic.Pointer[triggerSet]
	stale atomic.Bool
	mu    sync.Mutex // one reload at a time
}

func (c *triggerCache) invalidate() { c.stale.Store(true) }

// enabled returns the enabled triggers, reloading them when stale or older than Refresh.
func (s *Service) enabled(ctx context.Context, now time.Time) (*triggerSet, error) {
	c := &s.triggers
	if set := c.set.Load(); set != nil && !c.stale.Load() && now.Sub(set.loaded) < s.cfg.Refresh && !now.Before(set.loaded) {
		return set, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if set := c.set.Load(); set != nil && !c.stale.Load() && now.Sub(set.loaded) < s.cfg.Refresh && !now.Before(set.loaded) {
		return set, nil // another caller reloaded meanwhile
	}
	c.stale.Store(false) // before the read: a change during it marks the set stale again
	ts, err := s.cfg.Store.TriggersEnabled(ctx)
	if err != nil {
		c.stale.Store(true)
		return nil, err
	}
	set := &triggerSet{loaded: now, byEvent: map[string][]*compiled{}, cancelBy: map[string][]*compiled{},
		byID: make(map[string]*compiled, len(ts))}
	for _, t := range ts {
		cond, err := ParseCondition(t.Condition)
		if err != nil {
			// Checked when saved: only a change of the language could bring this.
			s.log.Error("a trigger's condition no longer parses: the trigger is left out", "trigger", t.ID, "err", err)
			continue
		}
		ct := &compiled{t: t, cond: cond}
		if t.CancelIf != nil {
			for _, p := range t.CancelIf.Match {
				keys, _ := ParsePath(p)
				ct.match = append(ct.match, keys)
			}
			set.cancelBy[t.CancelIf.Event] = append(set.cancelBy[t.CancelIf.Event], ct)
		}
		if t.Digest != nil && t.Digest.Key != "" {
			ct.dkey, _ = ParsePath(t.Digest.Key)
		}
		if t.To.Data != "" {
			ct.to, _ = ParsePath(t.To.Data)
		}
		set.byEvent[t.Event] = append(set.byEvent[t.Event], ct)
		set.byID[t.ID] = ct
	}
	c.set.Store(set)
	return set, nil
}

// who is how an event names its contact, for the keys that depend on it ("" for none).
func who(in *store.EventIn) string {
	if c := in.Contact; c != nil {
		if c.EmailKey != "" {
			return "email:" + c.EmailKey
		}
		if c.ExternalID != "" {
			return "ext:" + c.ExternalID
		}
	}
	return ""
}

// key is a short, fixed-length key of a trigger and some values: the trigger's id, a colon and
// a hash of the parts.
func key(trgID string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return trgID + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// values encodes the values at paths in data, or reports that one is missing.
func values(data any, paths [][]string) (string, bool) {
	var b strings.Builder
	for _, p := range paths {
		v, ok := Lookup(data, p)
		if !ok {
			return "", false
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return "", false
		}
		b.Write(enc)
		b.WriteByte(0)
	}
	return b.String(), true
}

// cancelKey is the key of trigger ct's cancel_if for an event with data: the same for the
// triggering event and the cancelling one when they share the values at the match paths. ok is
// false when data lacks one of them (nothing is cancelled by, or for, such an event).
func cancelKey(ct *compiled, data any) (string, bool) {
	v, ok := values(data, ct.match)
	if !ok {
		return "", false
	}
	return key(ct.t.ID, ct.t.CancelIf.Event, v), true
}

// match adds to in the actions of the triggers its event matches and the cancel keys it
// satisfies. data is the event's data decoded (json.Number numbers).
func (set *triggerSet) match(in *store.EventIn, data any, now time.Time) {
	ev := &in.Event
	for _, ct := range set.byEvent[ev.Name] {
		if !ct.cond.Match(data, now) {
			continue
		}
		t := &ct.t
		wait := t.Delay
		if t.Digest != nil {
			wait = t.Digest.Window
		}
		due := ev.OccurredAt.Add(wait)
		if due.Before(now) {
			due = now
		}
		a := store.Action{ID: id.New(id.Action), TriggerID: t.ID, DueAt: due}
		if t.CancelIf != nil {
			a.CancelKey, _ = cancelKey(ct, data)
		}
		if t.Digest != nil {
			part := who(in)
			if ct.dkey != nil {
				v, _ := values(data, [][]string{ct.dkey}) // missing: the events without one go together
				part = "data:" + v
			}
			a.DigestKey = key(t.ID, part)
		}
		if t.Cap > 0 {
			a.CapKey = capKey(ct, in, data)
		}
		in.Actions = append(in.Actions, a)
	}
	for _, ct := range set.cancelBy[ev.Name] {
		if k, ok := cancelKey(ct, data); ok {
			in.Cancels = append(in.Cancels, k)
		}
	}
}

// capKey is the frequency cap's key of an action: per address for a trigger to an address in
// the data, else per the event's contact, else (no contact) the trigger as a whole.
func capKey(ct *compiled, in *store.EventIn, data any) string {
	part := who(in)
	if ct.to != nil {
		if v, ok := Lookup(data, ct.to); ok {
			if s, ok := v.(string); ok {
				part = "addr:" + strings.ToLower(strings.TrimSpace(s))
			}
		}
	}
	return key(ct.t.ID, part)
}
