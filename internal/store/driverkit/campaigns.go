package driverkit

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/postie/postie/internal/store"
)

// The campaigns area's rules every driver shares: the JSON columns of a campaign and a run,
// pause reasons, pages and progress.

// CampaignJSON is the JSON of a campaign's columns: nil for an empty list, object or reasons.
type CampaignJSON struct {
	Lists, Data, Tags, PauseReasons []byte
	Schedule, Cap                   []byte // never nil
}

// EncodeCampaignJSON encodes the JSON columns of c (its pause reasons sorted, without repeats).
func EncodeCampaignJSON(c store.Campaign) (CampaignJSON, error) {
	var (
		j   CampaignJSON
		err error
	)
	if len(c.Lists) > 0 {
		if j.Lists, err = json.Marshal(c.Lists); err != nil {
			return j, err
		}
	}
	if len(c.Data) > 0 {
		j.Data = c.Data
	}
	if len(c.Tags) > 0 {
		if j.Tags, err = json.Marshal(c.Tags); err != nil {
			return j, err
		}
	}
	if j.PauseReasons, err = EncodeReasons(c.PauseReasons); err != nil {
		return j, err
	}
	if j.Schedule, err = json.Marshal(c.Schedule); err != nil {
		return j, err
	}
	j.Cap, err = json.Marshal(c.Cap)
	return j, err
}

// Decode fills c's fields from the JSON columns.
func (j CampaignJSON) Decode(c *store.Campaign) error {
	for _, f := range []struct {
		src  []byte
		dst  any
		what string
	}{
		{j.Lists, &c.Lists, "lists"}, {j.Tags, &c.Tags, "tags"}, {j.PauseReasons, &c.PauseReasons, "pause reasons"},
		{j.Schedule, &c.Schedule, "schedule"}, {j.Cap, &c.Cap, "frequency cap"},
	} {
		if len(f.src) == 0 {
			continue
		}
		if err := json.Unmarshal(f.src, f.dst); err != nil {
			return fmt.Errorf("campaign %s: decoding its %s: %w", c.ID, f.what, err)
		}
	}
	if len(j.Data) > 0 {
		c.Data = json.RawMessage(j.Data)
	}
	return nil
}

// Reasons returns pause reasons sorted, without repeats, nil for none.
func Reasons(reasons []string) []string {
	if len(reasons) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(reasons)))
}

// EncodeReasons is the JSON of Reasons(reasons), nil for none.
func EncodeReasons(reasons []string) ([]byte, error) {
	r := Reasons(reasons)
	if r == nil {
		return nil, nil
	}
	return json.Marshal(r)
}

// DecodeRun fills a run's pause reasons and excluded counts from their JSON columns.
func DecodeRun(r *store.Run, reasons, excluded []byte) error {
	if len(reasons) > 0 {
		if err := json.Unmarshal(reasons, &r.PauseReasons); err != nil {
			return fmt.Errorf("run %s: decoding its pause reasons: %w", r.ID, err)
		}
	}
	if len(excluded) > 0 {
		if err := json.Unmarshal(excluded, &r.Excluded); err != nil {
			return fmt.Errorf("run %s: decoding its excluded counts: %w", r.ID, err)
		}
	}
	return nil
}

// CampaignPage cuts a campaign listing read with limit+1 rows (the cursor is the last id).
func CampaignPage(page []store.Campaign, limit int) ([]store.Campaign, string) {
	return cutPage(page, limit, func(c store.Campaign) string { return c.ID })
}

// RunRecipientPage cuts a recipient listing read with limit+1 rows (the cursor is the last
// contact id).
func RunRecipientPage(page []store.RunRecipient, limit int) ([]store.RunRecipient, string) {
	return cutPage(page, limit, func(r store.RunRecipient) string { return r.ContactID })
}

// CapSince is the time after which a contact's last message of the campaign holds it back under
// c at now, and whether c holds anyone back at all: never for CapNone, ever (the zero time, before
// every send) for CapOncePerContact.
func CapSince(c store.FrequencyCap, now time.Time) (time.Time, bool) {
	switch c.Kind {
	case store.CapOncePerContact:
		return time.Time{}, true
	case store.CapDays:
		return now.Add(-time.Duration(c.Days) * 24 * time.Hour), true
	}
	return time.Time{}, false
}

// Progress is a run's progress from the counts of its messages by status and of its recipients
// without a message by stored state (store.RunProgress).
func Progress(messages, recipients map[string]int) store.RunProgress {
	p := store.RunProgress{Counts: map[string]int{store.CampaignRecipientPending: 0,
		store.CampaignRecipientUnsubscribed: 0}}
	for _, st := range store.RecipientStatuses {
		p.Counts[string(st)] = 0
	}
	for status, n := range messages {
		st := store.Status(status)
		switch st {
		case store.StatusScheduled, store.StatusQueued, store.StatusSending:
			p.InFlight += n
			p.Open += n
		case store.StatusDeferred:
			p.Open += n
		}
		rs := string(st.RecipientState())
		if rs == "" { // partially_failed: a campaign message has one recipient, so never
			rs = string(store.RecipientFailed)
		}
		p.Counts[rs] += n
	}
	for state, n := range recipients {
		if state == store.CampaignRecipientQueued {
			continue // counted by their messages' states
		}
		p.Counts[state] += n
		if state == store.CampaignRecipientPending {
			p.Open += n
		}
	}
	return p
}

// queueStates are the states RunQueue gives a recipient without a message.
var queueStates = []string{store.CampaignRecipientUnsubscribed, store.CampaignRecipientSuppressed,
	store.CampaignRecipientFailed}

// CheckRunQueue checks the outcomes of a RunQueue: one per contact, each with a message or a
// state for a recipient without one (unsubscribed, suppressed or failed).
func CheckRunQueue(p store.RunQueueParams) error {
	seen := make(map[string]bool, len(p.Items))
	for _, it := range p.Items {
		if it.ContactID == "" {
			return fmt.Errorf("run %s: an outcome without a contact", p.RunID)
		}
		if seen[it.ContactID] {
			return fmt.Errorf("run %s: two outcomes for contact %s", p.RunID, it.ContactID)
		}
		seen[it.ContactID] = true
		if it.Message == nil && !slices.Contains(queueStates, it.Status) {
			return fmt.Errorf("run %s: contact %s cannot be given the state %q", p.RunID, it.ContactID, it.Status)
		}
	}
	return nil
}
