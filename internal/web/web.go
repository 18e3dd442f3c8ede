// Package web serves postie's public pages: the unsubscribe and preference page of a signed
// link (GET /u/{token}), its RFC 8058 one-click unsubscribe (POST /u/{token} with
// List-Unsubscribe=One-Click), the double opt-in confirmation page, and the subscribe form of
// public lists (POST /u/subscribe, rate-limited per client IP and per address). The pages are plain
// HTML forms (html/template, no JavaScript, no cookies), in the person's language where known
// (English by default, German); they need no API key.
//
// A GET never changes anything (link scanners and prefetchers follow every URL): the page's
// buttons POST. A token that does not verify (tampered, truncated, signed by a key this node
// does not hold) or has expired gets a 400 page that says nothing about whom it was for.
package web

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
)

// Config configures the pages.
type Config struct {
	Links        *audience.Links
	Unsubscriber *audience.Unsubscriber
	// Subscriber serves the public subscribe form (POST /u/subscribe); nil: no form.
	Subscriber Subscriber
	Now        func() time.Time
	Logger     *slog.Logger
}

// Handler serves the public pages under /u/.
type Handler struct {
	cfg          Config
	mux          *http.ServeMux
	byIP, byAddr *limiters
}

// New returns the public pages' handler.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), byIP: newLimiters(perIPEvery, perIPBurst),
		byAddr: newLimiters(perAddrEvery, perAddrBurst)}
	h.mux.HandleFunc("GET /u/{token}", h.page)
	h.mux.HandleFunc("POST /u/{token}", h.post)
	h.mux.HandleFunc("POST /u/subscribe", h.subscribe)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	h.mux.ServeHTTP(w, r)
}

// maxForm bounds a POST body: a one-click body is 26 bytes, a form a few more.
const maxForm = 4 << 10

// open verifies the path's token, answering the invalid-link page when it does not.
func (h *Handler) open(w http.ResponseWriter, r *http.Request) (audience.Token, bool) {
	t, err := h.cfg.Links.Keys().Open(r.PathValue("token"), h.cfg.Now())
	if err != nil {
		msg := pick(r, "").Invalid
		if errors.Is(err, audience.ErrExpiredToken) {
			msg = pick(r, "").Expired
		}
		h.render(w, r, http.StatusBadRequest, "", view{Title: msg, Text: pick(r, "").InvalidText})
		return audience.Token{}, false
	}
	return t, true
}

// page is GET /u/{token}: the choices, each a button that POSTs.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	t, ok := h.open(w, r)
	if !ok {
		return
	}
	lang := h.cfg.Unsubscriber.Locale(r.Context(), t)
	s := pick(r, lang)
	v := view{Action: r.URL.Path}
	switch t.Purpose {
	case audience.PurposeConfirm:
		v.Title, v.Text = s.ConfirmTitle, s.ConfirmText
		v.Buttons = []button{{Name: "confirm", Label: s.ConfirmButton}}
	default:
		v.Title, v.Text = s.UnsubTitle, s.UnsubText
		if t.ListID != "" {
			v.Buttons = append(v.Buttons, button{Name: "list", Label: s.LeaveList})
		}
		v.Buttons = append(v.Buttons, button{Name: "all", Label: s.LeaveAll})
		for _, l := range h.cfg.Unsubscriber.PublicLists(r.Context(), t) {
			if l.ID == t.ListID {
				continue
			}
			if l.Subscribed {
				v.Buttons = append(v.Buttons, button{Name: "leave:" + l.ID, Label: s.Leave + " " + l.Name})
			} else {
				v.Buttons = append(v.Buttons, button{Name: "join:" + l.ID, Label: s.Join + " " + l.Name})
			}
		}
	}
	h.render(w, r, http.StatusOK, lang, v)
}

// post is POST /u/{token}: the one-click unsubscribe (RFC 8058: the body
// List-Unsubscribe=One-Click, form-encoded or multipart, or an empty body; 200, never a
// redirect), or a button of the page.
func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	t, ok := h.open(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		_ = r.ParseMultipartForm(maxForm)
	} else {
		_ = r.ParseForm()
	}
	now := h.cfg.Now()
	consent := store.Consent{Source: "unsubscribe_link", IP: clientIP(r), UserAgent: r.UserAgent()}
	lang := h.cfg.Unsubscriber.Locale(r.Context(), t)
	s := pick(r, lang)
	u := h.cfg.Unsubscriber
	var (
		err  error
		done string
	)
	action := r.PostForm.Get("action")
	switch {
	case r.PostForm.Get("List-Unsubscribe") == "One-Click" || action == "" && len(r.PostForm) == 0:
		if t.Purpose != audience.PurposeUnsubscribe {
			h.render(w, r, http.StatusBadRequest, lang, view{Title: s.Invalid, Text: s.InvalidText})
			return
		}
		consent.Source = "one_click"
		err, done = u.LeaveList(r.Context(), t, consent, now), s.LeftList
		if t.ListID == "" {
			done = s.LeftAll
		}
	case action == "list" && t.Purpose != audience.PurposeConfirm:
		err, done = u.LeaveList(r.Context(), t, consent, now), s.LeftList
	case action == "all" && t.Purpose != audience.PurposeConfirm:
		err, done = u.LeaveAll(r.Context(), t, consent, now), s.LeftAll
	case strings.HasPrefix(action, "leave:") && t.Purpose != audience.PurposeConfirm:
		err, done = u.LeavePublic(r.Context(), t, strings.TrimPrefix(action, "leave:"), consent, now), s.LeftList
	case strings.HasPrefix(action, "join:") && t.Purpose != audience.PurposeConfirm:
		consent.Source = "preferences"
		err, done = u.JoinPublic(r.Context(), t, strings.TrimPrefix(action, "join:"), consent, now), s.Joined
	case action == "confirm" && t.Purpose == audience.PurposeConfirm:
		consent.Source = "confirmation"
		err, done = u.Confirm(r.Context(), t, consent, now), s.Confirmed
	default:
		h.render(w, r, http.StatusBadRequest, lang, view{Title: s.Invalid, Text: s.InvalidText})
		return
	}
	switch {
	case errors.Is(err, audience.ErrNoSubscription):
		h.render(w, r, http.StatusNotFound, lang, view{Title: s.Invalid, Text: s.InvalidText})
	case err != nil:
		h.cfg.Logger.Error("public page: the change failed", "err", err)
		h.render(w, r, http.StatusServiceUnavailable, lang, view{Title: s.Failed, Text: s.FailedText})
	default:
		h.render(w, r, http.StatusOK, lang, view{Title: done})
	}
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

type button struct{ Name, Label string }

type view struct {
	Lang, Title, Text, Action string
	Buttons                   []button
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, lang string, v view) {
	v.Lang = pick(r, lang).Lang
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, v); err != nil {
		h.cfg.Logger.Warn("public page: writing the response failed", "err", err)
	}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
button{font:inherit;padding:.5rem 1rem;margin:.25rem 0;display:block;cursor:pointer}</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{with .Text}}<p>{{.}}</p>{{end}}
{{if .Buttons}}<form method="post" action="{{.Action}}">
{{range .Buttons}}<button type="submit" name="action" value="{{.Name}}">{{.Label}}</button>
{{end}}</form>{{end}}
</main>
</body>
</html>
`))
