package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postie/postie/internal/transport"
)

// checkRelay connects to the relay the way delivery does (TLS or STARTTLS, EHLO, AUTH with the
// configured credentials), then QUITs without sending anything.
func checkRelay(ctx context.Context, o Options) Result {
	if o.Config.SMTPURL == "" {
		return Result{"relay", Warn, "no relay: the capture transport keeps every message and nothing is delivered",
			"set POSTIE_SMTP_URL to your relay (smtp://USER:PASSWORD@HOST:587) to deliver mail"}
	}
	r, err := o.Parts.ProbeRelay(ctx, o.Config.SMTPURL, o.Timeout)
	if err == nil {
		return Result{Check: "relay", Status: OK, Detail: relayDetail(r)}
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return Result{"relay", Fail, "POSTIE_SMTP_URL: " + err.Error(), "fix POSTIE_SMTP_URL (see docs/configuration.md, The relay URL)"}
	}
	addr := r.Addr
	detail := fmt.Sprintf("%s: %s failed: %s", addr, te.Stage, te.Text)
	if te.Code != 0 && !strings.HasPrefix(te.Text, fmt.Sprint(te.Code)) {
		detail = fmt.Sprintf("%s: %s failed: %d %s", addr, te.Stage, te.Code, te.Text)
	}
	fix := map[string]string{
		"connect": "check the host and port in POSTIE_SMTP_URL and that this machine may reach them (firewalls; many clouds block port 25, use 587)",
		"tls": "the relay must offer STARTTLS (or use smtps:// for TLS from the first byte on 465) with a certificate this machine trusts: " +
			"?ca=FILE trusts a private CA; tls=none only for a relay on this host or a trusted network",
		"helo": "the relay refused the greeting: set ?helo=NAME in POSTIE_SMTP_URL to a name it accepts",
		"auth": "the relay refused the user name and password in POSTIE_SMTP_URL: check them (percent-encode special characters such as @ : / in the password)",
	}[te.Stage]
	if fix == "" {
		fix = "see the relay's reply above"
	}
	return Result{"relay", Fail, detail, fix}
}

func relayDetail(r RelayProbe) string {
	s := r.Addr + " answers"
	if r.TLS != "" {
		s += ", " + r.TLS
	} else {
		s += ", no TLS (tls=none)"
	}
	if r.Auth {
		s += ", AUTH accepted"
	} else {
		s += ", no AUTH configured"
	}
	return s
}
