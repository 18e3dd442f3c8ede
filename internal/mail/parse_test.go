package mail

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The postie bounce address and Message-ID the corpus's original messages carry.
const (
	corpusVERP  = "b-01jd3k0k9ry7w0m7r9q1f3b2zs4x2a-0123456789abcdef@bounce.example.com"
	corpusMsgID = "01jd3k0k9ry7w0m7r9q1f3b2zs.k3m5v7x9@example.com"
)

// wantRcpt is what a corpus case checks of one recipient.
type wantRcpt struct {
	Final, Action, Status, Class string
}

// corpusCase is what TestParseReportCorpus checks of one file of testdata/reports.
type corpusCase struct {
	kind         string
	rcpts        []wantRcpt
	reportingMTA string
	msgID        string // original Message-ID
	returnPath   string // original Return-Path
	to           []string
	mailFrom     string // Report.OriginalMailFrom
	feedbackType string
	rcptTo       []string // Feedback.OriginalRcptTo
	diagnostic   string   // a text the first recipient's DiagnosticCode contains
	subject      string   // the report's own Subject, when checked
}

// corpus names every file of testdata/reports with what ParseReport must read from it. The
// files are written from the examples of RFC 3464 (Appendix), RFC 5965 (Appendix B), RFC 6522
// and RFC 3834, and from the formats Gmail, Outlook/Exchange, Yahoo, Postfix, qmail, Exim and
// Sendmail send.
var corpus = map[string]corpusCase{
	// RFC 3464 Appendix: a failed delivery after 4.0.0 timeouts is a soft failure.
	"rfc3464-simple.eml": {kind: ReportDSN, reportingMTA: "cs.utk.edu",
		rcpts: []wantRcpt{{"louis@larry.slip.umd.edu", "failed", "4.0.0", ClassSoft}}},
	// RFC 3464 Appendix: three blocks, one delayed (no class), one undetermined, one user unknown.
	"rfc3464-multi-recipient.eml": {kind: ReportDSN, reportingMTA: "cs.utk.edu",
		rcpts: []wantRcpt{
			{"arathib@vnet.ibm.com", "failed", "5.0.0", ClassUndetermined},
			{"johnh@hpnjld.njd.hp.com", "delayed", "4.0.0", ""},
			{"wsnell@sdcc13.ucsd.edu", "failed", "5.0.0", ClassHard},
		},
		diagnostic: "550 'arathib@vnet.IBM.COM' is not a registered gateway user"},
	// Postfix: Final-Recipient before Original-Recipient, marked Auto-Submitted (still a DSN).
	"postfix-user-unknown.eml": {kind: ReportDSN, reportingMTA: "mail.example.org",
		rcpts: []wantRcpt{{"nosuchuser@example.org", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@example.org"},
		diagnostic: "550 5.1.1 <nosuchuser@example.org>: Recipient address rejected: User unknown in local recipient table"},
	// Gmail: the report part after a multipart/related human part, returned message/rfc822.
	"gmail-no-such-user.eml": {kind: ReportDSN, reportingMTA: "googlemail.com",
		rcpts: []wantRcpt{{"nosuchuser@gmail.com", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@gmail.com"},
		diagnostic: "550-5.1.1 The email account that you tried to reach does not exist."},
	// Gmail 5.2.2: mailbox full is soft even as a permanent code (RFC 3463 X.2.2).
	"gmail-over-quota.eml": {kind: ReportDSN, reportingMTA: "googlemail.com",
		rcpts: []wantRcpt{{"full@gmail.com", "failed", "5.2.2", ClassSoft}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"full@gmail.com"}},
	// Exchange Online: 5.1.10, "dns;" without a space, quoted-printable human part.
	"outlook-recipient-not-found.eml": {kind: ReportDSN, reportingMTA: "DM6PR11MB1234.namprd11.prod.outlook.com",
		rcpts: []wantRcpt{{"nosuchuser@contoso.com", "failed", "5.1.10", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@contoso.com"}},
	// A blocklist rejection: block, never a reason to suppress the recipient.
	"outlook-blocked-spamhaus.eml": {kind: ReportDSN, reportingMTA: "BL2PRD0710HT003.namprd07.prod.outlook.com",
		rcpts: []wantRcpt{{"reader@outlook.com", "failed", "5.7.1", ClassBlock}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"reader@outlook.com"}},
	// Postfix local delivery (what the Postfix round trip gets back): "X-Postfix;" diagnostic type.
	"postfix-local-unknown-user.eml": {kind: ReportDSN, reportingMTA: "postfix.test",
		rcpts: []wantRcpt{{"nosuchuser@postfix.test", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@postfix.test"},
		diagnostic: `unknown user: "nosuchuser"`},
	// Postfix delay warning: Action delayed, no class.
	"postfix-delayed.eml": {kind: ReportDSN, reportingMTA: "mail.example.org",
		rcpts: []wantRcpt{{"slow@example.net", "delayed", "4.4.1", ""}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"slow@example.net"}},
	// Exim, CRLF line ends: a generic 5.0.0 gives way to the diagnostic's 5.2.1 (disabled).
	"exim-dsn-crlf.eml": {kind: ReportDSN, reportingMTA: "mx.example.org",
		rcpts: []wantRcpt{{"gone@example.org", "failed", "5.0.0", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"gone@example.org"}},
	// RFC 6533: message/global-delivery-status, base64, utf-8 address type, message/global-headers.
	"rfc6533-global-dsn-base64.eml": {kind: ReportDSN, reportingMTA: "mx.example.de",
		rcpts: []wantRcpt{{"jürgen@example.de", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"jürgen@example.de"}},
	// Lower-case names without spaces, no blank line between blocks; failed 4.4.7 is soft.
	"no-blank-line-between-blocks.eml": {kind: ReportDSN, reportingMTA: "relay.example.net",
		rcpts: []wantRcpt{
			{"one@example.net", "failed", "5.1.1", ClassHard},
			{"two@example.net", "failed", "4.4.7", ClassSoft},
		}},
	// A DSN cut short in its last line, without a closing boundary: what was read counts.
	"truncated-dsn.eml": {kind: ReportDSN, reportingMTA: "relay.example.net",
		rcpts: []wantRcpt{{"cut@example.net", "failed", "5.1.2", ClassHard}}},

	// Amazon SES's DSN to the envelope sender: Action before Final-Recipient.
	"amazonses-dsn.eml": {kind: ReportDSN, reportingMTA: "a8-27.smtp-out.amazonses.com",
		rcpts: []wantRcpt{{"nosuchuser@example.net", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@example.net"}},
	// Yahoo's DSN for a policy rejection (5.7.9): block.
	"yahoo-dsn-policy.eml": {kind: ReportDSN, reportingMTA: "mta1234.mail.gq1.yahoo.com",
		rcpts: []wantRcpt{{"reader@yahoo.com", "failed", "5.7.9", ClassBlock}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"reader@yahoo.com"},
		diagnostic: "554 5.7.9 Message not accepted for policy reasons. See https://senders.yahooinc.com/error-codes"},
	// An mbox "From " line and a line without a colon in the header: skipped, the report read.
	"mbox-from-line-header.eml": {kind: ReportDSN, reportingMTA: "relay.example.net",
		rcpts: []wantRcpt{{"moved@example.net", "failed", "5.1.6", ClassHard}}},

	// RFC 5965 Appendix B.2; a Message-ID without angle brackets, an unparseable To.
	"rfc5965-abuse.eml": {kind: ReportARF, feedbackType: "abuse", mailFrom: "somespammer@example.net",
		rcptTo: []string{"user@example.com"}, msgID: "8787KJKJ3K4J3K4J3K4J3.mail@example.net",
		reportingMTA: "mail.example.com"},
	// Yahoo CFL: Original-Mail-From carries the bounce address, To redacted.
	"yahoo-cfl-abuse.eml": {kind: ReportARF, feedbackType: "abuse", mailFrom: corpusVERP,
		rcptTo: []string{"reader@yahoo.com"}, msgID: corpusMsgID, returnPath: corpusVERP,
		to: []string{"redacted@yahoo.com"}},
	// Microsoft JMRP: no Original-Rcpt-To; the recipient is in X-HmXmrOriginalRecipient.
	"microsoft-jmrp.eml": {kind: ReportARF, feedbackType: "abuse", rcptTo: []string{"reader@outlook.com"},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"reader@outlook.com"}},
	// RFC 6430 not-spam (case folded), text/rfc822-headers with an empty group as To.
	"arf-not-spam-headers-only.eml": {kind: ReportARF, feedbackType: "not-spam", mailFrom: corpusVERP,
		msgID: corpusMsgID, returnPath: corpusVERP},
	// No Feedback-Type: malformed, unknown, with what could be read.
	"malformed-arf-no-feedback-type.eml": {kind: ReportUnknown, mailFrom: corpusVERP, msgID: corpusMsgID},

	// RFC 3834 §5: Auto-Submitted with a parameter; its text would pass for a bounce.
	"rfc3834-vacation.eml": {kind: ReportAutoReply},
	// Outlook: "Automatic reply:" and Auto-Submitted: auto-generated, text mentioning a full mailbox.
	"outlook-automatic-reply.eml": {kind: ReportAutoReply},
	// X-Autoreply and Precedence: auto_reply.
	"autoreply-x-autoreply.eml": {kind: ReportAutoReply},
	// Only the subject says so.
	"autoreply-subject-only.eml": {kind: ReportAutoReply},

	// Yahoo's qmail-style text bounce: "554:" without an enhanced code, user-unknown text.
	"qmail-yahoo-text.eml": {kind: ReportText,
		rcpts: []wantRcpt{{"nosuchuser@yahoo.com", "failed", "", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@yahoo.com"},
		diagnostic: "554: delivery error: dd This user doesn't have a yahoo.com account"},
	// qmail-send: "(#5.1.1)" and the copy of the message below the text.
	"qmail-send.eml": {kind: ReportText,
		rcpts: []wantRcpt{{"nosuchuser@example.net", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nosuchuser@example.net"},
		diagnostic: "Sorry, no mailbox here by that name. (#5.1.1)"},
	// Exim's plain bounce: X-Failed-Recipients, marked Auto-Submitted (still a bounce).
	"exim-text.eml": {kind: ReportText,
		rcpts: []wantRcpt{{"gone@example.org", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"gone@example.org"}},
	// Exchange's text NDR with "Original message headers:".
	"exchange-ndr-text.eml": {kind: ReportText,
		rcpts: []wantRcpt{{"nobody@contoso.com", "failed", "5.1.1", ClassHard}},
		msgID: corpusMsgID, returnPath: corpusVERP, to: []string{"nobody@contoso.com"},
		diagnostic: "#550 5.1.1 RESOLVER.ADR.RecipNotFound"},
	// Sendmail's permanent fatal errors, no copy of the message.
	"sendmail-text.eml": {kind: ReportText,
		rcpts: []wantRcpt{{"former@example.edu", "failed", "5.1.1", ClassHard}}},
	// Sendmail's warning: a delay, no class.
	"sendmail-warning-text.eml": {kind: ReportText, rcpts: []wantRcpt{{"slow@example.edu", "delayed", "", ""}}},
	// ISO-8859-1 in the subject's encoded-words and in a quoted-printable body: read as UTF-8.
	"latin1-text-bounce.eml": {kind: ReportText, subject: "Unzustellbar: Ihre Bestellung über ¤",
		rcpts:      []wantRcpt{{"weg@example.de", "failed", "5.1.1", ClassHard}},
		diagnostic: "550 5.1.1 Empfänger unbekannt: user unknown"},
	// A postmaster's plain "mailbox is full": soft without any code.
	"mailbox-full-text.eml": {kind: ReportText,
		rcpts: []wantRcpt{{"full@isp.example.com", "failed", "", ClassSoft}},
		msgID: corpusMsgID, returnPath: corpusVERP},

	// Mail that is no report: HTML mentioning 550 and "does not exist", a person quoting errors.
	"unknown-newsletter.eml":            {kind: ReportUnknown},
	"unknown-user-text-from-person.eml": {kind: ReportUnknown},
	"header-only.eml":                   {kind: ReportUnknown},
	// RFC 8098 read receipt (a disposition notification): no bounce, even with Final-Recipient.
	"rfc8098-read-receipt.eml": {kind: ReportUnknown},
	// A success notice in plain text from the mail system: no failure, no bounce.
	"success-notice-text.eml": {kind: ReportUnknown},
	// A delivery-status part without Final- or Original-Recipient: malformed, what was read kept.
	"malformed-dsn-no-recipient.eml": {kind: ReportUnknown, reportingMTA: "relay.example.net",
		msgID: corpusMsgID, returnPath: corpusVERP},
	// A multipart/report without a boundary: malformed, never read as a text bounce.
	"malformed-report-no-boundary.eml": {kind: ReportUnknown},
}

func TestParseReportCorpus(t *testing.T) {
	t.Parallel()
	files := readCorpus(t)
	for name, data := range files {
		want, ok := corpus[name]
		if !ok {
			t.Errorf("%s: no case in corpus", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseReport(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("ParseReport: %v", err)
			}
			checkCorpusCase(t, r, want)
			checkReportBounds(t, r)
		})
	}
	for name := range corpus {
		if _, ok := files[name]; !ok {
			t.Errorf("corpus case %s has no file", name)
		}
	}
}

// readCorpus returns the files of testdata/reports by name.
func readCorpus(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "reports", "*.eml"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no corpus: %v", err)
	}
	files := map[string][]byte{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		files[filepath.Base(path)] = data
	}
	return files
}

func checkCorpusCase(t *testing.T, r *Report, want corpusCase) {
	t.Helper()
	if r.Kind != want.kind {
		t.Errorf("Kind = %q, want %q", r.Kind, want.kind)
	}
	var got []wantRcpt
	for _, rc := range r.Recipients {
		got = append(got, wantRcpt{rc.FinalRecipient, rc.Action, rc.Status, rc.Class})
	}
	if diff := cmp.Diff(want.rcpts, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	if want.diagnostic != "" && (len(r.Recipients) == 0 || !strings.Contains(r.Recipients[0].DiagnosticCode, want.diagnostic)) {
		t.Errorf("first DiagnosticCode = %q, want it to contain %q", firstDiagnostic(r), want.diagnostic)
	}
	if want.subject != "" && r.Subject != want.subject {
		t.Errorf("Subject = %q, want %q", r.Subject, want.subject)
	}
	if want.reportingMTA != "" && r.ReportingMTA != want.reportingMTA {
		t.Errorf("ReportingMTA = %q, want %q", r.ReportingMTA, want.reportingMTA)
	}
	if r.OriginalMessageID != want.msgID {
		t.Errorf("OriginalMessageID = %q, want %q", r.OriginalMessageID, want.msgID)
	}
	if r.OriginalReturnPath != want.returnPath {
		t.Errorf("OriginalReturnPath = %q, want %q", r.OriginalReturnPath, want.returnPath)
	}
	if want.to != nil {
		if diff := cmp.Diff(want.to, r.OriginalTo); diff != "" {
			t.Errorf("OriginalTo (-want +got):\n%s", diff)
		}
	}
	if r.OriginalMailFrom != want.mailFrom {
		t.Errorf("OriginalMailFrom = %q, want %q", r.OriginalMailFrom, want.mailFrom)
	}
	var fbType string
	var rcptTo []string
	if r.Feedback != nil {
		fbType, rcptTo = r.Feedback.FeedbackType, r.Feedback.OriginalRcptTo
	}
	if fbType != want.feedbackType {
		t.Errorf("FeedbackType = %q, want %q", fbType, want.feedbackType)
	}
	if diff := cmp.Diff(want.rcptTo, rcptTo); diff != "" {
		t.Errorf("Feedback.OriginalRcptTo (-want +got):\n%s", diff)
	}
}

func firstDiagnostic(r *Report) string {
	if len(r.Recipients) == 0 {
		return ""
	}
	return r.Recipients[0].DiagnosticCode
}

// TestParseReportNotAMessage: only input that is not a message at all is an error.
func TestParseReportNotAMessage(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"empty":       "",
		"blank lines": "\r\n\r\n  \n",
		"no header":   "this is not a header line\r\n\r\nbody\r\n",
		"binary":      "\x00\x01\x02\xff\xfe",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseReport(strings.NewReader(in))
			if !errors.Is(err, ErrNotMessage) || r != nil {
				t.Errorf("ParseReport = %v, %v; want ErrNotMessage", r, err)
			}
		})
	}
}

// TestReportFieldValues checks how single field values are read (RFC 3464 §2.1.2 typed fields,
// RFC 3463 status codes).
func TestReportFieldValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fn       func(string) string
		name, in string
		want     string
	}{
		{typedValue, "typed", "rfc822; user@example.net", "user@example.net"},
		{typedValue, "typed no space", "dns;mx.example.net", "mx.example.net"},
		{typedValue, "typed X-Postfix", `X-Postfix; unknown user: "x"`, `unknown user: "x"`},
		{typedValue, "untyped with semicolon", "550 5.1.1 no; really", "550 5.1.1 no; really"},
		{bareAddress, "angle", "<a@example.net>", "a@example.net"},
		{bareAddress, "display name", `"Ann" <a@example.net>`, "a@example.net"},
		{bareAddress, "comment", "a@example.net (Ann)", "a@example.net"},
		{bareAddress, "unclosed", "<a@example.net", "a@example.net"},
		{bareAddress, "empty", "", ""},
		{messageIDValue, "message id", " <x.y@example.com> (comment)", "x.y@example.com"},
		{messageIDValue, "message id bare", "x.y@example.com", "x.y@example.com"},
		{statusInText, "qmail", "Sorry, no mailbox here by that name. (#5.1.1)", "5.1.1"},
		{statusInText, "end of sentence", "Status 4.4.7.", "4.4.7"},
		{statusInText, "ip address", "host [192.0.2.5] said: 550 no", ""},
		{statusInText, "version", "Exim 4.96.1.2", ""},
		{statusInText, "date", "on 2.12.2026", ""},
		{statusInText, "three digit detail", "550 5.7.515 Access denied", "5.7.515"},
		{enhancedStatus, "status comment", "5.0.0 (permanent failure)", "5.0.0"},
		{enhancedStatus, "status garbage", "failed", ""},
		{clean, "control characters", "a\r\n\tb\x00c\x7f", "a b c"},
		{clean, "invalid utf-8", "a\xffb", "a\uFFFDb"},
	} {
		if got := tc.fn(tc.in); got != tc.want {
			t.Errorf("%s: %q → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}
