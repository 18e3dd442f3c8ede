package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBounceClass checks email-rules §4.5 (and the reply table of §2.3) row by row.
func TestBounceClass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		action, status, diagnostic, want string
	}{
		// Hard: the address itself is bad.
		{"failed", "5.1.1", "550 5.1.1 User unknown", ClassHard},
		{"failed", "5.1.2", "550 5.1.2 Host unknown", ClassHard},
		{"failed", "5.1.3", "553 5.1.3 Bad address syntax", ClassHard},
		{"failed", "5.1.6", "550 5.1.6 Mailbox moved", ClassHard},
		{"failed", "5.1.10", "556 5.1.10 Recipient address has null MX", ClassHard},
		{"failed", "5.2.1", "550 5.2.1 The email account that you tried to reach is disabled.", ClassHard},
		{"FAILED", "5.1.1 (bad destination mailbox)", "", ClassHard},
		{"failed", "5.0.0", "550 5.1.1 <a@b>: Recipient address rejected: User unknown", ClassHard}, // generic status, specific diagnostic
		{"failed", "5.0.0", "550 user unknown", ClassHard},
		{"failed", "", "550 No such user here", ClassHard},
		{"", "", "550 Requested action not taken: mailbox unavailable", ClassHard},
		{"failed", "5.4.1", "550 5.4.1 Recipient address rejected: Access denied. RecipNotFound", ClassHard},

		// Soft: try again later, count towards the soft limit.
		{"failed", "4.0.0", "426 connection timed out", ClassSoft},
		{"failed", "4.4.7", "message expired", ClassSoft},
		{"failed", "4.2.2", "452 4.2.2 The email account that you tried to reach is over quota.", ClassSoft},
		{"failed", "5.2.2", "552 5.2.2 The recipient's inbox is out of storage space", ClassSoft},
		{"failed", "5.2.1", "550 5.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", ClassSoft},
		{"failed", "", "552 Mailbox full", ClassSoft},
		{"", "", "452 Too many messages, try later", ClassSoft},
		{"failed", "5.0.0", "554 delivery error: mailbox is over quota", ClassSoft},
		{"delayed", "4.4.1", "connect timed out", ClassSoft},

		// Block: policy, reputation, authentication; never the recipient's fault.
		{"failed", "5.7.1", "550 5.7.1 Service unavailable, Client host [192.0.2.10] blocked using Spamhaus", ClassBlock},
		{"failed", "5.7.26", "550 5.7.26 This mail has been blocked because the sender is unauthenticated.", ClassBlock},
		{"failed", "5.7.1", "550 5.7.1 Recipient address rejected: user unknown", ClassBlock}, // the code wins
		{"failed", "4.7.0", "421 4.7.0 Try again later, closing connection.", ClassBlock},
		{"failed", "", "554 Your IP is listed at zen.spamhaus.org", ClassBlock},
		{"failed", "5.0.0", "550 rejected: poor reputation", ClassBlock},

		// Message: this message cannot be delivered as built.
		{"failed", "5.3.4", "552 5.3.4 Message size exceeds fixed maximum message size", ClassMessage},
		{"failed", "5.2.3", "552 5.2.3 Message exceeds maximum size", ClassMessage},
		{"failed", "5.6.0", "554 5.6.0 Message is not RFC 5322 compliant", ClassMessage},
		{"failed", "5.5.2", "501 5.5.2 Syntax error", ClassMessage},
		{"failed", "", "552 Message too large", ClassMessage},

		// Undetermined: a permanent failure that says nothing telling.
		{"failed", "5.0.0", "550 'arathib@vnet.IBM.COM' is not a registered gateway user", ClassUndetermined},
		{"failed", "", "554 Transaction failed", ClassUndetermined},
		{"failed", "", "", ClassUndetermined},
		{"failed", "5.4.6", "554 5.4.6 Routing loop detected", ClassUndetermined},

		// Not failures.
		{"delivered", "2.0.0", "250 ok", ""},
		{"relayed", "2.0.0", "", ""},
		{"expanded", "2.0.0", "", ""},
		{"failed", "2.0.0", "250 2.0.0 ok", ClassUndetermined}, // contradicts itself
		{"", "", "250 2.0.0 Ok: queued", ""},
	} {
		if got := BounceClass(tc.action, tc.status, tc.diagnostic); got != tc.want {
			t.Errorf("BounceClass(%q, %q, %q) = %q, want %q", tc.action, tc.status, tc.diagnostic, got, tc.want)
		}
	}
}

func TestIsUserUnknown(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		"550 User Unknown":                                         true,
		"Sorry, no mailbox here by that name":                      true,
		"The email account that you tried to reach does not exist": true,
		"RESOLVER.ADR.RecipNotFound; not found":                    true,
		"452 Mailbox full":                                         false,
		"554 Message rejected as spam":                             false,
	} {
		if got := IsUserUnknown(text); got != want {
			t.Errorf("IsUserUnknown(%q) = %v, want %v", text, got, want)
		}
	}
}

// TestPatternTablesDocumented: docs/operations.md ("How bounces are read") lists every pattern
// ParseReport and BounceClass use, so the documented table is the one in force.
func TestPatternTablesDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## How bounces are read")
	section, _, _ = strings.Cut(section, "\n## ")
	section = strings.ToLower(section)
	for name, table := range map[string][]string{
		"bounceSignatures": bounceSignatures, "bounceSenders": bounceSenders, "bounceSubjects": bounceSubjects,
		"failureTexts": failureTexts, "delayTexts": delayTexts, "autoReplySubjects": autoReplySubjects,
		"userUnknownTexts": userUnknownTexts, "mailboxFullTexts": mailboxFullTexts,
		"blockedTexts": blockedTexts, "tooLargeTexts": tooLargeTexts,
	} {
		for _, s := range table {
			if !strings.Contains(section, strings.ToLower(s)) {
				t.Errorf("%s: %q is not in docs/operations.md's How bounces are read", name, s)
			}
		}
	}
}
