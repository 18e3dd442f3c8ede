package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
)

// Subscriber is what the public subscribe form uses (audience.Service).
type Subscriber interface {
	List(ctx context.Context, listID string) (store.List, error)
	Subscribe(ctx context.Context, listID, ref string, p audience.SubscribeParams) (store.SubscriptionSetResult, error)
}

// Limits of the public subscribe form, against list bombing (signing a victim up to many
// lists, or flooding one address with confirmation messages): per client IP and per address.
const (
	perIPEvery, perIPBurst     = time.Minute, 5
	perAddrEvery, perAddrBurst = time.Hour, 3
	maxLimiters                = 100_000 // the limiters are forgotten past this many (memory bound)
)

// limiters are token buckets by key.
type limiters struct {
	mu    sync.Mutex
	every time.Duration
	burst int
	m     map[string]*rate.Limiter
}

func newLimiters(every time.Duration, burst int) *limiters {
	return &limiters{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

func (l *limiters) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimiters {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.m[key] = lim
	}
	return lim.AllowN(now, 1)
}

// subscribe is POST /u/subscribe, the public subscribe form of a public list: fields list (its
// id) and email. It answers the same page whatever happened to the address (subscribed,
// pending confirmation, already there, or kept out because they had left), so the form tells
// no one who is on a list; 400 for a missing or invalid field or a list that is not public,
// 429 past the limits.
func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	s := pick(r, "")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	_ = r.ParseForm()
	listID, email := r.PostForm.Get("list"), strings.TrimSpace(r.PostForm.Get("email"))
	now := h.cfg.Now()
	if !h.byIP.allow(clientIP(r), now) || email != "" && !h.byAddr.allow(strings.ToLower(email), now) {
		h.render(w, r, http.StatusTooManyRequests, "", view{Title: s.TooMany, Text: s.TooManyText})
		return
	}
	sub := h.cfg.Subscriber
	if sub == nil || listID == "" || email == "" {
		h.render(w, r, http.StatusBadRequest, "", view{Title: s.BadForm, Text: s.BadFormText})
		return
	}
	l, err := sub.List(r.Context(), listID)
	if err != nil || !l.Public {
		h.render(w, r, http.StatusBadRequest, "", view{Title: s.BadForm, Text: s.BadFormText})
		return
	}
	_, err = sub.Subscribe(r.Context(), l.ID, email, audience.SubscribeParams{
		Consent: store.Consent{Source: "form", IP: clientIP(r), UserAgent: r.UserAgent()}})
	var inv *audience.InvalidError
	switch {
	case errors.As(err, &inv):
		h.render(w, r, http.StatusBadRequest, "", view{Title: s.BadForm, Text: s.BadFormText})
	case err != nil:
		h.cfg.Logger.Error("public subscribe failed", "err", err)
		h.render(w, r, http.StatusServiceUnavailable, "", view{Title: s.Failed, Text: s.FailedText})
	default:
		h.render(w, r, http.StatusOK, "", view{Title: s.Subscribed, Text: s.SubscribedText})
	}
}
