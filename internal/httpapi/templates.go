package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// TemplateVariant is the content of one locale of a template.
type TemplateVariant struct {
	Subject string `json:"subject,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Subject template (text/template)"`
	HTML    string `json:"html,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"HTML template (html/template)"`
	Text    string `json:"text,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Text template (text/template); generated from the HTML when empty"`
}

// TemplateBody is the body of PUT /v1/templates/{name}.
type TemplateBody struct {
	Subject     string                     `json:"subject,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Subject template (text/template), e.g. \"Order {{.data.order.id}} has shipped\". A template a message is sent with must render a subject; a layout has none."`
	HTML        string                     `json:"html,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"HTML template (html/template). A layout places it with {{template \"content\" .}}."`
	Text        string                     `json:"text,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Text template (text/template). Generated from the HTML when empty."`
	Layout      string                     `json:"layout,omitempty" doc:"Name of the template that wraps this one" example:"newsletter-layout"`
	Schema      json.RawMessage            `json:"schema,omitempty" doc:"JSON Schema (draft 2020-12 by default) the data of every message must satisfy"`
	Description string                     `json:"description,omitempty" maxLength:"1000" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)"`
	Locales     map[string]TemplateVariant `json:"locales,omitempty" doc:"Variants by language tag (\"ko\", \"pt-BR\"): each replaces subject, html and text; layout and schema are shared"`

	strict strictBody // what checkJSON found
}

// TemplateResource is a template version as the API shows it.
type TemplateResource struct {
	Name        string                     `json:"name" example:"order-shipped"`
	Version     int                        `json:"version" doc:"1 for the first PUT, one more for each change; never reused"`
	Subject     string                     `json:"subject,omitempty"`
	HTML        string                     `json:"html,omitempty"`
	Text        string                     `json:"text,omitempty"`
	Layout      string                     `json:"layout,omitempty"`
	Schema      json.RawMessage            `json:"schema,omitempty"`
	Description string                     `json:"description,omitempty"`
	Locales     map[string]TemplateVariant `json:"locales,omitempty"`
	Origin      string                     `json:"origin" enum:"api,dir" doc:"api: managed through this API; dir: loaded from POSTIE_TEMPLATES_DIR (API changes are refused)"`
	CreatedAt   time.Time                  `json:"created_at" doc:"When this version was stored"`
	DeletedAt   *time.Time                 `json:"deleted_at,omitempty" doc:"Set on an old version of a deleted template"`
	LoadError   string                     `json:"load_error,omitempty" doc:"Its file in POSTIE_TEMPLATES_DIR is not served as written (this version keeps serving)"`
	Warnings    []string                   `json:"warnings,omitempty" doc:"What the compiler noticed without failing (PUT only)"`
}

func toTemplateResource(t store.Template) TemplateResource {
	r := TemplateResource{Name: t.Name, Version: t.Version, Subject: t.Subject, HTML: t.HTML, Text: t.Text,
		Layout: t.Layout, Schema: t.Schema, Description: t.Description, Origin: t.Origin,
		CreatedAt: t.CreatedAt, DeletedAt: timePtr(t.DeletedAt)}
	if len(t.Locales) > 0 {
		r.Locales = make(map[string]TemplateVariant, len(t.Locales))
		for k, v := range t.Locales {
			r.Locales[k] = TemplateVariant(v)
		}
	}
	return r
}

// templateName is the tag of a template name in the path; the pattern is templates.ValidName's.
// (huma does not fill path parameters of embedded structs, hence a field in each input.)
type templatePutInput struct {
	Name string `path:"name" pattern:"^[a-z0-9][a-z0-9._-]{0,99}$" patternDescription:"1–100 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit" doc:"Template name"`
	Body TemplateBody
}

type templatePutOutput struct {
	Status int
	Body   TemplateResource
}

type templateGetInput struct {
	Name    string `path:"name" pattern:"^[a-z0-9][a-z0-9._-]{0,99}$" patternDescription:"1–100 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit" doc:"Template name"`
	Version int    `query:"version" minimum:"0" doc:"This version instead of the latest (also of a deleted template)"`
}

type templateOutput struct {
	Body TemplateResource
}

type templateDeleteInput struct {
	Name  string `path:"name" pattern:"^[a-z0-9][a-z0-9._-]{0,99}$" patternDescription:"1–100 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit" doc:"Template name"`
	Force bool   `query:"force" doc:"Delete even while messages waiting to be sent were made from it, or other templates use it as their layout"`
}

type templateListInput struct {
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

// LoadErrorResource is a file of POSTIE_TEMPLATES_DIR that is not served as written.
type LoadErrorResource struct {
	Name  string `json:"name" doc:"The template the file is for"`
	File  string `json:"file" doc:"The file, relative to POSTIE_TEMPLATES_DIR"`
	Error string `json:"error" doc:"What is wrong, as file:line:column: problem"`
}

type templateListOutput struct {
	Body struct {
		Data       []TemplateResource  `json:"data"`
		NextCursor string              `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page"`
		LoadErrors []LoadErrorResource `json:"load_errors,omitempty" doc:"Every file of POSTIE_TEMPLATES_DIR not served as written (first page only)"`
	}
}

// RenderBody is the body of POST /v1/templates/{name}/render.
type RenderBody struct {
	Data    json.RawMessage `json:"data,omitempty" doc:"The data, exactly as a message's data"`
	Locale  string          `json:"locale,omitempty" doc:"Render this locale's variant (with the same fallback as a message)"`
	Version int             `json:"version,omitempty" minimum:"0" doc:"Render this version instead of the latest"`

	strict strictBody // what checkJSON found
}

type templateRenderInput struct {
	Name string `path:"name" pattern:"^[a-z0-9][a-z0-9._-]{0,99}$" patternDescription:"1–100 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit" doc:"Template name"`
	Body *RenderBody
}

// RenderResult is a rendered template.
type RenderResult struct {
	Subject  string   `json:"subject"`
	HTML     string   `json:"html"`
	Text     string   `json:"text" doc:"The text part; generated from the HTML when the template has none"`
	Version  int      `json:"version" doc:"The template version rendered"`
	Locale   string   `json:"locale,omitempty" doc:"The locale variant used; absent for the default content"`
	Warnings []string `json:"warnings,omitempty" doc:"e.g. an HTML part Gmail would clip"`
}

type templateRenderOutput struct {
	Body RenderResult
}

// maxTemplateBody bounds a PUT body: room for a few parts and locales of up to
// render.MaxSourceSize each.
const maxTemplateBody = 8 << 20

// maxRenderBody bounds a preview's body: data over render.MaxDataSize must get the same 422 on
// body.data as a message's, not the 413 of huma's default 1 MB body limit.
const maxRenderBody = 2*render.MaxDataSize + 64<<10

func (s *Server) registerTemplates() {
	tags := []string{"Templates"}
	huma.Register(s.api, huma.Operation{
		OperationID: "put-template", Method: http.MethodPut, Path: "/v1/templates/{name}", Tags: tags,
		Summary: "Create or change a template (a new version)",
		Description: "Compiles the template, every locale variant and its layout chain, compiles its schema, and checks that " +
			"the templates using it as a layout still compile, then stores it as a new version: 201 for a new name, 200 otherwise. " +
			"Errors are 422 naming the field with the line and column, or the schema path; nothing is stored.",
		Errors: []int{400, 401, 409, 413, 422}, MaxBodyBytes: maxTemplateBody,
	}, s.templatePut)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-template", Method: http.MethodGet, Path: "/v1/templates/{name}", Tags: tags,
		Summary: "Get a template's latest version, or ?version=", Errors: []int{401, 404, 422},
	}, s.templateGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-templates", Method: http.MethodGet, Path: "/v1/templates", Tags: tags,
		Summary: "List templates by name (their latest versions)", Errors: []int{401, 422},
	}, s.templateList)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-template", Method: http.MethodDelete, Path: "/v1/templates/{name}", Tags: tags,
		Summary: "Delete a template",
		Description: "Refused with 409 while messages waiting to be sent (scheduled, queued, deferred) were made from it or other " +
			"templates use it as their layout, unless force=true. Its versions are kept, so version numbers are never reused.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404, 409, 422},
	}, s.templateDelete)
	huma.Register(s.api, huma.Operation{
		OperationID: "render-template", Method: http.MethodPost, Path: "/v1/templates/{name}/render", Tags: tags,
		Summary:      "Render a template with data (preview)",
		Description:  "Validates the data and renders exactly as a message would be, answering {subject, html, text} or the same 422 errors; stores nothing.",
		Errors:       []int{401, 413, 422},
		MaxBodyBytes: maxRenderBody,
	}, s.templateRender)
}

// renderTemplateFields names the catalog's render fields as a render request does: its version
// is version, and the template at fault is the template.
var renderTemplateFields = map[string]string{"name": "template"}

// templateError answers a template failure: 422 naming the fields for an *InvalidError (the
// catalog's field names renamed by fields, as addInvalid does), else as storeError does.
func (s *Server) templateError(err error, fields map[string]string, what string) error {
	var ie *templates.InvalidError
	if errors.As(err, &ie) {
		p := &problem{prefix: "body"}
		p.addInvalid(ie, fields)
		return p.err()
	}
	return s.storeError(err, what)
}

func (s *Server) templatePut(ctx context.Context, in *templatePutInput) (*templatePutOutput, error) {
	b := in.Body
	tpl := store.Template{Name: in.Name, Subject: b.Subject, HTML: b.HTML, Text: b.Text, Layout: b.Layout,
		Schema: b.Schema, Description: b.Description, Origin: store.TemplateOriginAPI}
	if len(b.Locales) > 0 {
		tpl.Locales = make(map[string]store.TemplateVariant, len(b.Locales))
		for k, v := range b.Locales {
			tpl.Locales[k] = store.TemplateVariant(v)
		}
	}
	saved, notes, err := s.cfg.Templates.Put(ctx, tpl)
	if err != nil {
		return nil, s.templateError(err, nil, "template "+in.Name)
	}
	out := &templatePutOutput{Status: http.StatusOK, Body: toTemplateResource(saved)}
	out.Body.Warnings = notes
	if saved.Version == 1 {
		out.Status = http.StatusCreated
	}
	return out, nil
}

// loadErrors returns the directory's load errors by template name.
func (s *Server) loadErrors() map[string]string {
	out := map[string]string{}
	for _, e := range s.cfg.TemplateLoadErrors() {
		out[e.Name] = e.Message
	}
	return out
}

func (s *Server) templateGet(ctx context.Context, in *templateGetInput) (*templateOutput, error) {
	tpl, err := s.cfg.Templates.Get(ctx, in.Name, in.Version)
	if err != nil {
		return nil, s.storeError(err, "template "+in.Name)
	}
	r := toTemplateResource(tpl)
	r.LoadError = s.loadErrors()[tpl.Name]
	return &templateOutput{Body: r}, nil
}

func (s *Server) templateList(ctx context.Context, in *templateListInput) (*templateListOutput, error) {
	page, next, err := s.cfg.Templates.List(ctx, store.TemplateListParams{Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.storeError(err, "templates")
	}
	loadErrs := s.loadErrors()
	out := &templateListOutput{}
	out.Body.NextCursor = next
	out.Body.Data = make([]TemplateResource, len(page))
	for i, t := range page {
		out.Body.Data[i] = toTemplateResource(t)
		out.Body.Data[i].LoadError = loadErrs[t.Name]
	}
	if in.Cursor == "" {
		for _, e := range s.cfg.TemplateLoadErrors() {
			out.Body.LoadErrors = append(out.Body.LoadErrors, LoadErrorResource{Name: e.Name, File: e.File, Error: e.Message})
		}
	}
	return out, nil
}

func (s *Server) templateDelete(ctx context.Context, in *templateDeleteInput) (*struct{}, error) {
	if err := s.cfg.Templates.Delete(ctx, in.Name, store.TemplateOriginAPI, in.Force); err != nil {
		return nil, s.storeError(err, "template "+in.Name)
	}
	return nil, nil
}

func (s *Server) templateRender(ctx context.Context, in *templateRenderInput) (*templateRenderOutput, error) {
	p := templates.RenderParams{Name: in.Name, Stream: store.StreamTransactional}
	if b := in.Body; b != nil {
		p.Data, p.Locale, p.Version = b.Data, b.Locale, b.Version
	}
	r, err := s.cfg.Templates.Render(ctx, p)
	if errors.Is(err, templates.ErrUnknown) {
		return nil, huma.Error404NotFound("template " + in.Name + " not found")
	}
	if err != nil {
		return nil, s.templateError(err, renderTemplateFields, "template "+in.Name)
	}
	if err := s.previewMessage(r.Output); err != nil {
		return nil, err
	}
	return &templateRenderOutput{Body: RenderResult{Subject: r.Subject, HTML: r.HTML, Text: r.Text,
		Version: r.Version, Locale: r.Locale, Warnings: r.Warnings}}, nil
}

// previewMessage applies to a preview what a send applies to what a template rendered beyond
// the render's own limits: the message built from it must be one mail.Build accepts (a subject
// of at most 998 octets, …) and within MaxMessageSize. The addresses are placeholders, as the
// preview has none.
func (s *Server) previewMessage(out render.Output) error {
	placeholder := mail.Address{Email: "preview@postie.invalid"}
	raw, err := mail.Build(mail.Message{From: placeholder, To: []mail.Address{placeholder}, Subject: out.Subject,
		HTML: out.HTML, Text: out.Text, Date: s.cfg.Now(), MessageID: mail.NewMessageID("", "postie.invalid")})
	p := &problem{prefix: "body"}
	switch {
	case err != nil:
		p.add("", "the rendered message cannot be built: "+err.Error(), nil)
	case int64(len(raw)) > s.cfg.MaxMessageSize:
		p.kind = message.KindTooLarge
		p.add("", fmt.Sprintf("the message rendered would be %d bytes encoded, over the limit of %d", len(raw), s.cfg.MaxMessageSize), len(raw))
	}
	return p.err()
}
