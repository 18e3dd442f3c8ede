package mail

import (
	"regexp"
	"strings"
)

// The pattern tables of ParseReport for mail without a report part. docs/operations.md ("How
// bounces are read") lists them; keep both in step.

// bounceSignatures are texts only bounces carry, each naming the software that writes it.
var bounceSignatures = []string{
	"this is the qmail-send program",                                           // qmail
	"this message was created automatically by mail delivery software",         // Exim
	"this is the mail system at host",                                          // Postfix
	"the original message was received at",                                     // Sendmail
	"----- the following addresses had permanent fatal errors -----",           // Sendmail
	"delivery has failed to these recipients or groups",                        // Exchange, Outlook
	"your message couldn't be delivered",                                       // Exchange Online
	"delivery to the following recipient",                                      // Gmail ("… recipient(s) failed permanently")
	"sorry, we were unable to deliver your message to the following address",   // Yahoo
	"i'm sorry to have to inform you that your message could not be delivered", // Postfix (older)
	"message could not be delivered to one or more recipients",
	"the following message to <",
}

// bounceSenders are local parts (and display-name words) of mail-system senders.
var bounceSenders = []string{"mailer-daemon", "postmaster", "mail delivery subsystem",
	"mail delivery system", "microsoftexchange", "mail administrator"}

// bounceSubjects are subject texts of bounces.
var bounceSubjects = []string{"undeliverable", "undelivered mail", "delivery status notification",
	"mail delivery failed", "delivery failure", "failure notice", "returned mail",
	"could not be delivered", "delivery failed", "nondeliverable", "non-delivery", "not delivered",
	"mail system error"}

// failureTexts are texts that say a delivery failed, beside the user-unknown texts.
var failureTexts = []string{"mailbox full", "mailbox is full", "quota", "out of storage",
	"permanent error", "permanent failure", "could not be delivered", "couldn't be delivered",
	"undeliverable", "delivery failed", "delivery has failed", "failed permanently"}

// delayTexts say the sender will keep trying: the report is a delay warning, not a failure.
var delayTexts = []string{"this is a warning message only", "this is a warning only", "delivery status notification (delay)",
	"delivery is delayed", "delivery has been delayed", "message delayed", "will retry",
	"will continue to try", "still trying", "warning: message", "delivery incomplete"}

// autoReplySubjects are vacation and out-of-office subjects.
var autoReplySubjects = []string{"out of office", "out of the office", "automatic reply",
	"auto-reply", "autoreply", "auto reply", "auto response", "autoresponse", "vacation",
	"abwesenheitsnotiz", "réponse automatique", "respuesta automática", "risposta automatica",
	"automatisch antwoord", "autosvar"}

// quotedHeaderRe matches the first field of an original header section quoted in a text bounce.
var quotedHeaderRe = regexp.MustCompile(`(?im)^(?:return-path|received|message-id|dkim-signature|mime-version|date|from|to|subject):`)

// qmailRecipientRe is qmail's (and old Postfix's) "<address>:" line.
var qmailRecipientRe = regexp.MustCompile(`(?m)^<([^<>\s]+@[^<>\s]+)>:?`)

var addressRe = regexp.MustCompile(`[A-Za-z0-9._%+=!#$&'*/?^{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+`)

// codeLineRe matches a line holding an SMTP reply code followed by an enhanced code.
var codeLineRe = regexp.MustCompile(`(?m)^.*(?:^|[^\d.])[245]\d\d[ -]#?[245]\.\d{1,3}\.\d{1,3}.*$`)

// textReport decides between an auto-reply, a text bounce and nothing, for a message without a
// report part.
func (p *reportParser) textReport() {
	text := p.text
	if len(strings.TrimSpace(string(text))) == 0 {
		text = []byte(stripTags(string(p.html)))
	}
	body := strings.ToValidUTF8(string(text), "\uFFFD")
	lower := strings.ToLower(body)
	failedRcpts := p.top.Get("X-Failed-Recipients")

	signature := containsAny(lower, bounceSignatures)
	fromSystem := failedRcpts != "" || containsAny(strings.ToLower(p.rep.From), bounceSenders)
	if !signature && !fromSystem && p.autoReply() {
		p.rep.Kind = ReportAutoReply
		return
	}

	// The failure part: the text before the quoted original message.
	failure, quoted := body, ""
	if loc := quotedHeaderRe.FindStringIndex(body); loc != nil {
		failure, quoted = body[:loc[0]], body[loc[0]:]
	}
	failureLower := strings.ToLower(failure)
	status := failureStatus(failure)
	diag := diagnosticLine(failure)
	bounceLike := fromSystem || containsAny(strings.ToLower(p.rep.Subject), bounceSubjects)
	failing := status != "" || IsUserUnknown(failureLower) || containsAny(failureLower, failureTexts)
	if !signature && !(bounceLike && failing) {
		return
	}
	if !p.original && quoted != "" {
		p.originalHeaders(lenientFields([]byte(quoted), true))
	}
	r := DSNRecipient{FinalRecipient: p.textRecipient(failedRcpts, failure), Status: status, DiagnosticCode: diag}
	if containsAny(failureLower, delayTexts) && !strings.HasPrefix(status, "5.") {
		r.Action = "delayed"
	} else {
		r.Action = "failed"
		r.Class = BounceClass(r.Action, status, diag)
	}
	p.rep.Kind = ReportText
	p.rep.Recipients = []DSNRecipient{r}
}

// autoReply reports whether the report's own header or subject marks an automatic reply
// (RFC 3834 §5, and the headers and subjects common autoresponders use).
func (p *reportParser) autoReply() bool {
	v, _, _ := strings.Cut(p.top.Get("Auto-Submitted"), ";")
	if v = strings.ToLower(leadingWord(v)); v != "" && v != "no" {
		return true
	}
	if p.top.Has("X-Autoreply") || p.top.Has("X-Autorespond") || p.top.Has("X-Autoresponder") {
		return true
	}
	if strings.EqualFold(strings.TrimSpace(p.top.Get("Precedence")), "auto_reply") {
		return true
	}
	subject := strings.ToLower(p.rep.Subject)
	return strings.HasPrefix(subject, "auto:") || containsAny(subject, autoReplySubjects)
}

// textRecipient is the address a text bounce names: X-Failed-Recipients, else a "<address>:"
// line, else the first address in the failure text that is neither the report's sender nor a
// mail-system mailbox.
func (p *reportParser) textRecipient(failedRcpts, failure string) string {
	if failedRcpts != "" {
		if list := addressList(failedRcpts); len(list) > 0 {
			return clean(list[0])
		}
	}
	if m := qmailRecipientRe.FindStringSubmatch(failure); m != nil {
		return clean(m[1])
	}
	from := strings.ToLower(bareAddress(p.rep.From))
	for _, a := range addressRe.FindAllString(failure, 50) {
		a = strings.TrimRight(a, ".")
		l := strings.ToLower(a)
		local, _, _ := strings.Cut(l, "@")
		if l == from || local == "mailer-daemon" || local == "postmaster" {
			continue
		}
		return clean(a)
	}
	return ""
}

// failureStatus is the first enhanced status code of a text that is not a success (2.x.x).
func failureStatus(text string) string {
	for _, m := range enhancedTextRe.FindAllStringSubmatch(text, 20) {
		if !strings.HasPrefix(m[1], "2.") {
			return m[1]
		}
	}
	return ""
}

// diagnosticLine is the line of the failure text holding the remote reply: one with a reply
// code and an enhanced code, else one with an enhanced code, else the first line with a failure
// text.
func diagnosticLine(failure string) string {
	if m := codeLineRe.FindString(failure); m != "" {
		return clean(m)
	}
	lines := strings.Split(failure, "\n")
	for _, l := range lines {
		if statusInText(l) != "" {
			return clean(l)
		}
	}
	for _, l := range lines {
		low := strings.ToLower(l)
		if IsUserUnknown(low) || mailboxFullText(low) {
			return clean(l)
		}
	}
	return ""
}

// stripTags turns HTML into rough text: tags removed, block ends as line ends.
func stripTags(html string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(html); i++ {
		c := html[i]
		switch {
		case c == '<':
			in = true
			rest := strings.ToLower(html[i+1 : min(len(html), i+4)])
			if strings.HasPrefix(rest, "br") || strings.HasPrefix(rest, "p") ||
				strings.HasPrefix(rest, "/p") || strings.HasPrefix(rest, "div") || strings.HasPrefix(rest, "/di") ||
				strings.HasPrefix(rest, "tr") || strings.HasPrefix(rest, "li") {
				b.WriteByte('\n')
			}
		case c == '>':
			in = false
		case !in:
			b.WriteByte(c)
		}
	}
	r := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "&nbsp;", " ", "&quot;", `"`, "&#39;", "'")
	return r.Replace(b.String())
}
