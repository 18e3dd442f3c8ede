package httpapi

import (
	_ "embed"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
)

// docsPage is the page of /v1/docs: it fetches openapi.json beside it and lists the operations
// and schemas with a little inline JavaScript. It loads nothing from anywhere else, so it works
// offline and behind a strict proxy.
//
//go:embed docs/docs.html
var docsPage []byte

// serveDocs serves docsPage. The policy allows only the page's own inline script and style and
// requests to this server.
func serveDocs(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(docsPage)
}

// finishDocument completes the OpenAPI document where huma's generation falls short. It runs once,
// after every operation is registered and before the document is first served (huma marshals it
// on the first request):
//
//   - The send operations read their body raw, so that one strict decoder, decodeItem, serves
//     a single message and a batch item alike (unknown fields, duplicate keys, invalid UTF-8
//     refused); huma documents such a body as a binary string and the answer
//     as any value. Their request and response bodies are described here by the Go types the
//     decoder and the handlers implement, for generated clients; nothing validates against them.
//   - huma writes the `patternDescription` keyword, which neither OpenAPI nor JSON Schema
//     defines; it becomes the extension `x-patternDescription`. The validation messages that use
//     it were computed when the operations were registered, so they keep their wording.
func (s *Server) finishDocument() {
	s.documentBodies("/v1/messages", reflect.TypeFor[SendMessage](), "202", reflect.TypeFor[Accepted]())
	s.documentBodies("/v1/messages/batch", reflect.TypeFor[BatchBody](), "200", reflect.TypeFor[BatchAnswer]())
	s.documentContacts()
	s.documentEvents()
	s.documentSES()
	forEachSchema(s.api.OpenAPI(), func(sc *huma.Schema) {
		if sc.PatternDescription == "" {
			return
		}
		if sc.Extensions == nil {
			sc.Extensions = map[string]any{}
		}
		sc.Extensions["x-patternDescription"] = sc.PatternDescription
		sc.PatternDescription = ""
	})
}

// documentBodies sets the JSON request body of the POST operation at path to the schema of req,
// and its response with status to the schema of resp.
func (s *Server) documentBodies(path string, req reflect.Type, status string, resp reflect.Type) {
	oapi := s.api.OpenAPI()
	op := oapi.Paths[path].Post
	reg := oapi.Components.Schemas
	op.RequestBody.Content["application/json"] = &huma.MediaType{Schema: reg.Schema(req, true, req.Name())}
	op.Responses[status].Content["application/json"] = &huma.MediaType{Schema: reg.Schema(resp, true, resp.Name())}
}

// forEachSchema calls f once for every schema of the document: components, parameters, headers,
// request and response bodies, and the schemas nested in them.
func forEachSchema(oapi *huma.OpenAPI, f func(*huma.Schema)) {
	seen := map[*huma.Schema]bool{}
	var walk func(sc *huma.Schema)
	walk = func(sc *huma.Schema) {
		if sc == nil || seen[sc] {
			return
		}
		seen[sc] = true
		f(sc)
		walk(sc.Items)
		walk(sc.Not)
		if ap, ok := sc.AdditionalProperties.(*huma.Schema); ok {
			walk(ap)
		}
		for _, p := range sc.Properties {
			walk(p)
		}
		for _, list := range [][]*huma.Schema{sc.OneOf, sc.AnyOf, sc.AllOf} {
			for _, x := range list {
				walk(x)
			}
		}
	}
	media := func(content map[string]*huma.MediaType) {
		for _, mt := range content {
			if mt != nil {
				walk(mt.Schema)
			}
		}
	}
	for _, sc := range oapi.Components.Schemas.Map() {
		walk(sc)
	}
	for _, item := range oapi.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op == nil {
				continue
			}
			for _, p := range op.Parameters {
				walk(p.Schema)
			}
			if op.RequestBody != nil {
				media(op.RequestBody.Content)
			}
			for _, r := range op.Responses {
				media(r.Content)
				for _, h := range r.Headers {
					walk(h.Schema)
				}
			}
		}
	}
}
