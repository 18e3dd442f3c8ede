package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/apikey"
)

// routeScopes is the scope each authenticated route needs, by its mux pattern ("METHOD path").
// A route missing here needs admin (TestEveryRouteHasAScope keeps the table complete).
var routeScopes = map[string]string{
	// send: what makes mail go out, or stops it.
	"POST /v1/messages":             apikey.ScopeSend,
	"POST /v1/messages/batch":       apikey.ScopeSend,
	"POST /v1/messages/{id}/cancel": apikey.ScopeSend,
	"POST /v1/messages/{id}/retry":  apikey.ScopeSend,
	"POST /v1/messages/retry":       apikey.ScopeSend,
	"POST /v1/events":               apikey.ScopeSend,
	"POST /v1/events/batch":         apikey.ScopeSend,

	// read: what was sent and what came back.
	"GET /v1/messages":             apikey.ScopeRead,
	"GET /v1/messages/{id}":        apikey.ScopeRead,
	"GET /v1/messages/{id}/raw":    apikey.ScopeRead,
	"GET /v1/events":               apikey.ScopeRead,
	"GET /v1/events/{id}":          apikey.ScopeRead,
	"GET /v1/inbound":              apikey.ScopeRead,
	"GET /v1/streams":              apikey.ScopeRead,
	"GET /v1/streams/{stream}":     apikey.ScopeRead,
	"GET /v1/suppressions":         apikey.ScopeRead,
	"GET /v1/suppressions/{email}": apikey.ScopeRead,

	"GET /v1/templates":                apikey.ScopeTemplates,
	"GET /v1/templates/{name}":         apikey.ScopeTemplates,
	"PUT /v1/templates/{name}":         apikey.ScopeTemplates,
	"DELETE /v1/templates/{name}":      apikey.ScopeTemplates,
	"POST /v1/templates/{name}/render": apikey.ScopeTemplates,

	// audience: the people mail goes to.
	"POST /v1/contacts":                        apikey.ScopeAudience,
	"POST /v1/contacts/batch":                  apikey.ScopeAudience,
	"GET /v1/contacts":                         apikey.ScopeAudience,
	"GET /v1/contacts/{ref}":                   apikey.ScopeAudience,
	"PATCH /v1/contacts/{ref}":                 apikey.ScopeAudience,
	"DELETE /v1/contacts/{ref}":                apikey.ScopeAudience,
	"GET /v1/contacts/{ref}/subscriptions":     apikey.ScopeAudience,
	"GET /v1/contacts/{ref}/consent":           apikey.ScopeAudience,
	"POST /v1/lists":                           apikey.ScopeAudience,
	"GET /v1/lists":                            apikey.ScopeAudience,
	"GET /v1/lists/{id}":                       apikey.ScopeAudience,
	"PATCH /v1/lists/{id}":                     apikey.ScopeAudience,
	"DELETE /v1/lists/{id}":                    apikey.ScopeAudience,
	"PUT /v1/lists/{id}/contacts/{contact}":    apikey.ScopeAudience,
	"DELETE /v1/lists/{id}/contacts/{contact}": apikey.ScopeAudience,
	"GET /v1/attributes":                       apikey.ScopeAudience,
	"PUT /v1/attributes/{name}":                apikey.ScopeAudience,
	"DELETE /v1/attributes/{name}":             apikey.ScopeAudience,
	"GET /v1/segments":                         apikey.ScopeAudience,
	"POST /v1/segments":                        apikey.ScopeAudience,
	"POST /v1/segments/preview":                apikey.ScopeAudience,
	"GET /v1/segments/{id}":                    apikey.ScopeAudience,
	"PATCH /v1/segments/{id}":                  apikey.ScopeAudience,
	"DELETE /v1/segments/{id}":                 apikey.ScopeAudience,
	"GET /v1/segments/{id}/contacts":           apikey.ScopeAudience,
	"POST /v1/imports":                         apikey.ScopeAudience,
	"GET /v1/imports":                          apikey.ScopeAudience,
	"GET /v1/imports/{id}":                     apikey.ScopeAudience,
	"POST /v1/suppressions":                    apikey.ScopeAudience,
	"DELETE /v1/suppressions/{email}":          apikey.ScopeAudience,

	// campaigns: mail sent to many, by hand or by rule.
	"POST /v1/campaigns":                           apikey.ScopeCampaigns,
	"GET /v1/campaigns":                            apikey.ScopeCampaigns,
	"GET /v1/campaigns/{id}":                       apikey.ScopeCampaigns,
	"PATCH /v1/campaigns/{id}":                     apikey.ScopeCampaigns,
	"DELETE /v1/campaigns/{id}":                    apikey.ScopeCampaigns,
	"POST /v1/campaigns/{id}/start":                apikey.ScopeCampaigns,
	"POST /v1/campaigns/{id}/pause":                apikey.ScopeCampaigns,
	"POST /v1/campaigns/{id}/cancel":               apikey.ScopeCampaigns,
	"POST /v1/campaigns/{id}/resume":               apikey.ScopeCampaigns,
	"POST /v1/campaigns/{id}/test":                 apikey.ScopeCampaigns,
	"GET /v1/campaigns/{id}/runs":                  apikey.ScopeCampaigns,
	"GET /v1/campaigns/{id}/runs/{run}":            apikey.ScopeCampaigns,
	"GET /v1/campaigns/{id}/runs/{run}/recipients": apikey.ScopeCampaigns,
	"POST /v1/triggers":                            apikey.ScopeCampaigns,
	"GET /v1/triggers":                             apikey.ScopeCampaigns,
	"GET /v1/triggers/{id}":                        apikey.ScopeCampaigns,
	"PATCH /v1/triggers/{id}":                      apikey.ScopeCampaigns,
	"DELETE /v1/triggers/{id}":                     apikey.ScopeCampaigns,

	// admin: the service itself. Sources hold the credentials of other databases.
	"POST /v1/api-keys":                                  apikey.ScopeAdmin,
	"GET /v1/api-keys":                                   apikey.ScopeAdmin,
	"GET /v1/api-keys/{id}":                              apikey.ScopeAdmin,
	"DELETE /v1/api-keys/{id}":                           apikey.ScopeAdmin,
	"POST /v1/webhooks":                                  apikey.ScopeAdmin,
	"GET /v1/webhooks":                                   apikey.ScopeAdmin,
	"GET /v1/webhooks/{id}":                              apikey.ScopeAdmin,
	"PATCH /v1/webhooks/{id}":                            apikey.ScopeAdmin,
	"DELETE /v1/webhooks/{id}":                           apikey.ScopeAdmin,
	"POST /v1/webhooks/{id}/rotate-secret":               apikey.ScopeAdmin,
	"POST /v1/webhooks/{id}/replay":                      apikey.ScopeAdmin,
	"GET /v1/webhooks/{id}/deliveries":                   apikey.ScopeAdmin,
	"GET /v1/webhooks/{id}/deliveries/{delivery}":        apikey.ScopeAdmin,
	"POST /v1/webhooks/{id}/deliveries/{delivery}/retry": apikey.ScopeAdmin,
	"POST /v1/sources":                                   apikey.ScopeAdmin,
	"GET /v1/sources":                                    apikey.ScopeAdmin,
	"GET /v1/sources/{id}":                               apikey.ScopeAdmin,
	"PATCH /v1/sources/{id}":                             apikey.ScopeAdmin,
	"DELETE /v1/sources/{id}":                            apikey.ScopeAdmin,
	"POST /v1/sources/{id}/run":                          apikey.ScopeAdmin,
	"POST /v1/streams/{stream}/resume":                   apikey.ScopeAdmin,
	"GET /metrics":                                       apikey.ScopeAdmin, // on the API listener when there is no admin listener
}

// RouteScope is the scope the route of mux pattern needs (admin for a route not in the table).
func RouteScope(pattern string) string {
	if s, ok := routeScopes[pattern]; ok {
		return s
	}
	return apikey.ScopeAdmin
}

// RouteScopes returns a copy of the route table: mux pattern → scope.
func RouteScopes() map[string]string {
	m := make(map[string]string, len(routeScopes))
	for p, s := range routeScopes {
		m[p] = s
	}
	return m
}

// permitted writes a 403 problem and returns false when the key of r lacks the scope of the
// route r goes to. A request that goes to no route passes, to be answered 404 or 405 by the mux.
func (s *Server) permitted(w http.ResponseWriter, r *http.Request) bool {
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		return true
	}
	scope := RouteScope(pattern)
	if apikey.Allows(apiKeyFrom(r.Context()), scope) {
		return true
	}
	writeProblem(w, http.StatusForbidden, fmt.Sprintf("this API key lacks the scope %q", scope))
	return false
}

// documentScopes writes each operation's scope into the OpenAPI document: its security
// requirement names it, and its description says it.
func (s *Server) documentScopes() {
	for path, item := range s.api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{http.MethodGet: item.Get, http.MethodPost: item.Post,
			http.MethodPut: item.Put, http.MethodPatch: item.Patch, http.MethodDelete: item.Delete} {
			if op == nil || public(path) {
				continue
			}
			scope := RouteScope(method + " " + path)
			op.Security = []map[string][]string{{"bearer": {scope}}}
			note := fmt.Sprintf("Needs an API key with the scope `%s` (or `admin`).", scope)
			if scope == apikey.ScopeAdmin {
				note = "Needs an API key with the scope `admin`."
			}
			op.Description = strings.TrimSpace(op.Description + "\n\n" + note)
			if r := op.Responses["401"]; r != nil && op.Responses["403"] == nil {
				forbidden := *r
				forbidden.Description = "Forbidden: the API key lacks the scope"
				op.Responses["403"] = &forbidden
			}
		}
	}
}
