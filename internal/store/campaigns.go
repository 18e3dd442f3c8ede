package store

import (
	"context"
	"encoding/json"
	"time"
)

// The campaigns area: campaigns, their runs and each run's recipients (DESIGN §10). Package
// campaign owns the workflow; this area gives it atomic steps, each one transaction, so that
// nothing about a run lives only in memory.
//
// A campaign (cmp_…) is a template, an audience (lists and/or a segment), a schedule and
// limits. Each occurrence of its schedule is a run (run_…), unique on (campaign, scheduled time
// in UTC): RunCreate of an occurrence that exists is ErrConflict, so a restart or a second node
// never starts it twice. A run is worked by one node at a time under a lease (lease_owner,
// lease_until), claimed with RunClaim as messages are; a node that dies leaves a lease that
// ends, and another node (or the same one restarted) takes the run over where it stood.
//
// Working a run is two steps, repeated:
//   - RunMaterialise copies the next keyset chunk of the audience (by contact id) into
//     campaign_recipients as pending, leaving out (and counting) contacts with no subscribed
//     subscription to any audience list (unsubscribed, or pending a double opt-in), those
//     suppressed in the global or broadcast scope, and those held back by the frequency cap.
//     A list's own suppressions are left to delivery, which checks the message's list. The run's cursor moves in the same
//     transaction, so a crash redoes at most one chunk, and the primary key (run, contact)
//     makes that harmless.
//   - RunPending reads pending recipients with their contacts; the caller composes a message
//     for each (package message) and RunQueue stores the messages and marks those recipients
//     queued (with their message id) in one transaction, or marks them unsubscribed, suppressed
//     or failed. A recipient is therefore pending (no message), or has exactly one message.
//
// Recipient states. Stored on the recipient row: pending, queued (its message exists),
// unsubscribed, suppressed, failed (its message could not be composed) and cancelled. Once a
// recipient has a message, its state is the message's (Status.RecipientState: scheduled,
// queued and sending are queued), so progress (RunProgress) counts recipient rows without a
// message by their own state and those with one by their message's status. Campaign messages
// carry the run in Message.RunID for this.
//
// Holding. A paused or cancelled run must not send what it has not handed to a relay yet.
// RunSetState to paused moves the run's messages still queued or deferred to HeldUntil (they
// stay queued, but are not due); back to running makes them due at once and gives each at least
// the TTL it is given from then on, so a pause of days expires nothing. Cancelling cancels
// them (a cancelled event each) and every pending recipient.

// Campaign states: draft → scheduled → running ⇄ paused → finished | cancelled. A recurring
// campaign goes back to scheduled between its runs.
const (
	CampaignDraft     = "draft"
	CampaignScheduled = "scheduled"
	CampaignRunning   = "running"
	CampaignPaused    = "paused"
	CampaignFinished  = "finished"
	CampaignCancelled = "cancelled"
)

// CampaignStates lists every campaign state.
var CampaignStates = []string{CampaignDraft, CampaignScheduled, CampaignRunning, CampaignPaused,
	CampaignFinished, CampaignCancelled}

// Run states: running ⇄ paused → finished | cancelled.
const (
	RunRunning   = "running"
	RunPaused    = "paused"
	RunFinished  = "finished"
	RunCancelled = "cancelled"
)

// Pause reasons. A paused campaign or run stays paused while any reason remains; each is
// removed on its own (resume names the reasons it lifts).
const (
	PauseManual        = "manual"         // an operator paused it
	PauseDailyQuota    = "daily_quota"    // the campaigns' share of the transport's daily quota is used up
	PauseComplaintRate = "complaint_rate" // too many of the run's recipients reported it as spam
)

// Schedule kinds.
const (
	ScheduleNow  = "now"  // one run as soon as it is started
	ScheduleAt   = "at"   // one run at Schedule.At
	ScheduleCron = "cron" // a run at each occurrence of Schedule.Cron in Schedule.Timezone
)

// Frequency caps.
const (
	CapNone           = ""                 // every run targets every contact of its audience
	CapOncePerContact = "once_per_contact" // a contact gets this campaign at most once, ever
	CapDays           = "days"             // at most once per FrequencyCap.Days days
)

// Recipient states stored on campaign_recipients rows (see the area's doc for the others).
const (
	CampaignRecipientPending      = "pending"
	CampaignRecipientQueued       = "queued"
	CampaignRecipientUnsubscribed = "unsubscribed"
	CampaignRecipientSuppressed   = "suppressed"
	CampaignRecipientFailed       = "failed"
	CampaignRecipientCancelled    = "cancelled"
)

// HeldUntil is the next_attempt_at of the messages of a paused run: never due.
var HeldUntil = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Schedule is when a campaign runs.
type Schedule struct {
	Kind     string    `json:"kind"`               // ScheduleNow, ScheduleAt, ScheduleCron
	At       time.Time `json:"at,omitzero"`        // ScheduleAt
	Cron     string    `json:"cron,omitempty"`     // ScheduleCron: five fields, minute first
	Timezone string    `json:"timezone,omitempty"` // ScheduleCron: IANA name; "" is UTC
}

// FrequencyCap limits how often one contact gets a campaign across its runs.
type FrequencyCap struct {
	Kind string `json:"kind"`           // CapNone, CapOncePerContact, CapDays
	Days int    `json:"days,omitempty"` // CapDays
}

// Campaign is a stored campaign.
type Campaign struct {
	ID              string // cmp_…
	Name            string
	Template        string
	TemplateVersion int      // 0: the latest when a run starts (then pinned on the run)
	Lists           []string // list ids; with Segment, contacts on a list AND in the segment
	Segment         string   // seg_…, "" for none
	From            string   // "" for the default sender
	ReplyTo         string
	Subject         string          // "" for the template's subject
	Data            json.RawMessage // shared by every recipient (.data), nil for none
	Tags            []string
	Rate            float64 // messages per second, 0 for no limit of its own
	Schedule        Schedule
	Cap             FrequencyCap
	ResumeNextDay   bool // a pause for the daily quota ends by itself the next (UTC) day
	State           string
	PauseReasons    []string  // while State is paused; sorted, no duplicates
	NextRunAt       time.Time // the next occurrence to run, zero when none
	LastRunAt       time.Time // the scheduled time of the latest run, zero when none
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// CampaignListParams pages through campaigns by id, newest first.
type CampaignListParams struct {
	State  string // "" for every state
	Cursor string // the id of the last campaign of the previous page
	Limit  int    // defaults to DefaultListLimit, capped at MaxListLimit
}

// CampaignSetStateParams changes a campaign's state, only from one of From (ErrConflict
// otherwise, returned with the campaign as it is, so the caller can name its state).
type CampaignSetStateParams struct {
	ID           string
	From         []string
	To           string
	PauseReasons []string  // the reasons after the change (nil clears them)
	NextRunAt    time.Time // the next occurrence after the change (zero: none)
	Now          time.Time
}

// ExcludedCounts are the contacts of an audience a run left out, by why.
type ExcludedCounts struct {
	Unsubscribed int `json:"unsubscribed"` // unsubscribed from the lists (or from all broadcast mail)
	Pending      int `json:"pending"`      // subscription not confirmed (double opt-in)
	Suppressed   int `json:"suppressed"`   // on the suppression list (global, broadcast, or the list)
	Capped       int `json:"capped"`       // held back by the frequency cap
}

// Run is one occurrence of a campaign.
type Run struct {
	ID              string // run_…
	CampaignID      string
	ScheduledAt     time.Time // the occurrence, UTC; unique per campaign
	State           string    // RunRunning, RunPaused, RunFinished, RunCancelled
	PauseReasons    []string
	TemplateVersion int    // pinned when the run starts
	Materialised    bool   // the whole audience is in campaign_recipients
	Cursor          string // the last contact id materialised, "" before the first chunk
	Recipients      int    // rows materialised
	Excluded        ExcludedCounts
	LeaseOwner      string
	LeaseUntil      time.Time
	StartedAt       time.Time
	FinishedAt      time.Time // zero until finished or cancelled
	UpdatedAt       time.Time
}

// RunCreateParams starts an occurrence: the run is inserted (state running) and the campaign
// moves to running with its next occurrence, in one transaction; ErrConflict when the campaign
// already has a run for ScheduledAt (nothing changed) or is not in one of CampaignFrom.
type RunCreateParams struct {
	Run          Run // ID, CampaignID, ScheduledAt, TemplateVersion, StartedAt set by the caller
	CampaignFrom []string
	NextRunAt    time.Time // the campaign's next occurrence after this one, zero for none
	// Owner, when set, holds the new run's lease until LeaseUntil: the node that starts it
	// works it first.
	Owner      string
	LeaseUntil time.Time
}

// RunClaimParams leases up to Limit running runs whose lease is empty or ended.
type RunClaimParams struct {
	Owner      string
	Limit      int
	Now        time.Time
	LeaseUntil time.Time
}

// RunRenewParams extends the leases Owner holds on IDs.
type RunRenewParams struct {
	Owner string
	IDs   []string
	Until time.Time
}

// RunAudience is who a run targets, resolved by the caller: the lists (any one of them, each
// contact once) and/or the compiled segment filter (nil for none). At least one is set.
type RunAudience struct {
	Lists  []string
	Filter *Filter
	// Cap and CampaignID: leave out contacts that had a message of CampaignID within Cap (or
	// ever, for CapOncePerContact), as recorded by RunQueue.
	CampaignID string
	Cap        FrequencyCap
}

// RunMaterialiseParams copies the next chunk of the audience into the run's recipients.
type RunMaterialiseParams struct {
	RunID    string
	Owner    string // must hold the run's lease (ErrConflict otherwise: nothing changed)
	Audience RunAudience
	Limit    int // contacts considered in this chunk (included or excluded); a driver may consider fewer
	Now      time.Time
}

// RunMaterialiseResult is what one chunk did. Done: the audience is exhausted and the run is
// marked Materialised.
type RunMaterialiseResult struct {
	Added    int
	Excluded ExcludedCounts
	Done     bool
}

// RunRecipient is one recipient of a run, with its contact for pending ones read by RunPending.
type RunRecipient struct {
	RunID     string
	ContactID string
	Email     string
	ListID    string // the audience list the contact is on (the lowest id), "" for a segment alone
	Status    string // a stored recipient state (CampaignRecipient…)
	MessageID string // "" until queued
	Reason    string // why failed, suppressed or unsubscribed
	UpdatedAt time.Time
	Contact   Contact // filled by RunPending
}

// RunPendingParams reads pending recipients by contact id.
type RunPendingParams struct {
	RunID string
	After string // contact id: only those after it
	Limit int
}

// RunQueueItem is the outcome for one pending recipient: its message (Message set), or a
// stored state (Status: unsubscribed, suppressed, failed) with a Reason.
type RunQueueItem struct {
	ContactID string
	Message   *NewMessage // Message.CampaignID and RunID set by the caller
	Status    string
	Reason    string
}

// RunQueueParams stores one chunk's outcomes in one transaction: the messages are inserted
// (as MessagesAccept does, timeline included, with its wake-up of delivery), their recipients
// marked queued, the others given their state; with a frequency cap the contacts' last send of
// the campaign is recorded; Day's count of campaign messages goes up by the messages inserted.
// Only recipients still pending are changed (a repeat is harmless); ErrConflict when Owner no
// longer holds the run's lease or the run is not running (nothing changed).
type RunQueueParams struct {
	RunID      string
	CampaignID string
	Owner      string
	Items      []RunQueueItem
	Day        string // the UTC day "2006-01-02" the messages count against (CampaignDayCount)
	Now        time.Time
}

// RunSetStateParams changes a run's state, only from one of From (ErrConflict otherwise).
// Paused holds the run's messages still queued or deferred (next_attempt_at = HeldUntil);
// running from paused makes them due at Now and sets their expiry to at least Now + TTL;
// cancelled cancels them (with a cancelled event each, as MessageCancel) and every pending
// recipient; finished is set by the caller once RunProgress shows nothing left to do. The
// campaign's state is set to Campaign (with CampaignReasons and NextRunAt) in the same
// transaction when Campaign is not "".
type RunSetStateParams struct {
	ID              string
	From            []string
	To              string
	PauseReasons    []string
	TTL             time.Duration // for running from paused
	Campaign        string
	CampaignReasons []string
	NextRunAt       time.Time
	Now             time.Time
}

// RunProgress is a run's recipients counted by state: the stored states of those without a
// message, and their message's recipient state for the others (every key of
// RecipientStatuses plus pending and unsubscribed, zero ones included).
type RunProgress struct {
	Counts map[string]int
	// InFlight: recipients whose message is scheduled, queued or sending (deferred ones are
	// waiting for a retry and not counted).
	InFlight int
	// Open: recipients pending, plus those whose message is not final yet (scheduled, queued,
	// sending, deferred). A materialised run with Open 0 is finished.
	Open int
}

// RunRecipientListParams pages through a run's recipients by contact id.
type RunRecipientListParams struct {
	RunID  string
	Status string // a stored state, "" for all
	Cursor string // the contact id of the last recipient of the previous page
	Limit  int
}

// Campaigns is the campaigns, runs and recipients store (implemented by every driver; the
// conformance suite has its cases).
type Campaigns interface {
	// CampaignCreate stores a new campaign (every field set by the caller).
	CampaignCreate(ctx context.Context, c Campaign) (Campaign, error)
	// CampaignGet returns one campaign or ErrNotFound.
	CampaignGet(ctx context.Context, id string) (Campaign, error)
	// CampaignList returns one page of campaigns and the next cursor ("" on the last page).
	CampaignList(ctx context.Context, p CampaignListParams) ([]Campaign, string, error)
	// CampaignUpdate replaces the fields of c other than ID, State, PauseReasons, LastRunAt and
	// CreatedAt, only while the campaign's state is one of states (ErrConflict otherwise, with
	// the stored campaign returned); ErrNotFound when none.
	CampaignUpdate(ctx context.Context, c Campaign, states []string) (Campaign, error)
	// CampaignDelete deletes a campaign with its runs and recipients (its messages stay), only
	// while its state is one of states (ErrConflict otherwise); ErrNotFound when none.
	CampaignDelete(ctx context.Context, id string, states []string) error
	// CampaignSetState changes a campaign's state (see CampaignSetStateParams).
	CampaignSetState(ctx context.Context, p CampaignSetStateParams) (Campaign, error)
	// CampaignsDue returns up to limit campaigns in state scheduled whose NextRunAt is at or
	// before now, earliest first.
	CampaignsDue(ctx context.Context, now time.Time, limit int) ([]Campaign, error)
	// CampaignDayCount returns how many campaign messages RunQueue counted against day.
	CampaignDayCount(ctx context.Context, day string) (int, error)

	// RunCreate starts an occurrence (see RunCreateParams).
	RunCreate(ctx context.Context, p RunCreateParams) (Run, error)
	// RunGet returns one run or ErrNotFound.
	RunGet(ctx context.Context, id string) (Run, error)
	// RunList returns a campaign's runs, newest scheduled time first (at most limit).
	RunList(ctx context.Context, campaignID string, limit int) ([]Run, error)
	// RunClaim leases runs (see RunClaimParams), oldest started first.
	RunClaim(ctx context.Context, p RunClaimParams) ([]Run, error)
	// RunRenewLeases extends leases still held and returns how many were.
	RunRenewLeases(ctx context.Context, p RunRenewParams) (int, error)
	// RunReleaseLeases ends the leases whose owner begins with owner, compared byte for byte
	// (every lease when owner is ""), so another node (or this one restarted) takes the runs
	// over at once: a node passes its own owner name at shutdown, and its node id and "/" at
	// start on PostgreSQL to take back what its previous run held.
	RunReleaseLeases(ctx context.Context, owner string) (int, error)
	// RunMaterialise copies the next chunk of the audience (see RunMaterialiseParams).
	RunMaterialise(ctx context.Context, p RunMaterialiseParams) (RunMaterialiseResult, error)
	// RunPending returns pending recipients with their contacts, by contact id.
	RunPending(ctx context.Context, p RunPendingParams) ([]RunRecipient, error)
	// RunQueue stores one chunk's outcomes (see RunQueueParams).
	RunQueue(ctx context.Context, p RunQueueParams) error
	// RunSetState changes a run's state (see RunSetStateParams) and returns the run after it.
	// Reports message.cancelled for each recipient of the messages a cancel cancels, and
	// campaign.run_finished (with the run's RunProgress counts) when the run becomes finished
	// (webhooks area).
	RunSetState(ctx context.Context, p RunSetStateParams) (Run, error)
	// RunInFlight counts the run's messages scheduled, queued or sending (RunProgress.InFlight)
	// at a cost that follows that number, not the run's size: the runner asks each time its
	// window fills.
	RunInFlight(ctx context.Context, runID string) (int, error)
	// RunProgress counts a run's recipients (see RunProgress).
	RunProgress(ctx context.Context, runID string) (RunProgress, error)
	// RunRecipients returns one page of a run's recipients (Contact not filled) and the next
	// cursor.
	RunRecipients(ctx context.Context, p RunRecipientListParams) ([]RunRecipient, string, error)
}
