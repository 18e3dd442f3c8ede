package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/audience/dbsync"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// Source defaults and bounds (docs/api.md, "Sources").
const (
	defaultSourceInterval  = 5 * time.Minute
	defaultSourceOverlap   = 5 * time.Minute
	defaultSourceReconcile = 24 * time.Hour
	minSourceInterval      = 10 * time.Second
	maxSourceOverlap       = 7 * 24 * time.Hour
	minSourceReconcile     = time.Minute
)

// SourceMappingBody names the columns of a source's SELECT.
type SourceMappingBody struct {
	Email      string   `json:"email,omitempty" doc:"The column holding the address (required)" example:"email"`
	ExternalID string   `json:"external_id,omitempty" doc:"The column holding the user's id in your system, kept as the contact's external_id" example:"id"`
	Name       string   `json:"name,omitempty" doc:"The column holding the person's name"`
	Locale     string   `json:"locale,omitempty" doc:"The column holding a locale tag (en, pt-BR)"`
	Timezone   string   `json:"timezone,omitempty" doc:"The column holding an IANA time zone"`
	UpdatedAt  string   `json:"updated_at,omitempty" doc:"The column holding when the row last changed (required): the high-water mark" example:"updated_at"`
	Key        string   `json:"key,omitempty" doc:"The row's primary key: the mark's tie-breaker and what reconciliation matches (default: external_id's column)" example:"id"`
	OptOut     string   `json:"opt_out,omitempty" doc:"A column that, when true, unsubscribes the contact from every list (it never subscribes)" example:"marketing_opt_out"`
	Deleted    string   `json:"deleted,omitempty" doc:"A column that, when true or set (a deleted_at), deletes the contact" example:"deleted_at"`
	Attributes []string `json:"attributes,omitempty" doc:"Columns copied into the contact's attributes; omitted: every column not mapped above"`
}

// SourceBody is the body of POST /v1/sources and PATCH /v1/sources/{id} (where every field is
// optional).
type SourceBody struct {
	Name           *string            `json:"name,omitempty" doc:"A name for people" example:"app users"`
	Driver         *string            `json:"driver,omitempty" doc:"mysql (MySQL or MariaDB) or postgres" example:"mysql"`
	DSN            *string            `json:"dsn,omitempty" doc:"How to connect, with a read-only user: user:password@tcp(host:3306)/db for mysql, postgres://user:password@host/db for postgres. A secret: stored, never returned nor logged" example:"reader:secret@tcp(db.internal:3306)/app"`
	Query          *string            `json:"query,omitempty" doc:"The SELECT returning one row per user; postie adds the conditions and order around it" example:"SELECT id, email, name, plan, unsubscribed, deleted_at, updated_at FROM users"`
	Mapping        *SourceMappingBody `json:"mapping,omitempty" doc:"Which columns are which contact fields"`
	Lists          *[]string          `json:"lists,omitempty" doc:"Lists the contacts are subscribed to (never re-subscribing one who left)"`
	Interval       *string            `json:"interval,omitempty" doc:"Time between passes, a Go duration (default 5m, at least 10s)" example:"1m"`
	Overlap        *string            `json:"overlap,omitempty" doc:"How far before the mark each pass re-reads, for rows committed late (default 5m; 0s for none)" example:"5m"`
	ReconcileEvery *string            `json:"reconcile_every,omitempty" doc:"Time between full reconciliations, which delete the contacts whose rows are gone (default 24h; 0s: never)" example:"24h"`
	ResetMark      bool               `json:"reset_mark,omitempty" doc:"PATCH only: forget the mark, so that the next pass reads every row"`
}

// SourceMark is a source's high-water mark.
type SourceMark struct {
	UpdatedAt time.Time       `json:"updated_at" doc:"updated_at (UTC) of the last row applied"`
	Key       json.RawMessage `json:"key" doc:"its key"`
}

// SourceResource is a source as the API shows it (never its DSN).
type SourceResource struct {
	ID             string              `json:"id" example:"src_01jd8x3n4k5m6p7q8r9s0t1v2w"`
	Name           string              `json:"name"`
	Driver         string              `json:"driver" enum:"mysql,postgres"`
	Query          string              `json:"query"`
	Mapping        store.SourceMapping `json:"mapping"`
	Lists          []string            `json:"lists"`
	Interval       string              `json:"interval" example:"5m0s"`
	Overlap        string              `json:"overlap" example:"5m0s"`
	ReconcileEvery string              `json:"reconcile_every" doc:"0s: never" example:"24h0m0s"`
	Status         string              `json:"status" enum:"ok,error,running" doc:"running while a node holds it; error: last_error says why, retried with backoff"`
	LastError      string              `json:"last_error,omitempty" doc:"Why the last pass failed"`
	Failures       int                 `json:"failures" doc:"Passes failed in a row"`
	Mark           *SourceMark         `json:"mark" doc:"The high-water mark; null before the first row"`
	LastRun        *store.SourceStats  `json:"last_run" doc:"What the last pass did; null before one ran"`
	LastRunAt      *time.Time          `json:"last_run_at"`
	NextRunAt      time.Time           `json:"next_run_at" doc:"When the next pass is due (a retry's time after an error)"`
	ReconciledAt   *time.Time          `json:"reconciled_at"`
	RunningOn      string              `json:"running_on,omitempty" doc:"The node running it (status running)"`
	CreatedAt      time.Time           `json:"created_at"`
	UpdatedAt      time.Time           `json:"updated_at"`
}

func toSourceResource(src store.Source) SourceResource {
	r := SourceResource{ID: src.ID, Name: src.Name, Driver: src.Driver, Query: src.Query, Mapping: src.Mapping,
		Lists: src.Lists, Interval: src.Interval.String(), Overlap: src.Overlap.String(),
		ReconcileEvery: src.ReconcileEvery.String(), Status: src.Status, LastError: src.LastError,
		Failures: src.Failures, LastRunAt: timePtr(src.LastRunAt), NextRunAt: src.NextRunAt,
		ReconciledAt: timePtr(src.ReconciledAt), CreatedAt: src.CreatedAt, UpdatedAt: src.UpdatedAt}
	if r.Lists == nil {
		r.Lists = []string{}
	}
	if !src.MarkTime.IsZero() {
		r.Mark = &SourceMark{UpdatedAt: src.MarkTime, Key: src.MarkKey}
	}
	if !src.LastRunAt.IsZero() {
		st := src.LastStats
		r.LastRun = &st
	}
	if src.Status == store.SourceRunning {
		r.RunningOn, _, _ = strings.Cut(src.LeaseOwner, "/")
	}
	return r
}

type sourceCreateInput struct {
	Body SourceBody
}

type sourcePatchInput struct {
	ID   string `path:"id" doc:"The source's id"`
	Body SourceBody
}

type sourceIDInput struct {
	ID string `path:"id" doc:"The source's id"`
}

type sourceOutput struct {
	Body SourceResource
}

type sourceListOutput struct {
	Body struct {
		Data []SourceResource `json:"data"`
	}
}

func (s *Server) registerSources() {
	tags := []string{"Sources"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-source", Method: http.MethodPost, Path: "/v1/sources", Tags: tags,
		Summary: "Sync contacts from an application database",
		Description: "Stores a source: a MySQL/MariaDB or PostgreSQL DSN and a SELECT, read every interval into " +
			"contacts. Nothing connects until the first pass; its outcome is the source's status.",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.sourceCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-sources", Method: http.MethodGet, Path: "/v1/sources", Tags: tags,
		Summary: "List sync sources", Errors: []int{401},
	}, s.sourceList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-source", Method: http.MethodGet, Path: "/v1/sources/{id}", Tags: tags,
		Summary: "Get a sync source with its status, mark and last error", Errors: []int{401, 404},
	}, s.sourceGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-source", Method: http.MethodPatch, Path: "/v1/sources/{id}", Tags: tags,
		Summary: "Change a sync source", Description: "Fields left out keep their value; the DSN is kept unless given.",
		Errors: []int{400, 401, 404, 422},
	}, s.sourcePatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-source", Method: http.MethodDelete, Path: "/v1/sources/{id}", Tags: tags,
		Summary: "Delete a sync source", Description: "The contacts it wrote stay.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, s.sourceDelete)
	huma.Register(s.api, huma.Operation{
		OperationID: "run-source", Method: http.MethodPost, Path: "/v1/sources/{id}/run", Tags: tags,
		Summary: "Run a pass soon", Description: "Makes the source due now: the next node to look (within seconds) runs a pass.",
		DefaultStatus: http.StatusAccepted, Errors: []int{401, 404},
	}, s.sourceRun)
}

// applySourceBody applies b to src (a new source when create), checking every field; problems
// are added to p. A DSN's problems never quote it.
func applySourceBody(p *problem, src *store.Source, b SourceBody, create bool) {
	str := func(field string, v *string, dst *string, max int) {
		switch {
		case v == nil && create:
			p.add(field, "is required", nil)
		case v == nil:
		case strings.TrimSpace(*v) == "":
			p.add(field, "must not be empty", *v)
		case len(*v) > max:
			p.add(field, "is too long", nil)
		default:
			*dst = strings.TrimSpace(*v)
		}
	}
	oldDriver := src.Driver
	str("name", b.Name, &src.Name, 200)
	if b.Driver != nil && *b.Driver != store.SourceMySQL && *b.Driver != store.SourcePostgres {
		p.add("driver", "must be mysql or postgres", *b.Driver)
	} else {
		str("driver", b.Driver, &src.Driver, 20)
	}
	src.DSN = "" // kept by SourceUpdate unless given
	if b.DSN == nil && create {
		p.add("dsn", "is required", nil)
	} else if b.DSN != nil {
		if *b.DSN == "" || len(*b.DSN) > 4096 {
			p.add("dsn", "must be a DSN of at most 4096 octets", nil)
		} else {
			src.DSN = *b.DSN
		}
	}
	if b.Driver != nil && b.DSN == nil && !create && *b.Driver != oldDriver {
		p.add("dsn", "is required when the driver changes", nil)
	}
	if src.DSN != "" && src.Driver != "" {
		if err := dbsync.CheckDSN(src.Driver, src.DSN); err != nil {
			p.add("dsn", err.Error(), nil)
		}
	}
	if b.Query != nil {
		if err := dbsync.CheckQuery(*b.Query); err != nil {
			p.add("query", err.Error(), *b.Query)
		} else if len(*b.Query) > 64<<10 {
			p.add("query", "is over 64 KB", nil)
		} else {
			src.Query = strings.TrimSpace(*b.Query)
		}
	} else if create {
		p.add("query", "is required", nil)
	}
	if m := b.Mapping; m != nil {
		mp := store.SourceMapping(*m)
		if mp.Key == "" {
			mp.Key = mp.ExternalID
		}
		for _, f := range []struct{ name, v string }{{"email", mp.Email}, {"updated_at", mp.UpdatedAt}, {"key", mp.Key}} {
			if f.v == "" {
				msg := "is required"
				if f.name == "key" {
					msg = "is required (the row's primary key) when external_id is not mapped"
				}
				p.add("mapping."+f.name, msg, nil)
			}
		}
		if mp.Attributes != nil && len(mp.Attributes) == 0 {
			mp.Attributes = nil
		}
		src.Mapping = mp
	} else if create {
		p.add("mapping", "is required", nil)
	}
	if b.Lists != nil {
		src.Lists = slices.Compact(slices.Sorted(slices.Values(*b.Lists)))
		if len(src.Lists) == 0 {
			src.Lists = nil
		}
	}
	dur := func(field string, v *string, dst *time.Duration, def, min, max time.Duration, zeroOK bool) {
		if v == nil {
			if create {
				*dst = def
			}
			return
		}
		d, err := time.ParseDuration(*v)
		switch {
		case err != nil:
			p.add(field, "must be a duration such as 90s, 5m or 24h", *v)
		case d == 0 && zeroOK:
			*dst = 0
		case d < min || d > max:
			p.add(field, "must be between "+min.String()+" and "+max.String(), *v)
		default:
			*dst = d
		}
	}
	dur("interval", b.Interval, &src.Interval, defaultSourceInterval, minSourceInterval, 7*24*time.Hour, false)
	dur("overlap", b.Overlap, &src.Overlap, defaultSourceOverlap, time.Second, maxSourceOverlap, true)
	dur("reconcile_every", b.ReconcileEvery, &src.ReconcileEvery, defaultSourceReconcile, minSourceReconcile, 365*24*time.Hour, true)
}

func (s *Server) sourceCreate(ctx context.Context, in *sourceCreateInput) (*sourceOutput, error) {
	now := s.cfg.Now().UTC()
	p := &problem{prefix: "body"}
	if in.Body.ResetMark {
		p.add("reset_mark", "applies to PATCH only", true)
	}
	src := store.Source{ID: id.New(id.Source), CreatedAt: now, NextRunAt: now}
	applySourceBody(p, &src, in.Body, true)
	if err := p.err(); err != nil {
		return nil, err
	}
	if err := s.checkSourceLists(ctx, src.Lists); err != nil {
		return nil, err
	}
	got, err := s.cfg.Store.SourceCreate(ctx, src)
	if err != nil {
		return nil, s.storeError(err, "source")
	}
	return &sourceOutput{Body: toSourceResource(got)}, nil
}

// checkSourceLists is the 422 of lists that do not exist.
func (s *Server) checkSourceLists(ctx context.Context, lists []string) error {
	p := &problem{prefix: "body"}
	for i, l := range lists {
		if _, err := s.cfg.Store.ListGet(ctx, l); errors.Is(err, store.ErrNotFound) {
			p.add("lists["+strconv.Itoa(i)+"]", "no such list", l)
		} else if err != nil {
			return s.storeError(err, "list "+l)
		}
	}
	return p.err()
}

func (s *Server) sourceGet(ctx context.Context, in *sourceIDInput) (*sourceOutput, error) {
	src, err := s.cfg.Store.SourceGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "source "+in.ID)
	}
	return &sourceOutput{Body: toSourceResource(src)}, nil
}

func (s *Server) sourceList(ctx context.Context, _ *struct{}) (*sourceListOutput, error) {
	srcs, err := s.cfg.Store.SourceList(ctx)
	if err != nil {
		return nil, s.storeError(err, "sources")
	}
	out := &sourceListOutput{}
	out.Body.Data = make([]SourceResource, len(srcs))
	for i, src := range srcs {
		out.Body.Data[i] = toSourceResource(src)
	}
	return out, nil
}

func (s *Server) sourcePatch(ctx context.Context, in *sourcePatchInput) (*sourceOutput, error) {
	now := s.cfg.Now().UTC()
	src, err := s.cfg.Store.SourceGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "source "+in.ID)
	}
	p := &problem{prefix: "body"}
	applySourceBody(p, &src, in.Body, false)
	if err := p.err(); err != nil {
		return nil, err
	}
	if err := s.checkSourceLists(ctx, src.Lists); err != nil {
		return nil, err
	}
	got, err := s.cfg.Store.SourceUpdate(ctx, store.SourceUpdateParams{Source: src, ResetMark: in.Body.ResetMark, Now: now})
	if err != nil {
		return nil, s.storeError(err, "source "+in.ID)
	}
	return &sourceOutput{Body: toSourceResource(got)}, nil
}

func (s *Server) sourceDelete(ctx context.Context, in *sourceIDInput) (*struct{}, error) {
	if err := s.cfg.Store.SourceDelete(ctx, in.ID); err != nil {
		return nil, s.storeError(err, "source "+in.ID)
	}
	return nil, nil
}

func (s *Server) sourceRun(ctx context.Context, in *sourceIDInput) (*sourceOutput, error) {
	now := s.cfg.Now().UTC()
	src, err := s.cfg.Store.SourceGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "source "+in.ID)
	}
	src.DSN = "" // kept
	got, err := s.cfg.Store.SourceUpdate(ctx, store.SourceUpdateParams{Source: src, NextRunAt: now, Now: now})
	if err != nil {
		return nil, s.storeError(err, "source "+in.ID)
	}
	return &sourceOutput{Body: toSourceResource(got)}, nil
}
