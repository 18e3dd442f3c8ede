package apikey

import (
	"fmt"
	"slices"
	"strings"

	"github.com/postie/postie/internal/store"
)

// The scopes a key may hold. Every authenticated route needs exactly one (the table is
// httpapi's); admin holds every other.
const (
	ScopeSend      = "send"      // send messages and events, cancel and retry messages
	ScopeRead      = "read"      // read messages, events, inbound mail, streams, suppressions
	ScopeTemplates = "templates" // manage and render templates
	ScopeAudience  = "audience"  // contacts, lists, segments, attributes, imports, sources, suppressions
	ScopeCampaigns = "campaigns" // campaigns and triggers
	ScopeAdmin     = "admin"     // everything, including API keys, webhooks and metrics
)

// Scopes lists every scope, in the order the documentation gives them.
var Scopes = []string{ScopeSend, ScopeRead, ScopeTemplates, ScopeAudience, ScopeCampaigns, ScopeAdmin}

// Allows says whether k holds scope (admin holds every scope).
func Allows(k store.APIKey, scope string) bool {
	return slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, ScopeAdmin)
}

// CheckScope returns an error naming s when it is not a scope.
func CheckScope(s string) error {
	if !slices.Contains(Scopes, s) {
		return fmt.Errorf("unknown scope %q: one of %s", s, strings.Join(Scopes, ", "))
	}
	return nil
}

// NormalizeDomain returns a sender domain as stored (lower-case, no trailing dot), or an error
// saying why d is not a domain name.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		return "", fmt.Errorf("empty domain")
	}
	if len(d) > 253 {
		return "", fmt.Errorf("domain %q is longer than 253 characters", d)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%q is not a domain name (e.g. example.com)", d)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("%q is not a domain name (e.g. example.com; an internationalised domain in its xn-- form)", d)
			}
		}
	}
	return d, nil
}

// SenderAllowed returns nil when a key with the sender domains allowed may send mail whose
// From address is at domain: allowed is empty (any domain), or names domain (compared without
// case, exactly: a subdomain must be listed itself). Otherwise the error says which domains the
// key may use.
func SenderAllowed(allowed []string, domain string) error {
	if len(allowed) == 0 {
		return nil
	}
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if slices.Contains(allowed, domain) {
		return nil
	}
	return fmt.Errorf("this API key may send only from %s, not from %s", strings.Join(allowed, ", "), domain)
}

// Settings are what a key may do: the part of a key its creator chooses besides its name.
type Settings struct {
	Scopes        []string
	SenderDomains []string
	RateLimit     float64 // messages per second; 0: no limit
	Burst         int     // 0: the default (see Burst)
}

// Problem is one thing wrong with Settings: Field is the JSON name of the setting, with the
// index of a list's item ("scopes[1]").
type Problem struct {
	Field   string
	Message string
}

// Limits of Settings.
const (
	MaxRateLimit = 1_000_000 // messages per second
	MaxBurst     = 1_000_000
)

// Normalize checks s and puts it in its stored form: scopes in the order of Scopes without
// repeats, domains lower-case without repeats, the default burst filled in when there is a
// rate limit. It returns every problem found (none: s is good).
func (s *Settings) Normalize() []Problem {
	var ps []Problem
	if len(s.Scopes) == 0 {
		ps = append(ps, Problem{"scopes", "at least one scope is required: " + strings.Join(Scopes, ", ")})
	}
	var scopes []string
	for i, sc := range s.Scopes {
		if err := CheckScope(sc); err != nil {
			ps = append(ps, Problem{fmt.Sprintf("scopes[%d]", i), err.Error()})
		}
	}
	for _, sc := range Scopes {
		if slices.Contains(s.Scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	s.Scopes = scopes
	var domains []string
	for i, d := range s.SenderDomains {
		n, err := NormalizeDomain(d)
		if err != nil {
			ps = append(ps, Problem{fmt.Sprintf("sender_domains[%d]", i), err.Error()})
		} else if !slices.Contains(domains, n) {
			domains = append(domains, n)
		}
	}
	s.SenderDomains = domains
	switch {
	case s.RateLimit < 0 || s.RateLimit > MaxRateLimit || s.RateLimit != s.RateLimit:
		ps = append(ps, Problem{"rate_limit", fmt.Sprintf("messages per second: from 0 (no limit) to %d", MaxRateLimit)})
	case s.Burst < 0 || s.Burst > MaxBurst:
		ps = append(ps, Problem{"burst", fmt.Sprintf("messages at once: from 1 to %d (0: a second's worth of the rate limit)", MaxBurst)})
	case s.Burst > 0 && s.RateLimit == 0:
		ps = append(ps, Problem{"burst", "a burst needs a rate_limit"})
	case s.RateLimit > 0:
		s.Burst = Burst(store.APIKey{RateLimit: s.RateLimit, Burst: s.Burst})
	}
	return ps
}
