package doctor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/postie/postie/internal/mail"
)

// checkDNS looks up what receivers check of the sending domains: SPF and DMARC of POSTIE_FROM's
// domain and of the sending domains of POSTIE_BOUNCE_DOMAINS, SPF and MX of the bounce domains
// (the envelope sender's domain, where bounces come back).
func checkDNS(ctx context.Context, o Options) []Result {
	var sending []string
	if o.Config.From != "" {
		if a, err := mail.ParseAddress(o.Config.From); err == nil {
			if _, d, ok := strings.Cut(a.Email, "@"); ok {
				sending = append(sending, strings.ToLower(d))
			}
		}
	}
	per, bounce, _ := o.Config.BounceDomainMap()
	for _, from := range slices.Sorted(maps.Keys(per)) {
		if !slices.Contains(sending, from) {
			sending = append(sending, from)
		}
	}
	if len(sending) == 0 && len(bounce) == 0 {
		return []Result{{"dns", Warn, "no sending domain to check (no POSTIE_FROM, no bounce domain)",
			"set POSTIE_FROM, so messages without a from have a sender and its domain can be checked"}}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var out []Result
	for _, d := range sending {
		out = append(out, checkSPF(ctx, o.Resolver, d), checkDMARC(ctx, o.Resolver, d))
	}
	for _, d := range bounce {
		if !slices.Contains(sending, d) {
			out = append(out, checkSPF(ctx, o.Resolver, d))
		}
		out = append(out, checkMX(ctx, o.Resolver, d))
	}
	return out
}

// txt returns the TXT records of name that begin with prefix (case-insensitively); a name that
// does not exist has none.
func txt(ctx context.Context, r *net.Resolver, name, prefix string) ([]string, error) {
	recs, err := r.LookupTXT(ctx, name)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range recs {
		if len(t) >= len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) {
			out = append(out, t)
		}
	}
	return out, nil
}

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func lookupFailed(name string, err error) Result {
	return Result{"dns", Warn, fmt.Sprintf("%s: lookup failed: %v", name, err), "check this machine's resolver, or that the domain's name servers answer"}
}

func checkSPF(ctx context.Context, r *net.Resolver, domain string) Result {
	recs, err := txt(ctx, r, domain, "v=spf1")
	switch {
	case err != nil:
		return lookupFailed(domain, err)
	case len(recs) == 0:
		return Result{"dns", Warn, domain + ": no SPF record",
			fmt.Sprintf("publish a TXT record at %s: \"v=spf1 include:<your relay's SPF domain> ~all\" (Gmail and Yahoo require SPF for bulk mail)", domain)}
	case len(recs) > 1:
		return Result{"dns", Fail, fmt.Sprintf("%s: %d SPF records: receivers treat that as a permanent error (RFC 7208 §4.5)", domain, len(recs)),
			"merge them into one TXT record starting v=spf1"}
	}
	return Result{Check: "dns", Status: OK, Detail: fmt.Sprintf("%s: SPF %q", domain, recs[0])}
}

func checkDMARC(ctx context.Context, r *net.Resolver, domain string) Result {
	name := "_dmarc." + domain
	recs, err := txt(ctx, r, name, "v=DMARC1")
	switch {
	case err != nil:
		return lookupFailed(name, err)
	case len(recs) == 0:
		return Result{"dns", Warn, domain + ": no DMARC record at " + name,
			fmt.Sprintf("publish a TXT record at %s: \"v=DMARC1; p=none; rua=mailto:dmarc@%s\" (Gmail and Yahoo require one for bulk mail)", name, domain)}
	case len(recs) > 1:
		return Result{"dns", Fail, fmt.Sprintf("%s: %d DMARC records: receivers ignore them all (RFC 7489 §6.6.3)", name, len(recs)),
			"keep one TXT record starting v=DMARC1"}
	}
	return Result{Check: "dns", Status: OK, Detail: fmt.Sprintf("%s: DMARC %q", domain, recs[0])}
}

func checkMX(ctx context.Context, r *net.Resolver, domain string) Result {
	mxs, err := r.LookupMX(ctx, domain)
	if err != nil && !notFound(err) {
		return lookupFailed(domain, err)
	}
	var hosts []string
	for _, mx := range mxs {
		if h := strings.TrimSuffix(mx.Host, "."); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return Result{"dns", Fail, domain + ": bounce domain without an MX record: bounces cannot come back, and receivers may refuse mail from it",
			fmt.Sprintf("publish an MX record for %s pointing at the host of postie's inbound listener (POSTIE_INBOUND_LISTEN)", domain)}
	}
	return Result{Check: "dns", Status: OK, Detail: fmt.Sprintf("%s: MX %s", domain, strings.Join(hosts, ", "))}
}
