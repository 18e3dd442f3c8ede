package store

import (
	"context"
	"time"
)

// The inbound area: what comes back about mail after the relay took it (bounces, complaints,
// delivery reports, auto-replies; DESIGN §12, email-rules §4), what that drives (recipient
// states, suppressions, webhooks), the delivery counts per stream that bounce and complaint rates
// are computed from, and the pauses of a stream whose rates are too high. Package inbound owns
// receiving and parsing; package reputation owns the rates and the pausing; this area records.

// Report kinds: what a report says about one recipient of one message.
const (
	ReportBounce    = "bounce"     // the mail did not reach the mailbox after the relay took it
	ReportComplaint = "complaint"  // the recipient reported it as spam (ARF abuse, fraud, virus, other; SES)
	ReportDelivered = "delivered"  // a delivery report (DSN Action delivered or relayed, SES Delivery)
	ReportDelayed   = "delayed"    // DSN Action delayed: still trying; informational
	ReportAutoReply = "auto_reply" // an automatic answer (RFC 3834, vacation): never a bounce
	ReportFeedback  = "feedback"   // other feedback (ARF not-spam, auth-failure): informational
)

// Bounce classes (email-rules §4.5), ReportDetail.Class of a bounce.
const (
	BounceHard         = "hard"         // the address is bad: suppressed at once
	BounceSoft         = "soft"         // mailbox full, expired retries: suppressed after repeats
	BounceBlock        = "block"        // policy, spam, reputation: never suppresses the recipient
	BounceMessage      = "message"      // the message itself (too large, bad content): no suppression
	BounceUndetermined = "undetermined" // no usable code: suppressed after repeats on different messages
)

// Timeline event types of reports (Event.Type), one per report kind.
const (
	EventBounced    = "bounced"
	EventComplained = "complained"
	EventDelivered  = "delivered"
	EventDelayed    = "delayed"
	EventAutoReply  = "auto_reply"
	EventFeedback   = "feedback"
)

// Suppression reasons added by reports (beside ReasonHardBounce and ReasonComplaint).
const (
	ReasonSoftBounce   = "soft_bounce"  // SoftLimit soft bounces within SoftWindow; expires
	ReasonUndetermined = "undetermined" // UndeterminedLimit undetermined bounces of different messages
)

// ReportDetail is what a report said, as the timeline event's EventDetail.Report and the
// webhook payload's detail show it.
type ReportDetail struct {
	Source       string `json:"source" enum:"dsn,arf,text,ses,auto_reply" doc:"where it came from: an RFC 3464 DSN, an RFC 5965 ARF report, a non-standard bounce text, an SES notification, an automatic reply"`
	Class        string `json:"class,omitempty" enum:"hard,soft,block,message,undetermined" doc:"a bounce's class"`
	Status       string `json:"status,omitempty" doc:"the enhanced status code, e.g. 5.1.1"`
	Diagnostic   string `json:"diagnostic,omitempty" doc:"the remote server's reply (DSN Diagnostic-Code, SES diagnosticCode)"`
	Action       string `json:"action,omitempty" doc:"the DSN Action field"`
	ReportingMTA string `json:"reporting_mta,omitempty" doc:"the server that made the report"`
	RemoteMTA    string `json:"remote_mta,omitempty" doc:"the server that refused the mail"`
	FeedbackType string `json:"feedback_type,omitempty" doc:"an ARF Feedback-Type or SES complaintFeedbackType (abuse, fraud, not-spam, …)"`
	UserAgent    string `json:"user_agent,omitempty" doc:"the software that made a feedback report"`
	Suppressed   string `json:"suppressed,omitempty" doc:"the scope of the suppression this report added (global, broadcast)"`
}

// RecipientReport is one report about one recipient of one message.
type RecipientReport struct {
	MessageID string // msg_…
	Recipient string // a bare address, matched case-insensitively against the message's recipients
	Kind      string // Report…
	Detail    ReportDetail
	// Key deduplicates: a report whose Key was applied before changes nothing (a DSN delivered
	// twice, an SNS notification retried). "" is never deduplicated.
	Key string
}

// ReportPolicy is when repeated bounces suppress an address (email-rules §4.5).
type ReportPolicy struct {
	// SoftLimit soft bounces of an address within SoftWindow, with no delivery report in
	// between, suppress it (ReasonSoftBounce, scope global) for SoftSuppressFor. 0: never.
	SoftLimit       int
	SoftWindow      time.Duration
	SoftSuppressFor time.Duration
	// UndeterminedLimit undetermined bounces of an address within SoftWindow, of at least two
	// different messages, suppress it (ReasonUndetermined, scope global, no expiry). 0: never.
	UndeterminedLimit int
}

// InboundEntry is one piece of inbound mail or one notification as received, kept so operators
// can see what came in and what became of it (forgeries and unparseable reports included).
type InboundEntry struct {
	ID         int64
	At         time.Time
	Channel    string   // InboundSMTP or InboundSES
	MailFrom   string   // envelope sender ("" for the null sender of a DSN)
	RcptTo     string   // envelope recipient, or the SNS topic
	Kind       string   // what it was: dsn, arf, text, auto_reply, ses, unparseable, forged, relay
	Outcome    string   // InboundApplied, InboundDuplicate, InboundUnmatched, InboundIgnored
	Detail     string   // a line a human reads: why it was ignored, what it said
	MessageIDs []string // the messages it reported on
	Size       int      // octets received
}

// Inbound channels and outcomes.
const (
	InboundSMTP = "smtp"
	InboundSES  = "ses"

	InboundApplied   = "applied"   // at least one report changed something
	InboundDuplicate = "duplicate" // every report was applied before (same Key)
	InboundUnmatched = "unmatched" // names no message or recipient postie sent (or does not verify)
	InboundIgnored   = "ignored"   // unparseable, or nothing to act on (recorded only)
)

// InboundApplyParams records one received report with what it says about recipients, in one
// transaction.
type InboundApplyParams struct {
	Entry   InboundEntry // its Outcome is set by the driver from the reports' fates when Reports is non-empty
	Reports []RecipientReport
	Policy  ReportPolicy
	Now     time.Time
}

// ReportOutcome is the fate of one RecipientReport.
type ReportOutcome struct {
	Applied    bool            // false: a duplicate Key, no such message or recipient (Missing), or Busy
	Missing    bool            // no such message, or the address is not one of its recipients
	State      RecipientStatus // the recipient's state afterwards ("" when Missing or Busy)
	Suppressed string          // the scope of a suppression the report added, "" for none
	// Busy: the message is being delivered (its row is leased, status sending), so the report
	// may have overtaken the outcome it follows; nothing was applied for it: try again shortly.
	Busy bool
}

// InboundListParams pages through inbound entries, newest first.
type InboundListParams struct {
	Kind    string // "" for all
	Outcome string // "" for all
	Cursor  string
	Limit   int
}

// DeliveryCounts are a stream's recipients delivered (the relay accepted them), bounced and
// complained about over some time.
type DeliveryCounts struct {
	Delivered, Bounced, Complained int
}

// StreamState is a stream's pause, when it has one.
type StreamState struct {
	Stream    string
	Paused    bool
	Reason    string // PauseBounceRate, PauseComplaintRate or PauseManual
	Detail    string // the rates and counts that paused it
	PausedAt  time.Time
	ResumedAt time.Time // the last resume; zero when never resumed
}

// Stream pause reasons (PauseComplaintRate and PauseManual are shared with campaign runs).
const (
	PauseBounceRate = "bounce_rate"
)

// StreamPauseParams pauses a stream.
type StreamPauseParams struct {
	Stream, Reason, Detail string
	Now                    time.Time
}

// Inbound is the inbound area.
type Inbound interface {
	// InboundApply records p.Entry and applies p.Reports, all in one transaction, and returns
	// each report's outcome (in order). Per report, unless its Key was applied before, it
	// names no recipient of an existing message (Missing) or that message is being delivered
	// (Busy; its key is not recorded either) — nothing is written for it then:
	//   - every kind appends its timeline event (Event… of the kind) to the message, with
	//     EventDetail{Recipients: [the recipient], Report: &detail};
	//   - bounce: a sent recipient becomes bounced (other states stay; a message not split
	//     becomes split when it has several recipients; its status is derived, DeriveStatus);
	//     class hard suppresses the address (ReasonHardBounce, scope global); soft and
	//     undetermined count toward p.Policy; reports message.bounced; counts a bounce for the
	//     message's stream at Now;
	//   - complaint: a sent or bounced recipient becomes complained; suppresses the address in
	//     scope broadcast (ReasonComplaint); reports message.complained; counts a complaint;
	//   - delivered: forgets the address's soft bounces (they no longer count toward SoftLimit);
	//   - delayed, auto_reply, feedback: the timeline event only.
	// A bounce or complaint that leaves its recipient's state as it was (a second report of one
	// failure, with another Key) is neither reported nor counted; its suppression still applies.
	// A soft bounce's suppression never replaces one of the address for good.
	// The webhook payload's detail is the timeline event's detail. Detail.Suppressed is set to
	// the scope of a suppression the report added. The entry's Outcome is derived: applied when
	// any report was applied, duplicate when none was but some were duplicates, ignored (Detail
	// saying the sender will retry) when none was either but some were busy, unmatched when all
	// were missing; with no reports, Entry.Outcome as given.
	InboundApply(ctx context.Context, p InboundApplyParams) ([]ReportOutcome, error)
	// InboundList returns one page of inbound entries matching p, newest first, and the next
	// cursor ("" on the last page). Limit defaults to 50, capped at 1000.
	InboundList(ctx context.Context, p InboundListParams) ([]InboundEntry, string, error)

	// DeliveryCounts sums a stream's counts from since (rounded down to the hour, the counts'
	// granularity) until now. Delivered is counted by MessageFinish: every recipient it makes
	// sent; Bounced and Complained by InboundApply.
	DeliveryCounts(ctx context.Context, stream string, since time.Time) (DeliveryCounts, error)

	// StreamPause pauses a stream and reports stream.paused (Subject the stream, Detail
	// {"stream", "reason", "detail"}) in the same transaction. It returns false, changing
	// nothing, when the stream is already paused. A paused stream's messages are not claimed
	// (MessageClaim returns none of them, MessageNextDue says none is due) nor handed over at
	// accept; they wait, queued.
	StreamPause(ctx context.Context, p StreamPauseParams) (bool, error)
	// StreamResume ends a stream's pause, records ResumedAt, and wakes its workers. ErrConflict
	// when it is not paused.
	StreamResume(ctx context.Context, stream string, now time.Time) error
	// StreamStates returns the state of every stream that was ever paused.
	StreamStates(ctx context.Context) ([]StreamState, error)
}

// InboundCursor encodes an InboundList keyset position, the last entry of a page: its id in
// decimal, in base64url.
func InboundCursor(last InboundEntry) string { return int64Cursor(last.ID) }

// InboundCursorAfter decodes an InboundCursor into the id the previous page ended with (0 for
// the first page, cursor "").
func InboundCursorAfter(cursor string) (int64, error) { return int64CursorAfter("inbound", cursor) }
