package store

import (
	"context"
	"encoding/json"
	"time"
)

// The sync sources area: application databases whose users postie keeps as contacts (DESIGN §9,
// package audience/dbsync). A source is a DSN and a SELECT the operator writes; each pass reads
// the rows changed since the source's high-water mark and upserts them as contacts through
// Audience.ContactsUpsert. The store keeps the source's configuration, its mark, its schedule
// and status, a lease (so one node runs a source at a time), and the links from the source's
// rows to the contacts they became (what a reconciliation deletes when the rows are gone).

// Source drivers.
const (
	SourceMySQL    = "mysql"    // MySQL or MariaDB (go-sql-driver/mysql DSN)
	SourcePostgres = "postgres" // PostgreSQL (postgres:// URL or key=value DSN)
)

// Source states.
const (
	SourceOK      = "ok"      // the last pass succeeded (or none ran yet)
	SourceError   = "error"   // the last pass failed: LastError says why; retried with backoff
	SourceRunning = "running" // a node holds the lease and is running a pass
)

// SourceMapping names the columns of the source's SELECT. Email, UpdatedAt and Key are
// required; the others are optional ("" when not mapped). Attributes lists the columns copied
// into the contact's attributes; nil means every column not mapped to a field.
type SourceMapping struct {
	Email      string   `json:"email"`
	ExternalID string   `json:"external_id,omitempty"`
	Name       string   `json:"name,omitempty"`
	Locale     string   `json:"locale,omitempty"`
	Timezone   string   `json:"timezone,omitempty"`
	UpdatedAt  string   `json:"updated_at"`
	Key        string   `json:"key"`               // the primary key: the mark's tie-breaker and the row's identity
	OptOut     string   `json:"opt_out,omitempty"` // true: unsubscribed from every list, never subscribed
	Deleted    string   `json:"deleted,omitempty"` // true: the contact is deleted
	Attributes []string `json:"attributes,omitempty"`
}

// SourceStats counts what one pass did.
type SourceStats struct {
	Rows       int      `json:"rows"`                  // rows read
	Upserted   int      `json:"upserted"`              // contacts created or updated
	Deleted    int      `json:"deleted"`               // contacts deleted (deleted column or reconciliation)
	Skipped    int      `json:"skipped"`               // rows not applied (bad email, conflict)
	SkipErrors []string `json:"skip_errors,omitempty"` // the first few reasons, with the row's key
	Reconciled bool     `json:"reconciled,omitempty"`  // the pass ended with a full reconciliation
}

// Source is one configured application database.
type Source struct {
	ID     string // src_…
	Name   string
	Driver string // SourceMySQL or SourcePostgres
	// DSN is a secret (it holds a password): stored, never shown by the API nor logged.
	DSN     string
	Query   string // the operator's SELECT
	Mapping SourceMapping
	Lists   []string // lists new and existing contacts are subscribed to (never re-subscribing)

	Interval       time.Duration // between passes
	Overlap        time.Duration // re-read before the mark at each pass, for rows committed late
	ReconcileEvery time.Duration // between full reconciliations; 0: never

	// The high-water mark: the updated_at (UTC) and the key (a JSON value: number or string) of
	// the last row applied. Zero MarkTime: nothing read yet.
	MarkTime time.Time
	MarkKey  json.RawMessage
	// SettledAt: every row with an updated_at before it was committed when the last complete
	// pass began (that pass's start, by the source database's clock, minus the overlap), so a
	// pass need not re-read before it. Zero: unknown.
	SettledAt time.Time

	Status       string
	LastError    string
	LastRunAt    time.Time // when the last pass ended
	NextRunAt    time.Time // when the next pass is due
	ReconciledAt time.Time // when the last full reconciliation ended
	Failures     int       // passes failed in a row (the backoff's exponent)
	LastStats    SourceStats

	LeaseOwner string
	LeaseUntil time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// SourceUpdateParams replaces a source's configuration (Name … ReconcileEvery of Source; DSN
// only when not ""). ResetMark forgets the mark (and SettledAt), so the next pass reads every row. NextRunAt,
// when not zero, reschedules the source.
type SourceUpdateParams struct {
	Source    Source
	ResetMark bool
	NextRunAt time.Time
	Now       time.Time
}

// SourceClaimParams leases sources to run: every due one (NextRunAt <= Now), or only ID
// whatever its schedule. A source leased by another owner until after Now is not claimed.
type SourceClaimParams struct {
	ID    string // "" for every due source
	Owner string
	Now   time.Time
	Until time.Time // the lease's end
	Limit int       // at most this many (0: 10)
}

// SourceLink ties a row of a source (its key, as text) to the contact it became.
type SourceLink struct {
	Key       string
	ContactID string
}

// SourceAdvanceParams records one applied chunk: the new mark and links, in one transaction,
// and extends the lease to Until. ErrConflict when Owner no longer holds the lease.
type SourceAdvanceParams struct {
	ID       string
	Owner    string
	MarkTime time.Time
	MarkKey  json.RawMessage
	Link     []SourceLink // added or replaced
	Unlink   []string     // keys whose links go (the contact was deleted)
	Until    time.Time
	Now      time.Time
}

// SourceFinishParams ends a pass: status, error, stats and schedule, and releases the lease.
// ErrConflict when Owner no longer holds the lease (nothing is written).
type SourceFinishParams struct {
	ID           string
	Owner        string
	Status       string // SourceOK or SourceError
	LastError    string
	Failures     int
	Stats        SourceStats
	NextRunAt    time.Time
	ReconciledAt time.Time // zero: unchanged
	SettledAt    time.Time // zero: unchanged
	Now          time.Time
}

// Sources is the sync sources store (implemented by every driver; the conformance suite has
// its cases).
type Sources interface {
	// SourceCreate stores a new source (ID, CreatedAt and NextRunAt set by the caller) with
	// status ok and no mark.
	SourceCreate(ctx context.Context, src Source) (Source, error)
	// SourceGet returns one source or ErrNotFound.
	SourceGet(ctx context.Context, id string) (Source, error)
	// SourceList returns every source by id (sources are few).
	SourceList(ctx context.Context) ([]Source, error)
	// SourceUpdate changes a source's configuration (see SourceUpdateParams); ErrNotFound.
	SourceUpdate(ctx context.Context, p SourceUpdateParams) (Source, error)
	// SourceDelete deletes a source and its links (not the contacts); ErrNotFound.
	SourceDelete(ctx context.Context, id string) error
	// SourceClaim leases the sources to run (see SourceClaimParams), sets them running and
	// returns them as claimed. Two nodes never hold one source's lease at once.
	SourceClaim(ctx context.Context, p SourceClaimParams) ([]Source, error)
	// SourceAdvance records a chunk's mark and links (see SourceAdvanceParams).
	SourceAdvance(ctx context.Context, p SourceAdvanceParams) error
	// SourceFinish ends a pass (see SourceFinishParams).
	SourceFinish(ctx context.Context, p SourceFinishParams) error
	// SourceLinks returns up to limit links of a source with keys after after, by key (byte
	// order).
	SourceLinks(ctx context.Context, id, after string, limit int) ([]SourceLink, error)
	// SourceLinkGet returns the link of one key or ErrNotFound.
	SourceLinkGet(ctx context.Context, id, key string) (SourceLink, error)
}
