package store

import (
	"context"
	"fmt"
	"time"

	"github.com/postie/postie/internal/id"
)

// The imports area: CSV imports of contacts as durable jobs (DESIGN §9). The upload is spooled
// to a file on the node that received it; the import row is the job, run by one worker at a time
// under a lease (lease_owner, lease_until), as a message row is. The worker reads the spool in
// chunks, applies each with Audience.ContactsUpsert (idempotent), and saves its progress (the
// spool offset of the next row, the counts, the first bad rows) after each chunk, so a restart
// resumes after the last saved chunk. A worker that takes over an import whose spool file it
// does not have (another node's disk) finishes it as failed with its counts and a reason.

// Import states.
const (
	ImportQueued  = "queued"  // stored, not yet started
	ImportRunning = "running" // a worker has started it (and may have died: see the lease)
	ImportDone    = "done"    // every row read; bad rows are counted in Counts.Failed
	ImportFailed  = "failed"  // stopped before the end (Reason says why); the rows before stay applied
)

// Import modes.
const (
	ImportUpsert     = "upsert"      // create new contacts and update existing ones
	ImportCreateOnly = "create_only" // create new contacts; existing ones are left as they are (skipped)
)

// ImportMaxErrors is how many bad rows an import keeps (the first ones); the others are counted.
const ImportMaxErrors = 100

// ImportCounts are an import's row counts. Rows = Created + Updated + Merged + Skipped + Failed
// once the rows read have been applied.
type ImportCounts struct {
	Rows    int `json:"rows"`    // data rows read (the header excluded)
	Created int `json:"created"` // new contacts
	Updated int `json:"updated"` // existing contacts changed
	Merged  int `json:"merged"`  // existing contacts whose email differed only in case
	Skipped int `json:"skipped"` // existing contacts left unchanged (create_only, or nothing differed)
	Failed  int `json:"failed"`  // bad rows, not applied
	// Kept counts subscriptions left unsubscribed because the contact had left the list (the
	// row itself is applied and counted above).
	Kept int `json:"kept"`
}

// ImportRowError is one bad row: its number in the file (the header is row 1) and why.
type ImportRowError struct {
	Row    int    `json:"row"`
	Field  string `json:"field,omitempty"` // the contact field or attributes.name, "" for the whole row
	Reason string `json:"reason"`
}

// Import is one CSV import.
type Import struct {
	ID      string
	Status  string // ImportQueued, ImportRunning, ImportDone, ImportFailed
	Mode    string // ImportUpsert or ImportCreateOnly
	Lists   []string
	Mapping map[string]string // column name → contact field or attributes.NAME, as applied
	// Filename is the uploaded file's name ("" for a plain CSV body); Node is the node whose
	// disk holds the spool; TotalRows the data rows counted while spooling.
	Filename  string
	Node      string
	TotalRows int
	Counts    ImportCounts
	Errors    []ImportRowError // the first ImportMaxErrors bad rows, by row
	// Offset is the spool's byte offset of the next row to read, Row that row's number minus
	// one (rows consumed, header included): where a resumed worker starts.
	Offset     int64
	Row        int
	Reason     string // why it failed, "" otherwise
	LeaseOwner string
	LeaseUntil time.Time // zero when not leased
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  time.Time // zero until a worker starts it
	FinishedAt time.Time // zero until done or failed
}

// ImportClaimParams claims one import for Owner until LeaseUntil.
type ImportClaimParams struct {
	Owner      string
	Now        time.Time
	LeaseUntil time.Time
}

// ImportProgressParams records how far Owner's worker has come: the new totals (not
// increments), replacing the stored ones, and the lease extended to LeaseUntil. ImportFinish
// takes the same params with Status (ImportDone or ImportFailed) and Reason.
type ImportProgressParams struct {
	ID         string
	Owner      string
	Offset     int64
	Row        int
	Counts     ImportCounts
	Errors     []ImportRowError // all kept so far (at most ImportMaxErrors are stored)
	Status     string           // ImportFinish only
	Reason     string           // ImportFinish only
	Now        time.Time
	LeaseUntil time.Time // ImportProgress only
}

// ImportListParams pages through imports, newest first.
type ImportListParams struct {
	Status string // only imports in this state; "" for all
	Cursor string // the next cursor ImportList returned; ErrBadCursor when malformed
	Limit  int
}

// ImportReleaseParams hands back import leases at once: those of Owner, or of the owners
// beginning with OwnerPrefix when it is set, or with both "" every lease (a SQLite node at
// start: it is alone).
type ImportReleaseParams struct {
	Owner       string
	OwnerPrefix string
	Now         time.Time
}

// ImportRenewParams extends to Until the leases Owner holds on unfinished imports.
type ImportRenewParams struct {
	Owner string
	Now   time.Time
	Until time.Time
}

// Imports is the import jobs store (implemented by every driver; conformance cases in
// storetest/imports.go).
type Imports interface {
	// ImportCreate stores a new import (ID, Mode, Lists, Mapping, Filename, Node, TotalRows and
	// CreatedAt set by the caller) as queued, leased to LeaseOwner until LeaseUntil so that the
	// node holding its spool runs it, and returns it.
	ImportCreate(ctx context.Context, imp Import) (Import, error)
	// ImportGet returns one import or ErrNotFound.
	ImportGet(ctx context.Context, id string) (Import, error)
	// ImportList returns one page of imports, newest first, and the next cursor ("" on the last
	// page). Limit defaults to 50, capped at 1000.
	ImportList(ctx context.Context, p ImportListParams) ([]Import, string, error)
	// ImportClaim leases to p.Owner the oldest import that is queued or running and either
	// already leased to p.Owner or whose lease ended before p.Now (its worker died), sets it
	// running (StartedAt at the first claim) and returns it; ok is false when there is none.
	// Concurrent claimers never get the same import.
	ImportClaim(ctx context.Context, p ImportClaimParams) (imp Import, ok bool, err error)
	// ImportProgress saves a running import's progress and extends its lease, only while
	// p.Owner holds it (ErrConflict otherwise; ErrNotFound for no such import).
	ImportProgress(ctx context.Context, p ImportProgressParams) error
	// ImportFinish sets a running import done or failed with its final progress, clears its
	// lease and stamps FinishedAt, only while p.Owner holds it (ErrConflict otherwise).
	ImportFinish(ctx context.Context, p ImportProgressParams) error
	// ImportRenewLeases extends every lease p.Owner holds on a queued or running import (a
	// node's worker keeps the imports whose spool it holds, queued ones included) and returns
	// how many.
	ImportRenewLeases(ctx context.Context, p ImportRenewParams) (int, error)
	// ImportReleaseLeases ends the leases p names at p.Now (so any worker may claim them) and
	// returns how many.
	ImportReleaseLeases(ctx context.Context, p ImportReleaseParams) (int, error)
}

// ImportCursorAfter checks an ImportList cursor: the id of the previous page's last import ("" for
// the first page).
func ImportCursorAfter(cursor string) (string, error) {
	if cursor == "" || id.Valid(id.Import, cursor) {
		return cursor, nil
	}
	return "", fmt.Errorf("import cursor %q: %w", cursor, ErrBadCursor)
}
