package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/postie/postie/internal/audience/imports"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// ImportResource is a CSV import as the API shows it.
type ImportResource struct {
	ID        string            `json:"id" example:"imp_01jd8x5k2m3n4p5q6r7s8t9v0w"`
	Status    string            `json:"status" enum:"queued,running,done,failed" doc:"done: every row was read (bad rows are counted in counts.failed); failed: stopped before the end, see reason"`
	Mode      string            `json:"mode" enum:"upsert,create_only"`
	Lists     []string          `json:"lists" doc:"Lists every row is subscribed to (never re-subscribing who left)"`
	Mapping   map[string]string `json:"mapping" doc:"The mapping applied: column → field or attributes.NAME (ignored columns left out)"`
	Filename  string            `json:"filename,omitempty" doc:"The uploaded file's name (multipart)"`
	TotalRows int               `json:"total_rows" doc:"Data rows in the file (the header excluded)"`
	Counts    ImportCounts      `json:"counts"`
	Errors    []ImportRowError  `json:"errors" doc:"The first 100 bad rows"`
	Reason    string            `json:"reason,omitempty" doc:"Why the import failed"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// StartedAt and FinishedAt are null until then.
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// ImportCounts are an import's row counts so far.
type ImportCounts struct {
	Rows    int `json:"rows" doc:"Data rows read"`
	Created int `json:"created" doc:"New contacts"`
	Updated int `json:"updated" doc:"Existing contacts changed"`
	Merged  int `json:"merged" doc:"Existing contacts whose address differed only in case"`
	Skipped int `json:"skipped" doc:"Existing contacts left as they were (create_only, or nothing differed)"`
	Failed  int `json:"failed" doc:"Bad rows, not applied"`
	Kept    int `json:"kept" doc:"Rows whose contact had unsubscribed from a list and was not subscribed again"`
}

// ImportRowError is one bad row.
type ImportRowError struct {
	Row    int    `json:"row" doc:"Row number in the file; the header is row 1"`
	Field  string `json:"field,omitempty" doc:"The field or attributes.NAME at fault; absent for the whole row"`
	Reason string `json:"reason"`
}

func toImportResource(imp store.Import) ImportResource {
	r := ImportResource{ID: imp.ID, Status: imp.Status, Mode: imp.Mode, Lists: imp.Lists, Mapping: imp.Mapping,
		Filename: imp.Filename, TotalRows: imp.TotalRows, Counts: ImportCounts(imp.Counts), Reason: imp.Reason,
		CreatedAt: imp.CreatedAt, UpdatedAt: imp.UpdatedAt, StartedAt: timePtr(imp.StartedAt),
		FinishedAt: timePtr(imp.FinishedAt), Errors: make([]ImportRowError, len(imp.Errors))}
	if r.Lists == nil {
		r.Lists = []string{}
	}
	for i, e := range imp.Errors {
		r.Errors[i] = ImportRowError(e)
	}
	return r
}

// ImportOptions are the options of an import, as query parameters or as the JSON part
// "options" of a multipart upload.
type ImportOptions struct {
	Mode    string            `json:"mode,omitempty" doc:"upsert (default) or create_only"`
	Lists   []string          `json:"lists,omitempty" doc:"List ids to subscribe every row to"`
	Mapping map[string]string `json:"mapping,omitempty" doc:"column → field (email, external_id, name, locale, timezone, last_active_at), attributes.NAME, or \"\" to ignore the column"`
}

// importCreateInput takes the body as a stream: it has no Body field, so huma does not read it.
type importCreateInput struct {
	Mode        string `query:"mode" doc:"upsert (default): create or update contacts; create_only: leave existing contacts as they are"`
	Lists       string `query:"lists" doc:"Comma-separated list ids to subscribe every row to"`
	Mapping     string `query:"mapping" doc:"A JSON object column → field or attributes.NAME (\"\" ignores the column)"`
	ContentType string `header:"Content-Type" doc:"text/csv, or multipart/form-data with a part file (the CSV) and optionally a part options (JSON)"`

	body io.Reader
	w    http.ResponseWriter
}

func (in *importCreateInput) Resolve(ctx huma.Context) []error {
	in.body = ctx.BodyReader()
	_, in.w = humago.Unwrap(ctx)
	return nil
}

type importOutput struct {
	Body ImportResource
}

type importIDInput struct {
	ID string `path:"id" doc:"The import's id (imp_…)"`
}

type importListInput struct {
	Status string `query:"status" enum:"queued,running,done,failed," doc:"Only imports in this state"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

// Resolve checks the cursor: the id of an import.
func (in *importListInput) Resolve(huma.Context) []error {
	if _, err := store.ImportCursorAfter(in.Cursor); err != nil {
		return badCursor()
	}
	return nil
}

// maxOptionsPart bounds the JSON options part of a multipart upload.
const maxOptionsPart = 64 << 10

func (s *Server) registerImports() {
	tags := []string{"Imports"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-import", Method: http.MethodPost, Path: "/v1/imports", Tags: tags,
		Summary: "Import contacts from a CSV file",
		Description: "The upload is checked and stored on disk (any size, constant memory), then imported in the " +
			"background; the answer is 202 with the import, to poll at /v1/imports/{id}. The header row names the " +
			"columns: email, external_id, name, locale, timezone and last_active_at by name (any case), others " +
			"become attributes, unless mapped. An upload that is not UTF-8 CSV, has no email column or more rows " +
			"than the limit is refused and nothing is stored; bad rows are counted and reported, and the import goes on.",
		DefaultStatus: http.StatusAccepted, MaxBodyBytes: -1, SkipValidateBody: true,
		Errors: []int{400, 401, 413, 415, 422},
	}, s.importCreate)
	// The body is documented only in the document: an operation registered with a request
	// body schema would have huma read the body, which the handler streams itself.
	s.api.OpenAPI().Paths["/v1/imports"].Post.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
		"text/csv": {Schema: &huma.Schema{Type: "string", Description: "UTF-8 CSV (a BOM is allowed) with a header row"}},
		"multipart/form-data": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
			"file":    {Type: "string", Description: "the CSV"},
			"options": {Type: "string", Description: "JSON: {\"mode\", \"lists\", \"mapping\"}; overrides the query parameters"},
		}, Required: []string{"file"}}, Encoding: map[string]*huma.Encoding{
			"file": {ContentType: "text/csv"}, "options": {ContentType: "application/json"}}},
	}}
	huma.Register(s.api, huma.Operation{
		OperationID: "list-imports", Method: http.MethodGet, Path: "/v1/imports", Tags: tags,
		Summary: "List imports, newest first", Errors: []int{401, 422},
	}, s.importList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-import", Method: http.MethodGet, Path: "/v1/imports/{id}", Tags: tags,
		Summary: "Get an import with its counts and first bad rows", Errors: []int{401, 404},
	}, s.importGet)
}

func (s *Server) importCreate(ctx context.Context, in *importCreateInput) (*importOutput, error) {
	if s.cfg.Imports == nil {
		return nil, huma.Error503ServiceUnavailable("imports are not configured on this server")
	}
	// An upload may take longer than the server's write timeout, which runs from the end of the
	// request headers: the deadline is set again once it is read.
	rc := http.NewResponseController(in.w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	defer func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) }()

	opts, err := queryImportOptions(in)
	if err != nil {
		return nil, err
	}
	optPrefix, filePrefix := "query.", "body"
	var up *imports.Upload
	defer func() { up.Discard() }() // a no-op once started (the file is renamed)
	media, params, _ := mime.ParseMediaType(in.ContentType)
	switch media {
	case "text/csv", "application/csv", "text/plain":
		if err := s.cfg.Imports.CheckOptions(ctx, &opts); err != nil {
			return nil, s.importError(err, optPrefix, filePrefix)
		}
		if up, err = s.cfg.Imports.Spool(ctx, in.body); err != nil {
			return nil, s.importError(err, optPrefix, filePrefix)
		}
	case "multipart/form-data":
		filePrefix = "body.file"
		if up, optPrefix, err = s.importMultipart(ctx, in.body, params["boundary"], &opts); err != nil {
			return nil, err
		}
	default:
		return nil, huma.NewError(http.StatusUnsupportedMediaType, "send the CSV as text/csv, or as the part file of multipart/form-data",
			&huma.ErrorDetail{Location: "header.Content-Type", Message: "must be text/csv or multipart/form-data", Value: in.ContentType})
	}
	imp, err := s.cfg.Imports.Start(ctx, up, opts)
	if err != nil {
		return nil, s.importError(err, optPrefix, filePrefix)
	}
	return &importOutput{Body: toImportResource(imp)}, nil
}

// queryImportOptions reads the options given as query parameters.
func queryImportOptions(in *importCreateInput) (imports.Options, error) {
	o := imports.Options{Mode: in.Mode}
	if in.Lists != "" {
		for l := range strings.SplitSeq(in.Lists, ",") {
			o.Lists = append(o.Lists, strings.TrimSpace(l))
		}
	}
	if in.Mapping != "" {
		if err := json.Unmarshal([]byte(in.Mapping), &o.Mapping); err != nil {
			return o, huma.Error422UnprocessableEntity("query.mapping: not a JSON object of strings",
				&huma.ErrorDetail{Location: "query.mapping", Message: "must be a JSON object column → field, e.g. {\"E-mail\":\"email\"}", Value: in.Mapping})
		}
	}
	return o, nil
}

// importMultipart reads a multipart upload part by part: the file part is spooled as it
// streams in, the options part (JSON, before or after it) overrides the query's options.
func (s *Server) importMultipart(ctx context.Context, body io.Reader, boundary string, opts *imports.Options) (*imports.Upload, string, error) {
	malformed := func(loc, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return huma.Error400BadRequest(loc+": "+msg, &huma.ErrorDetail{Location: loc, Message: msg})
	}
	if boundary == "" {
		return nil, "", malformed("header.Content-Type", "multipart/form-data without a boundary")
	}
	var (
		up        *imports.Upload
		optPrefix = "query."
		mr        = multipart.NewReader(body, boundary)
	)
	fail := func(err error) (*imports.Upload, string, error) {
		up.Discard()
		return nil, "", err
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(malformed("body", "not multipart/form-data: %v", err))
		}
		switch part.FormName() {
		case "file":
			if up != nil {
				return fail(malformed("body.file", "more than one part named file"))
			}
			if up, err = s.cfg.Imports.Spool(ctx, part); err != nil {
				return fail(s.importError(err, optPrefix, "body.file"))
			}
			up.Filename = part.FileName()
		case "options":
			b, err := io.ReadAll(io.LimitReader(part, maxOptionsPart+1))
			if err != nil {
				return fail(malformed("body", "reading the options part: %v", err))
			}
			var o ImportOptions
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if len(b) > maxOptionsPart || dec.Decode(&o) != nil {
				return fail(huma.Error422UnprocessableEntity("body.options: not a JSON object {mode, lists, mapping}",
					&huma.ErrorDetail{Location: "body.options", Message: "must be a JSON object with mode, lists and mapping (at most 64 KB)"}))
			}
			optPrefix = "body.options."
			if o.Mode != "" {
				opts.Mode = o.Mode
			}
			if o.Lists != nil {
				opts.Lists = o.Lists
			}
			if o.Mapping != nil {
				opts.Mapping = o.Mapping
			}
		default:
			return fail(malformed("body."+part.FormName(), "unknown part: send file and, optionally, options"))
		}
	}
	if up == nil {
		return nil, "", huma.Error422UnprocessableEntity("body.file: missing",
			&huma.ErrorDetail{Location: "body.file", Message: "the CSV goes in a part named file"})
	}
	opts.Filename = up.Filename
	return up, optPrefix, nil
}

// importError maps an import problem to its 4xx, located at the option (optPrefix + field) or
// the file (filePrefix); other errors are the store's.
func (s *Server) importError(err error, optPrefix, filePrefix string) error {
	var p *imports.Problem
	if !errors.As(err, &p) {
		return s.storeError(err, "import")
	}
	loc := optPrefix + p.Field
	if p.Field == "file" {
		loc = filePrefix
	}
	status := http.StatusUnprocessableEntity
	switch p.Kind {
	case imports.KindMalformed:
		status = http.StatusBadRequest
	case imports.KindTooLarge:
		status = http.StatusRequestEntityTooLarge
	}
	return huma.NewError(status, loc+": "+p.Message, &huma.ErrorDetail{Location: loc, Message: p.Message})
}

func (s *Server) importGet(ctx context.Context, in *importIDInput) (*importOutput, error) {
	if !id.Valid(id.Import, in.ID) {
		return nil, huma.Error404NotFound("import " + in.ID + " not found")
	}
	imp, err := s.cfg.Store.ImportGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "import "+in.ID)
	}
	return &importOutput{Body: toImportResource(imp)}, nil
}

func (s *Server) importList(ctx context.Context, in *importListInput) (*pageOutput[ImportResource], error) {
	page, next, err := s.cfg.Store.ImportList(ctx, store.ImportListParams{Status: in.Status, Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.storeError(err, "imports")
	}
	out := &pageOutput[ImportResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]ImportResource, len(page))
	for i, imp := range page {
		out.Body.Data[i] = toImportResource(imp)
	}
	return out, nil
}
