package message

import (
	"cmp"
	"html"
	"strings"

	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
)

// Broadcast mail is list mail (email-rules §1.5, RFC 8058): every broadcast message carries
// List-Unsubscribe with a signed one-click link for its one recipient, List-Unsubscribe-Post
// and List-Id, and an HTML body that shows no unsubscribe link gets a footer with the link and
// the sender's postal address (CAN-SPAM). The links are made by a Linker (package audience);
// without one (BroadcastConfig.Links nil) broadcast messages are composed as any other.

// Linker makes the signed links of one recipient of a broadcast message.
type Linker interface {
	// BroadcastLinks returns the one-click unsubscribe URL and the preferences URL of recipient
	// (a bare address, lowercased) for the message msgID sent for listID ("" for none).
	BroadcastLinks(recipient, listID, msgID string) render.Links
}

// BroadcastConfig configures the list headers and footer of broadcast mail.
type BroadcastConfig struct {
	Links Linker
	// PostalAddress is the sender's postal address, shown in the footer; while it is empty,
	// broadcast messages are refused (CAN-SPAM requires it in every one).
	PostalAddress string
	// Mailto, when set, is added to List-Unsubscribe as mailto:Mailto?subject=unsubscribe.
	Mailto string
	// FeedbackSender, when set, closes the Feedback-ID field of every broadcast message
	// (Gmail's feedback loop, email-rules §1.6): "{campaign}:broadcast:{FeedbackSender}", or
	// "broadcast:{FeedbackSender}" for a message of no campaign, so complaint rates are
	// reported per campaign.
	FeedbackSender string
}

// feedbackID is the Feedback-ID of a message of stream sent for campaignID ("" for none), ""
// unless it is broadcast mail and a FeedbackSender is configured.
func (s *Service) feedbackID(stream, campaignID string) string {
	sender := s.cfg.Broadcast.FeedbackSender
	if stream != store.StreamBroadcast || sender == "" {
		return ""
	}
	if campaignID != "" {
		return campaignID + ":" + stream + ":" + sender
	}
	return stream + ":" + sender
}

// broadcastLinks checks what a broadcast message needs before it is rendered and returns its
// links: exactly one recipient (each recipient gets their own link) and a configured postal
// address. It returns zero Links for other streams, or when no Linker is configured.
func (s *Service) broadcastLinks(pr *problems, stream string, m *mail.Message, listID, msgID string) render.Links {
	bc := s.cfg.Broadcast
	if stream != store.StreamBroadcast || bc.Links == nil {
		return render.Links{}
	}
	if bc.PostalAddress == "" {
		pr.add("stream", "broadcast mail must show the sender's postal address: set POSTIE_POSTAL_ADDRESS first", stream)
	}
	rcpts := m.Recipients()
	if len(rcpts) != 1 {
		if len(rcpts) > 1 {
			pr.add("to", "a broadcast message has exactly one recipient (to, cc and bcc together), so that each gets their own unsubscribe link", len(rcpts))
		}
		return render.Links{}
	}
	return bc.Links.BroadcastLinks(strings.ToLower(rcpts[0]), listID, msgID)
}

// listMail makes m list mail with links: its List-* fields, and the footer where the HTML (or
// the text, when there is no HTML) shows no unsubscribe link.
func (s *Service) listMail(m *mail.Message, links render.Links, listID string) {
	if links.UnsubscribeURL == "" {
		return
	}
	bc := s.cfg.Broadcast
	l := &mail.List{Unsubscribe: []string{links.UnsubscribeURL}, OneClick: true}
	if bc.Mailto != "" {
		l.Unsubscribe = append(l.Unsubscribe, "mailto:"+bc.Mailto+"?subject=unsubscribe")
	}
	label := cmp.Or(listID, "broadcast")
	if domain := domainOf(m.From.Email); domain != "" {
		l.ID = strings.ToLower(label) + "." + domain
	}
	m.List = l

	shows := func(body string) bool {
		return strings.Contains(body, links.UnsubscribeURL) || strings.Contains(body, html.EscapeString(links.UnsubscribeURL)) ||
			links.PreferencesURL != "" && (strings.Contains(body, links.PreferencesURL) || strings.Contains(body, html.EscapeString(links.PreferencesURL)))
	}
	if m.HTML != "" && !shows(m.HTML) {
		m.HTML = withHTMLFooter(m.HTML, footerHTML(links.UnsubscribeURL, bc.PostalAddress))
	}
	if m.Text != "" && !shows(m.Text) {
		m.Text = strings.TrimRight(m.Text, "\r\n") + "\n\n-- \nUnsubscribe: " + links.UnsubscribeURL + "\n" + bc.PostalAddress + "\n"
	}
}

// footerHTML is the footer of broadcast HTML that has no unsubscribe link of its own.
func footerHTML(unsubscribe, postal string) string {
	addr := strings.ReplaceAll(html.EscapeString(strings.TrimSpace(postal)), "\n", "<br>")
	return `<div style="margin-top:24px;padding-top:12px;border-top:1px solid #ddd;font-size:12px;color:#555;text-align:center">` +
		`<p style="margin:0 0 8px"><a href="` + html.EscapeString(unsubscribe) + `" style="color:#555">Unsubscribe</a></p>` +
		`<p style="margin:0">` + addr + `</p></div>`
}

// withHTMLFooter puts footer before the document's closing body tag, or at its end.
func withHTMLFooter(doc, footer string) string {
	if i := strings.LastIndex(strings.ToLower(doc), "</body>"); i >= 0 {
		return doc[:i] + footer + doc[i:]
	}
	return doc + footer
}
