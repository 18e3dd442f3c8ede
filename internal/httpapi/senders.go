package httpapi

import (
	"context"
	"strings"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
)

// A key with sender domains may only make mail go out from them. Messages are checked as they
// are composed (message.ComposeParams.SenderDomains); what sends later is checked here, when a
// key makes it or sets it going: a campaign created, changed, started, resumed or tested, a
// trigger created or changed, a message retried.

// fromAllowed returns nil when the request's key may send from from ("" stands for the server's
// default sender), and otherwise a 403 located at loc.from naming the domains the key may use. A
// From that does not parse is left to the validation that names it.
func (s *Server) fromAllowed(ctx context.Context, loc, from string) error {
	domains := apiKeyFrom(ctx).SenderDomains
	if len(domains) == 0 {
		return nil
	}
	if from == "" {
		from = s.cfg.DefaultFrom
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil
	}
	if err := apikey.SenderAllowed(domains, a.Email[strings.LastIndexByte(a.Email, '@')+1:]); err != nil {
		return problemError(loc, message.KindForbidden, []message.Problem{{Field: "from", Message: err.Error(), Value: from}})
	}
	return nil
}

// campaignFromAllowed checks the From of campaign cmpID as fromAllowed does; a campaign that
// cannot be read is left to the action, which says why.
func (s *Server) campaignFromAllowed(ctx context.Context, cmpID string) error {
	if len(apiKeyFrom(ctx).SenderDomains) == 0 {
		return nil
	}
	c, err := s.campaigns.Get(ctx, cmpID)
	if err != nil {
		return nil
	}
	return s.fromAllowed(ctx, "campaign", c.From)
}
