package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// Segments and the attribute declarations they rely on: /v1/attributes, /v1/segments.

// AttributeResource is a declared attribute.
type AttributeResource struct {
	Name      string    `json:"name" example:"plan"`
	Type      string    `json:"type" enum:"string,number,bool,time"`
	CreatedAt time.Time `json:"created_at"`
}

// AttributeBody is the body of PUT /v1/attributes/{name}.
type AttributeBody struct {
	Type string `json:"type" enum:"string,number,bool,time" doc:"How filters compare the attribute and imports cast it"`

	strict strictBody
}

type attributePutInput struct {
	Name string `path:"name" doc:"The attribute's key in contacts' attributes: 1–64 ASCII letters, digits and underscores, not starting with a digit"`
	Body AttributeBody
}

type attributeNameInput struct {
	Name string `path:"name"`
}

type attributeOutput struct {
	Body AttributeResource
}

type attributeListOutput struct {
	Body struct {
		Data []AttributeResource `json:"data"`
	}
}

// SegmentResource is a saved segment.
type SegmentResource struct {
	ID        string          `json:"id" example:"seg_01jd8x0000000000000000000"`
	Name      string          `json:"name" example:"Inactive pro users"`
	Filter    json.RawMessage `json:"filter" doc:"The filter (see the filter language in docs/api.md)"`
	Count     *int            `json:"count,omitempty" doc:"How many contacts it matches now (GET of one segment only)"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

func toSegmentResource(seg store.Segment) SegmentResource {
	return SegmentResource{ID: seg.ID, Name: seg.Name, Filter: seg.Filter, CreatedAt: seg.CreatedAt, UpdatedAt: seg.UpdatedAt}
}

func toContactResources(cs []store.Contact) []ContactResource {
	out := make([]ContactResource, len(cs))
	for i, c := range cs {
		out[i] = toContactResource(c)
	}
	return out
}

// SegmentBody is the body of POST /v1/segments.
type SegmentBody struct {
	Name   string          `json:"name" minLength:"1" maxLength:"200" doc:"A name, unique among segments"`
	Filter json.RawMessage `json:"filter" doc:"The filter (see the filter language in docs/api.md)"`

	strict strictBody
}

// SegmentPatch is the body of PATCH /v1/segments/{id}: the members given replace.
type SegmentPatch struct {
	Name   *string         `json:"name,omitempty" minLength:"1" maxLength:"200"`
	Filter json.RawMessage `json:"filter,omitempty"`

	strict strictBody
}

// PreviewBody is the body of POST /v1/segments/preview.
type PreviewBody struct {
	Filter json.RawMessage `json:"filter" doc:"The filter to try (see the filter language in docs/api.md)"`
	Limit  *int            `json:"limit,omitempty" minimum:"0" maximum:"100" default:"10" doc:"How many of the first contacts (by id) to return; 0 for the count alone"`

	strict strictBody
}

type segmentCreateInput struct {
	Body SegmentBody
}

type segmentPatchInput struct {
	ID   string `path:"id"`
	Body SegmentPatch
}

type segmentIDInput struct {
	ID string `path:"id"`
}

type segmentContactsInput struct {
	ID     string `path:"id"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

type segmentOutput struct {
	Body SegmentResource
}

type segmentListOutput struct {
	Body struct {
		Data []SegmentResource `json:"data"`
	}
}

type previewInput struct {
	Body PreviewBody
}

type previewOutput struct {
	Body struct {
		Count    int               `json:"count" doc:"How many contacts the filter matches now"`
		Contacts []ContactResource `json:"contacts" doc:"The first of them, by id"`
	}
}

func (s *Server) registerSegments() {
	s.segments = audience.NewSegments(audience.SegmentsConfig{Store: s.cfg.Store, Now: s.cfg.Now,
		ListExists: func(ctx context.Context, listID string) error {
			_, err := s.cfg.Store.ListGet(ctx, listID)
			return err
		}})
	tags := []string{"Segments"}
	huma.Register(s.api, huma.Operation{
		OperationID: "list-attributes", Method: http.MethodGet, Path: "/v1/attributes", Tags: tags,
		Summary: "List declared attributes", Errors: []int{401},
	}, s.attributeList)
	huma.Register(s.api, huma.Operation{
		OperationID: "declare-attribute", Method: http.MethodPut, Path: "/v1/attributes/{name}", Tags: tags,
		Summary: "Declare an attribute's type",
		Description: "Filters may use a contact attribute once its type is declared; imports and syncs cast to it. " +
			"Declaring also indexes the attribute (which reads every contact once). Declaring again with the " +
			"same type changes nothing; with another type it is a 409 (delete it first).",
		Errors: []int{401, 409, 422},
	}, s.attributePut)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-attribute", Method: http.MethodDelete, Path: "/v1/attributes/{name}", Tags: tags,
		Summary:       "Delete an attribute's declaration",
		Description:   "Contacts keep their values; segments using it fail with a 422 until it is declared again.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, s.attributeDelete)

	huma.Register(s.api, huma.Operation{
		OperationID: "list-segments", Method: http.MethodGet, Path: "/v1/segments", Tags: tags,
		Summary: "List segments", Errors: []int{401},
	}, s.segmentList)
	huma.Register(s.api, huma.Operation{
		OperationID: "create-segment", Method: http.MethodPost, Path: "/v1/segments", Tags: tags,
		Summary: "Save a segment", DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 409, 422},
	}, s.segmentCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "preview-segment", Method: http.MethodPost, Path: "/v1/segments/preview", Tags: tags,
		Summary: "Count a filter's contacts and show the first", Errors: []int{400, 401, 422},
	}, s.segmentPreview)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-segment", Method: http.MethodGet, Path: "/v1/segments/{id}", Tags: tags,
		Summary: "Get a segment with its count now", Errors: []int{401, 404, 422},
	}, s.segmentGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-segment", Method: http.MethodPatch, Path: "/v1/segments/{id}", Tags: tags,
		Summary: "Rename a segment or change its filter", Errors: []int{400, 401, 404, 409, 422},
	}, s.segmentPatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-segment", Method: http.MethodDelete, Path: "/v1/segments/{id}", Tags: tags,
		Summary: "Delete a segment", DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, s.segmentDelete)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-segment-contacts", Method: http.MethodGet, Path: "/v1/segments/{id}/contacts", Tags: tags,
		Summary: "List the contacts a segment matches now, by id", Errors: []int{401, 404, 422},
	}, s.segmentContacts)
}

// segmentError maps an error of the segments service: a FilterError is a 422 at prefix + its
// path ("body" + ".filter.and[1]"); others are the store's.
func (s *Server) segmentError(err error, prefix, what string) error {
	var fe *audience.FilterError
	if errors.As(err, &fe) {
		loc := prefix + "." + fe.Path
		return huma.Error422UnprocessableEntity(loc+": "+fe.Message, &huma.ErrorDetail{Location: loc, Message: fe.Message, Value: fe.Value})
	}
	return s.storeError(err, what)
}

func (s *Server) attributeList(ctx context.Context, _ *struct{}) (*attributeListOutput, error) {
	as, err := s.cfg.Store.AttributeList(ctx)
	if err != nil {
		return nil, s.storeError(err, "attributes")
	}
	out := &attributeListOutput{}
	out.Body.Data = make([]AttributeResource, len(as))
	for i, a := range as {
		out.Body.Data[i] = AttributeResource(a)
	}
	return out, nil
}

func (s *Server) attributePut(ctx context.Context, in *attributePutInput) (*attributeOutput, error) {
	a, err := s.segments.Declare(ctx, in.Name, in.Body.Type)
	var fe *audience.FilterError
	if errors.As(err, &fe) && fe.Path == "type" {
		return nil, s.segmentError(err, "body", "")
	}
	if err != nil {
		return nil, s.segmentError(err, "path", "attribute "+in.Name)
	}
	return &attributeOutput{Body: AttributeResource(a)}, nil
}

func (s *Server) attributeDelete(ctx context.Context, in *attributeNameInput) (*struct{}, error) {
	if err := s.cfg.Store.AttributeDelete(ctx, in.Name); err != nil {
		return nil, s.storeError(err, "attribute "+in.Name)
	}
	return nil, nil
}

func (s *Server) segmentList(ctx context.Context, _ *struct{}) (*segmentListOutput, error) {
	segs, err := s.cfg.Store.SegmentList(ctx)
	if err != nil {
		return nil, s.storeError(err, "segments")
	}
	out := &segmentListOutput{}
	out.Body.Data = make([]SegmentResource, len(segs))
	for i, seg := range segs {
		out.Body.Data[i] = toSegmentResource(seg)
	}
	return out, nil
}

// missingFilter is the 422 of a body without a filter.
func missingFilter() error {
	return huma.Error422UnprocessableEntity("body.filter: required",
		&huma.ErrorDetail{Location: "body.filter", Message: "required"})
}

func (s *Server) segmentCreate(ctx context.Context, in *segmentCreateInput) (*segmentOutput, error) {
	if in.Body.Filter == nil {
		return nil, missingFilter()
	}
	seg, err := s.segments.Create(ctx, in.Body.Name, in.Body.Filter)
	if err != nil {
		return nil, s.segmentError(err, "body", "segment")
	}
	return &segmentOutput{Body: toSegmentResource(seg)}, nil
}

// segmentID refuses, as a 404, an id that is no segment's.
func segmentID(segID string) error {
	if !id.Valid(id.Segment, segID) {
		return huma.Error404NotFound("segment " + segID + " not found")
	}
	return nil
}

func (s *Server) segmentGet(ctx context.Context, in *segmentIDInput) (*segmentOutput, error) {
	if err := segmentID(in.ID); err != nil {
		return nil, err
	}
	seg, err := s.cfg.Store.SegmentGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "segment "+in.ID)
	}
	n, err := s.segments.Count(ctx, seg)
	if err != nil {
		return nil, s.segmentError(err, "segment", "segment "+in.ID)
	}
	out := &segmentOutput{Body: toSegmentResource(seg)}
	out.Body.Count = &n
	return out, nil
}

func (s *Server) segmentPatch(ctx context.Context, in *segmentPatchInput) (*segmentOutput, error) {
	if err := segmentID(in.ID); err != nil {
		return nil, err
	}
	if f := in.Body.Filter; f != nil && string(f) == "null" {
		return nil, missingFilter()
	}
	seg, err := s.segments.Update(ctx, in.ID, in.Body.Name, in.Body.Filter)
	if err != nil {
		return nil, s.segmentError(err, "body", "segment "+in.ID)
	}
	return &segmentOutput{Body: toSegmentResource(seg)}, nil
}

func (s *Server) segmentDelete(ctx context.Context, in *segmentIDInput) (*struct{}, error) {
	if err := segmentID(in.ID); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.SegmentDelete(ctx, in.ID); err != nil {
		return nil, s.storeError(err, "segment "+in.ID)
	}
	return nil, nil
}

func (s *Server) segmentPreview(ctx context.Context, in *previewInput) (*previewOutput, error) {
	if in.Body.Filter == nil {
		return nil, missingFilter()
	}
	limit := 10
	if in.Body.Limit != nil {
		limit = *in.Body.Limit
	}
	n, page, err := s.segments.Preview(ctx, in.Body.Filter, limit)
	if err != nil {
		return nil, s.segmentError(err, "body", "segment preview")
	}
	out := &previewOutput{}
	out.Body.Count, out.Body.Contacts = n, toContactResources(page)
	return out, nil
}

func (s *Server) segmentContacts(ctx context.Context, in *segmentContactsInput) (*pageOutput[ContactResource], error) {
	if err := segmentID(in.ID); err != nil {
		return nil, err
	}
	page, next, err := s.segments.Contacts(ctx, in.ID, in.Cursor, in.Limit)
	if err != nil {
		return nil, s.segmentError(err, "segment", "segment "+in.ID)
	}
	out := &pageOutput[ContactResource]{}
	out.Body.Data, out.Body.NextCursor = toContactResources(page), next
	return out, nil
}

// The strict decoding of the segment bodies (see strictBody).
var (
	attributeBodyShape = shapeOf(reflect.TypeFor[AttributeBody]())
	segmentBodyShape   = shapeOf(reflect.TypeFor[SegmentBody]())
	segmentPatchShape  = shapeOf(reflect.TypeFor[SegmentPatch]())
	previewBodyShape   = shapeOf(reflect.TypeFor[PreviewBody]())
)

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *AttributeBody) UnmarshalJSON(data []byte) error {
	type plain AttributeBody
	return b.strict.decode(data, (*plain)(b), attributeBodyShape)
}

func (b *AttributeBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *SegmentBody) UnmarshalJSON(data []byte) error {
	type plain SegmentBody
	return b.strict.decode(data, (*plain)(b), segmentBodyShape)
}

func (b *SegmentBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *SegmentPatch) UnmarshalJSON(data []byte) error {
	type plain SegmentPatch
	return b.strict.decode(data, (*plain)(b), segmentPatchShape)
}

func (b *SegmentPatch) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *PreviewBody) UnmarshalJSON(data []byte) error {
	type plain PreviewBody
	return b.strict.decode(data, (*plain)(b), previewBodyShape)
}

func (b *PreviewBody) Resolve(huma.Context) []error { return b.strict.errors() }

// contactsMatching is GET /v1/contacts with a segment or a filter: the segments service pages
// through the contacts matching all that is given.
func (s *Server) contactsMatching(ctx context.Context, in *contactListInput) (*pageOutput[ContactResource], error) {
	q := audience.ContactsQuery{SegmentID: in.Segment, ListID: in.List, Status: in.Status, Cursor: in.Cursor, Limit: in.Limit}
	if in.Filter != "" {
		q.Filter = json.RawMessage(in.Filter)
	}
	page, next, err := s.segments.Query(ctx, q)
	switch {
	case errors.Is(err, audience.ErrUnknownSegment):
		return nil, huma.Error422UnprocessableEntity("query.segment: no such segment",
			&huma.ErrorDetail{Location: "query.segment", Message: "no such segment", Value: in.Segment})
	case err != nil:
		return nil, s.segmentError(err, "query", "contacts")
	}
	out := &pageOutput[ContactResource]{}
	out.Body.Data, out.Body.NextCursor = toContactResources(page), next
	return out, nil
}
