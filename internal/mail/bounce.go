package mail

import (
	"regexp"
	"strings"
)

// BounceClass classifies a delivery failure by email-rules §4.5: action is a DSN Action ("" for
// an SMTP reply or a text bounce), status an enhanced status code ("" when there is none) and
// diagnostic the reply text. It returns "" for actions that are not failures (delivered,
// relayed, expanded), ClassSoft for delayed, and for failures:
//
//   - soft: any 4.x.x (but 4.7.x), X.2.2 mailbox full even as 5.2.2, Gmail's "receiving mail at a
//     rate" 5.2.1, mailbox-full or quota texts;
//   - hard: 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1 (disabled mailbox), and a 5.x.x without a
//     more telling code whose text says the user is unknown;
//   - block: 5.7.x and 4.7.x (policy, spam, reputation, authentication), and blocklist texts;
//   - message: 5.3.4, 5.2.3, 5.6.x, 5.5.x and message-too-large texts;
//   - undetermined: anything else (a 5xx with no code and an unknown text).
//
// A generic status (X.0.0) gives way to a more specific code of the same class in the
// diagnostic ("Status: 5.0.0" with "550 5.1.1 User unknown" is hard). Without any enhanced code
// the diagnostic's reply code gives the class digit (4xx soft; 5xx by its text). A success code
// (2.x.x, 2xx) is no failure ("") unless action is "failed": a report contradicting itself is
// undetermined, so a failed recipient always has a class.
func BounceClass(action, status, diagnostic string) string {
	failed := false
	switch strings.ToLower(strings.TrimSpace(action)) {
	case "failed":
		failed = true
	case "":
	case "delayed":
		return ClassSoft
	default:
		return ""
	}
	text := strings.ToLower(diagnostic)
	code := enhancedStatus(status)
	if inText := statusInText(diagnostic); inText != "" &&
		(code == "" || (strings.HasSuffix(code, ".0.0") && inText[0] == code[0])) {
		code = inText
	}
	if code == "" {
		switch replyCodeClass(text) {
		case '4':
			if blockedText(text) {
				return ClassBlock
			}
			return ClassSoft
		case '2':
			return successClass(failed)
		}
		return classifyText(text)
	}
	class, subject, detail := splitStatus(code)
	switch {
	case class == "2":
		return successClass(failed)
	case subject == "2" && detail == "2":
		return ClassSoft
	case subject == "7":
		return ClassBlock
	case class == "4":
		return ClassSoft
	}
	switch subject + "." + detail {
	case "1.1", "1.2", "1.3", "1.6", "1.10":
		return ClassHard
	case "2.1":
		if rateText(text) {
			return ClassSoft
		}
		return ClassHard
	case "3.4", "2.3":
		return ClassMessage
	}
	if subject == "5" || subject == "6" {
		return ClassMessage
	}
	return classifyText(text)
}

// successClass is the class of a success code: none, unless the report says the delivery
// failed all the same, which makes it undetermined.
func successClass(failed bool) string {
	if failed {
		return ClassUndetermined
	}
	return ""
}

// classifyText classifies a permanent failure by its text alone.
func classifyText(text string) string {
	switch {
	case IsUserUnknown(text):
		return ClassHard
	case mailboxFullText(text), rateText(text):
		return ClassSoft
	case blockedText(text):
		return ClassBlock
	case tooLargeText(text):
		return ClassMessage
	}
	return ClassUndetermined
}

// splitStatus splits "5.1.10" into "5", "1", "10".
func splitStatus(code string) (class, subject, detail string) {
	class, rest, _ := strings.Cut(code, ".")
	subject, detail, _ = strings.Cut(rest, ".")
	return class, subject, detail
}

var replyCodeRe = regexp.MustCompile(`(?:^|[^\d.])([245])\d\d(?:[ -]|$)`)

// replyCodeClass returns the first digit of the first SMTP reply code in text, 0 if none.
func replyCodeClass(text string) byte {
	if m := replyCodeRe.FindStringSubmatch(text); m != nil {
		return m[1][0]
	}
	return 0
}

// userUnknownTexts are texts that mean "no such mailbox" when no enhanced code says so.
var userUnknownTexts = []string{"user unknown", "unknown user", "no such user", "mailbox unavailable",
	"mailbox not found", "does not exist", "recipient not found", "invalid recipient", "address rejected",
	"no mailbox here by that name", "unknown recipient", "recipient unknown", "no such recipient",
	"recipnotfound", "mailbox does not exist", "account has been disabled", "account is disabled",
	"user not found", "no such mailbox", "user doesn't have"}

// IsUserUnknown reports whether a reply or bounce text says the mailbox does not exist
// ("user unknown", "does not exist", …). text may be in any case.
func IsUserUnknown(text string) bool {
	return containsAny(strings.ToLower(text), userUnknownTexts)
}

var mailboxFullTexts = []string{"mailbox full", "mailbox is full", "quota", "out of storage",
	"insufficient storage", "mailbox size limit", "storage space"}

func mailboxFullText(text string) bool { return containsAny(text, mailboxFullTexts) }

var blockedTexts = []string{"blocklist", "blacklist", "block list", "black list", "blocked",
	"spamhaus", "spamcop", "barracuda", "listed", "reputation", "spam", "rbl", "dnsbl",
	"not authorized", "access denied", "policy"}

func blockedText(text string) bool { return containsAny(text, blockedTexts) }

var tooLargeTexts = []string{"too large", "too big", "size exceeds", "exceeds the maximum size",
	"message size", "exceeded maximum size"}

func tooLargeText(text string) bool { return containsAny(text, tooLargeTexts) }

// rateText is Gmail's 5.2.1 "receiving mail at a rate that prevents additional messages".
func rateText(text string) bool {
	return strings.Contains(text, "receiving mail at a rate") || strings.Contains(text, "too quickly")
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
