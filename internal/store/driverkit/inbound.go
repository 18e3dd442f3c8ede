package driverkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// The inbound area's rules every driver shares (store/inbound.go): what each report does to
// its recipient, the suppressions repeated bounces add, and the entry's outcome. Drivers answer
// the reads and run the writes InboundTx asks for, in the transaction of InboundApply.

// ReportTarget is a message a report names, as InboundApply needs it: its stream and status,
// whether it is split, and every recipient with its state (RecipientsView), by address.
type ReportTarget struct {
	ID         string
	Stream     string
	Status     store.Status
	Split      bool
	Recipients []store.Recipient
}

// InboundTx is what ApplyReports asks of the driver's transaction.
type InboundTx interface {
	// Target returns message id with its recipients, locked for the rest of the transaction
	// where the driver locks rows; ok false when there is no such message.
	Target(id string) (t ReportTarget, ok bool, err error)
	// RecordKey records a report key as applied at now and reports whether it was new (false:
	// it was applied before).
	RecordKey(key string, now time.Time) (bool, error)
	// RecipientState writes recipient r's row of message id: its state, attempts, last error
	// and sent time, updated at now.
	RecipientState(id string, r store.Recipient, now time.Time) error
	// MessageState gives message id the status status, updated at now; with split, the message
	// becomes split with nothing pending.
	MessageState(id string, status store.Status, split bool, now time.Time) error
	// AppendEvent appends e to message id's timeline.
	AppendEvent(id string, e store.Event) error
	// Report writes the webhook deliveries of a change of type typ to recipient email of message
	// id, with detail, at now.
	Report(typ, id, email string, detail json.RawMessage, now time.Time) error
	// Suppress adds s (SuppressionUpsert). With weaker, s expires, and an address already
	// suppressed in that scope for good (no expiry, and not expired) keeps that suppression;
	// it reports whether s was written.
	Suppress(s store.Suppression, weaker bool) (bool, error)
	// SoftBounce records a soft or undetermined bounce of email (class) from message msgID at
	// now, forgets that address's records from before since, and returns the soft ones and the
	// undetermined ones from since on, and how many messages the undetermined ones came from.
	SoftBounce(email, class, msgID string, now, since time.Time) (soft, undetermined, messages int, err error)
	// ForgetSoftBounces forgets every soft and undetermined bounce of email.
	ForgetSoftBounces(email string) error
}

// StreamCounts are the bounces and complaints an InboundApply counts, by stream, at its Now's
// hour.
type StreamCounts map[string]*store.DeliveryCounts

// DeliveredCounts are the counts of the recipients a MessageFinish delivered, by stream.
func DeliveredCounts(delivered map[string]int) StreamCounts {
	counts := make(StreamCounts, len(delivered))
	for stream, n := range delivered {
		if n > 0 {
			counts[stream] = &store.DeliveryCounts{Delivered: n}
		}
	}
	return counts
}

// CheckInbound checks an InboundApply before anything is written.
func CheckInbound(p store.InboundApplyParams) error {
	switch {
	case p.Now.IsZero():
		return errors.New("inbound: no Now")
	case p.Entry.Channel == "":
		return errors.New("inbound entry without a channel")
	case p.Entry.Kind == "":
		return errors.New("inbound entry without a kind")
	case len(p.Reports) == 0 && p.Entry.Outcome == "":
		return errors.New("inbound entry without reports nor an outcome")
	}
	for i, r := range p.Reports {
		if r.MessageID == "" || r.Recipient == "" {
			return fmt.Errorf("report %d: no message or recipient", i)
		}
		switch r.Kind {
		case store.ReportBounce, store.ReportComplaint, store.ReportDelivered, store.ReportDelayed,
			store.ReportAutoReply, store.ReportFeedback:
		default:
			return fmt.Errorf("report %d: unknown kind %q", i, r.Kind)
		}
	}
	return nil
}

// ReportEventType is the timeline event type of a report kind.
func ReportEventType(kind string) string {
	switch kind {
	case store.ReportBounce:
		return store.EventBounced
	case store.ReportComplaint:
		return store.EventComplained
	case store.ReportDelivered:
		return store.EventDelivered
	case store.ReportDelayed:
		return store.EventDelayed
	case store.ReportAutoReply:
		return store.EventAutoReply
	}
	return store.EventFeedback
}

// ApplyReports applies p's reports in the transaction tx (store.Inbound.InboundApply) and
// returns their outcomes and the bounces and complaints to count. A bounce or complaint
// changes its recipient's state only from a delivered one (sent; bounced for a complaint); it
// is reported to webhooks and counted only when it does, so that one failure reported twice
// (a DSN and an SES notification, each with its own key) counts once. Its suppression is added
// whatever the state.
func ApplyReports(tx InboundTx, p store.InboundApplyParams) ([]store.ReportOutcome, StreamCounts, error) {
	out := make([]store.ReportOutcome, len(p.Reports))
	counts := StreamCounts{}
	targets := map[string]*ReportTarget{}
	for i, r := range p.Reports {
		t := targets[r.MessageID]
		if t == nil {
			got, ok, err := tx.Target(r.MessageID)
			if err != nil {
				return nil, nil, fmt.Errorf("message %s: %w", r.MessageID, err)
			}
			if !ok {
				out[i].Missing = true
				continue
			}
			t = &got
			targets[r.MessageID] = t
		}
		email := strings.ToLower(strings.TrimSpace(r.Recipient))
		at := slices.IndexFunc(t.Recipients, func(rc store.Recipient) bool { return rc.Email == email })
		if at < 0 {
			out[i].Missing = true
			continue
		}
		if t.Status == store.StatusSending {
			out[i].Busy = true // its outcome may not be recorded yet
			continue
		}
		if r.Key != "" {
			fresh, err := tx.RecordKey(r.Key, p.Now)
			if err != nil {
				return nil, nil, fmt.Errorf("report key: %w", err)
			}
			if !fresh {
				continue
			}
		}
		o, err := applyReport(tx, p, r, t, at, counts)
		if err != nil {
			return nil, nil, fmt.Errorf("message %s, recipient %s: %w", r.MessageID, email, err)
		}
		out[i] = o
	}
	return out, counts, nil
}

// applyReport applies report r to recipient at of message t (whose states it updates).
func applyReport(tx InboundTx, p store.InboundApplyParams, r store.RecipientReport, t *ReportTarget, at int,
	counts StreamCounts) (store.ReportOutcome, error) {
	rc := &t.Recipients[at]
	detail := r.Detail
	var (
		next    store.RecipientStatus // the new state, "" for none
		webhook string
	)
	switch r.Kind {
	case store.ReportBounce:
		if rc.Status == store.RecipientSent {
			next, webhook = store.RecipientBounced, store.WebhookMessageBounced
		}
		sup, err := bounceSuppression(tx, p, r, rc.Email)
		if err != nil {
			return store.ReportOutcome{}, err
		}
		detail.Suppressed = sup
	case store.ReportComplaint:
		if rc.Status == store.RecipientSent || rc.Status == store.RecipientBounced {
			next, webhook = store.RecipientComplained, store.WebhookMessageComplained
		}
		if _, err := tx.Suppress(store.Suppression{Email: rc.Email, Scope: store.ScopeBroadcast,
			Reason: store.ReasonComplaint, Detail: complaintText(r.Detail), MessageID: t.ID, CreatedAt: p.Now}, false); err != nil {
			return store.ReportOutcome{}, err
		}
		detail.Suppressed = store.ScopeBroadcast
	case store.ReportDelivered:
		if err := tx.ForgetSoftBounces(rc.Email); err != nil {
			return store.ReportOutcome{}, err
		}
	}
	ev := store.NewEvent(ReportEventType(r.Kind), p.Now, &store.EventDetail{
		Recipients: store.Recipients([]string{rc.Email}), Report: &detail})
	if err := tx.AppendEvent(t.ID, ev); err != nil {
		return store.ReportOutcome{}, err
	}
	if next != "" {
		rc.Status = next
		states := make([]store.RecipientStatus, len(t.Recipients))
		for i, x := range t.Recipients {
			states[i] = x.Status
		}
		status := store.DeriveStatus(t.Status, states)
		if err := setState(tx, t, at, status, p.Now); err != nil {
			return store.ReportOutcome{}, err
		}
		t.Status = status
		t.Split = t.Split || len(t.Recipients) > 1
		if err := tx.Report(webhook, t.ID, rc.Email, ev.Detail, p.Now); err != nil {
			return store.ReportOutcome{}, err
		}
		c := counts[t.Stream]
		if c == nil {
			c = &store.DeliveryCounts{}
			counts[t.Stream] = c
		}
		if next == store.RecipientBounced {
			c.Bounced++
		} else {
			c.Complained++
		}
	}
	return store.ReportOutcome{Applied: true, State: rc.Status, Suppressed: detail.Suppressed}, nil
}

// setState writes the new state of recipient at of t and the message's status. A message not
// split with several recipients becomes split: every recipient gets its row with the message's
// state (its attempts, last error and sent time), the one reported on then its new state, and
// nothing is pending (only a delivered recipient changes state, so none was).
func setState(tx InboundTx, t *ReportTarget, at int, status store.Status, now time.Time) error {
	split := !t.Split && len(t.Recipients) > 1
	for i, r := range t.Recipients {
		// A message not split with one recipient has no state of its own: its status is it.
		if i == at && t.Split || split {
			if err := tx.RecipientState(t.ID, r, now); err != nil {
				return fmt.Errorf("recipient %s: %w", r.Email, err)
			}
		}
	}
	return tx.MessageState(t.ID, status, split, now)
}

// DecodeInboundIDs decodes an inbound entry's message ids (a JSON array, none when empty).
func DecodeInboundIDs(e *store.InboundEntry, ids []byte) error {
	if len(ids) == 0 {
		return nil
	}
	if err := json.Unmarshal(ids, &e.MessageIDs); err != nil {
		return fmt.Errorf("inbound entry %d: message ids: %w", e.ID, err)
	}
	return nil
}

// bounceSuppression adds the suppression bounce r calls for (p.Policy) and returns its scope,
// "" for none: a hard bounce at once, soft and undetermined ones once repeated enough.
func bounceSuppression(tx InboundTx, p store.InboundApplyParams, r store.RecipientReport, email string) (string, error) {
	sup := store.Suppression{Email: email, Scope: store.ScopeGlobal, Detail: bounceText(r.Detail),
		MessageID: r.MessageID, CreatedAt: p.Now}
	pol := p.Policy
	switch r.Detail.Class {
	case store.BounceHard:
		sup.Reason = store.ReasonHardBounce
		_, err := tx.Suppress(sup, false)
		return store.ScopeGlobal, err
	case store.BounceSoft, store.BounceUndetermined:
		if pol.SoftLimit <= 0 && pol.UndeterminedLimit <= 0 {
			return "", nil
		}
		var since time.Time
		if pol.SoftWindow > 0 {
			since = p.Now.Add(-pol.SoftWindow)
		}
		soft, und, msgs, err := tx.SoftBounce(email, r.Detail.Class, r.MessageID, p.Now, since)
		if err != nil {
			return "", err
		}
		switch {
		case r.Detail.Class == store.BounceSoft && pol.SoftLimit > 0 && soft >= pol.SoftLimit:
			sup.Reason = store.ReasonSoftBounce
			if pol.SoftSuppressFor > 0 {
				sup.ExpiresAt = p.Now.Add(pol.SoftSuppressFor)
			}
			sup.Detail = fmt.Sprintf("%d soft bounces: %s", soft, sup.Detail)
		case r.Detail.Class == store.BounceUndetermined && pol.UndeterminedLimit > 0 && und >= pol.UndeterminedLimit && msgs >= 2:
			sup.Reason = store.ReasonUndetermined
			sup.Detail = fmt.Sprintf("%d undetermined bounces of %d messages: %s", und, msgs, sup.Detail)
		default:
			return "", nil
		}
		wrote, err := tx.Suppress(sup, !sup.ExpiresAt.IsZero())
		if err != nil || !wrote {
			return "", err
		}
		return store.ScopeGlobal, nil
	}
	return "", nil
}

// bounceText is what a bounce's suppression says of it: the status and the remote reply.
func bounceText(d store.ReportDetail) string {
	return strings.TrimSpace(strings.Join(slices.DeleteFunc([]string{d.Status, d.Diagnostic},
		func(s string) bool { return s == "" }), " "))
}

// complaintText is what a complaint's suppression says of it.
func complaintText(d store.ReportDetail) string {
	if d.FeedbackType == "" {
		return "complaint (" + d.Source + ")"
	}
	return d.FeedbackType + " complaint (" + d.Source + ")"
}

// BusyDetail is what an inbound entry says when its reports came while their messages were
// being delivered (store.ReportOutcome.Busy).
const BusyDetail = "delivery in progress; the sender will retry"

// InboundEntry is p.Entry as stored: received at p.Now unless it says when, its outcome derived
// from the reports' (applied when any was, duplicate when none was but some were duplicates,
// ignored with BusyDetail when none was either but some were busy, unmatched when all were
// missing), and its MessageIDs, when not given, those of the reports that named a message
// postie sent.
func InboundEntry(p store.InboundApplyParams, out []store.ReportOutcome) store.InboundEntry {
	e := p.Entry
	if e.At.IsZero() {
		e.At = p.Now
	}
	if len(p.Reports) == 0 {
		return e
	}
	var applied, duplicate, busy bool
	for _, o := range out {
		applied = applied || o.Applied
		duplicate = duplicate || !o.Applied && !o.Missing && !o.Busy
		busy = busy || o.Busy
	}
	switch {
	case applied:
		e.Outcome = store.InboundApplied
	case duplicate:
		e.Outcome = store.InboundDuplicate
	case busy:
		e.Outcome = store.InboundIgnored
		e.Detail = strings.TrimPrefix(e.Detail+"; "+BusyDetail, "; ")
	default:
		e.Outcome = store.InboundUnmatched
	}
	if len(e.MessageIDs) == 0 {
		for i, r := range p.Reports {
			if !out[i].Missing && !slices.Contains(e.MessageIDs, r.MessageID) {
				e.MessageIDs = append(e.MessageIDs, r.MessageID)
			}
		}
	}
	return e
}

// StreamPausedDetail is the detail of a stream.paused report.
func StreamPausedDetail(p store.StreamPauseParams) json.RawMessage {
	// Marshalling three strings cannot fail.
	b, _ := json.Marshal(struct {
		Stream string `json:"stream"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}{p.Stream, p.Reason, p.Detail})
	return b
}

// CheckStreamPause checks a StreamPause.
func CheckStreamPause(p store.StreamPauseParams) error {
	if p.Stream == "" || p.Reason == "" || p.Now.IsZero() {
		return errors.New("stream pause needs a stream, a reason and a Now")
	}
	return nil
}

// InboundPage cuts entries read with limit+1 rows to a page of limit and returns the cursor of
// the next page ("" when this one is the last).
func InboundPage(page []store.InboundEntry, limit int) ([]store.InboundEntry, string) {
	return cutPage(page, limit, store.InboundCursor)
}

// InboundListQuery returns an InboundList page's query of columns (newest first, limit rows,
// after the id after unless 0) and its arguments, ph(n) being the driver's n-th placeholder. The
// WHERE names only the filters given, so that the planner can use the index on kind or on
// outcome: one fixed condition per filter, true when the filter is empty, keeps it from that,
// and a rare kind would then be found by scanning every entry.
func InboundListQuery(columns string, p store.InboundListParams, after int64, limit any, ph func(n int) string) (string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+ph(len(args)))
	}
	if p.Kind != "" {
		add("kind = ", p.Kind)
	}
	if p.Outcome != "" {
		add("outcome = ", p.Outcome)
	}
	if after != 0 {
		add("id < ", after)
	}
	q := "SELECT " + columns + " FROM inbound_entries"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, limit)
	return q + " ORDER BY id DESC LIMIT " + ph(len(args)), args
}

// HourOf is the start of t's hour, the granularity of the delivery counts.
func HourOf(t time.Time) time.Time {
	return t.UTC().Truncate(time.Hour)
}
