// Package mail is postie's message model: address parsing and validation, header checks and
// the MIME builder. It does no I/O and keeps no state; everything here is safe for concurrent use.
//
// # Addresses
//
// ParseAddress takes what a user typed, lets net/mail handle the display name, and re-validates
// the bare address against the narrower RFC 5321 Mailbox grammar, because that is what must pass
// through SMTP. Domains are stored as A-labels, local parts exactly as given.
//
// # Building
//
// Build renders a Message as the bytes of SMTP DATA (before dot-stuffing, which belongs to the
// SMTP client). Every user-supplied header value is checked again, so a Message assembled by hand
// cannot smuggle CR/LF into the header section. The MIME tree follows email-rules §5.8, with
// layers dropped when they are not needed:
//
//	multipart/mixed                        only with regular attachments
//	├── multipart/alternative              only with HTML
//	│   ├── text/plain; charset=utf-8      quoted-printable, first (RFC 2046 §5.1.4)
//	│   └── multipart/related              only with inline (ContentID) attachments
//	│       ├── text/html; charset=utf-8   quoted-printable, last
//	│       └── inline parts               base64, Content-ID: <id>
//	└── attachments                        base64, file names as below
//
// Text and HTML are always quoted-printable and attachments base64, so the message is 7-bit and
// no line exceeds 76 characters outside the header section; line ends in bodies are normalised to
// CRLF. Boundaries start with "=_", which can occur in neither quoted-printable nor base64 output,
// so they never collide with content.
//
// # Attachment names
//
// A file name that is ASCII is written as is, quoted: filename="…" in Content-Disposition and
// name="…" in Content-Type, never folded inside the quotes (Python's compat32 parser keeps such a
// fold in the name), so its line may pass 78 characters, within the 998 limit. Any other is written the way mainstream clients write it, and so
// the way their readers expect (Thunderbird, Gmail and Apple Mail send this pair):
//
//	Content-Type: text/plain; name="=?utf-8?q?r=C3=A9sum=C3=A9_2026=2Etxt?="
//	Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9%202026.txt
//
// That is:
//
//   - In Content-Disposition, the RFC 2231 extended form alone, in numbered sections
//     (filename*0*=…; filename*1*=…) that each fit a 76-character line when the name is long.
//     It is the standard form (RFC 2183 with RFC 2231), and what Python's email, Go's mime,
//     Thunderbird and Gmail read first.
//   - In Content-Type, RFC 2047 encoded-words in the deprecated name parameter, for readers that
//     know neither RFC 2231 nor Content-Disposition (older Outlook). RFC 2047 §5 forbids
//     encoded-words in a quoted string, but these readers expect exactly that, and readers that
//     know RFC 2231 read filename* first.
//
// There is no ASCII fallback (filename="r_sum_ 2026.txt") beside filename*: RFC 2231 readers do
// not need one, and some readers take the fallback when both are present (Python's email does;
// munpack was reported to).
// TestPythonReadsNamesAndSubjects checks with Python's email (both its default policy and
// compat32) that names and long subjects read back exactly.
//
// Long non-ASCII header values are encoded-words whose first one fits on the field's first
// line, so a field is not folded right after "Subject:": readers keep the whitespace of that
// fold, and Python's email read such a Subject with a leading space.
//
// # Reports
//
// ParseReport reads what comes back to a bounce address (DSNs, ARF complaints, text bounces,
// automatic replies) into a Report, with go-message walking the MIME tree and a lenient reader
// for the report fields; BounceClass classifies a failure. ParseReport's doc gives the order of
// the checks, docs/operations.md ("How bounces are read") the pattern tables, and the samples
// in testdata/reports pin how real reports read.
//
// # Why not go-mail
//
// github.com/wneessen/go-mail cannot produce what email-rules §5 asks for: it nests multipart/alternative inside
// multipart/related (so text-only readers see the images) rather than related around the HTML
// only, and omits the type parameter RFC 2387 §3.1 requires; it writes generic headers sorted by
// name from a map, so custom headers cannot keep their order; and it writes a non-ASCII file
// name only as RFC 2047 encoded-words in Content-Disposition's quoted filename, where RFC 2047 §5
// forbids them and RFC 2231 readers (Go's mime, Python's compat32 parser) show them undecoded.
// gomail_test.go pins these findings so that an upgrade that fixes them is noticed. The writer
// here is encoding/base64, a quoted-printable encoder that writes the bytes mime/quotedprintable
// would (qp.go: it copies runs of plain bytes at once, where the standard writer takes them one
// by one), and about a hundred lines of header folding and multipart framing.
package mail

import (
	"strings"
	"time"
)

// Header is one custom header field.
type Header struct{ Name, Value string }

// Attachment is a file carried by a message.
type Attachment struct {
	// Filename is shown to the recipient, at most 255 characters; non-ASCII names are written
	// as the package documentation says (Attachment names). Required unless ContentID is set.
	Filename string
	// ContentType is the media type, for example "application/pdf"; empty means
	// application/octet-stream. multipart/* and message/* are refused.
	ContentType string
	// ContentID, when non-empty, makes this an inline part referenced from the HTML as
	// "cid:"+ContentID; it goes into the multipart/related part around the HTML (RFC 2387, 2392).
	// It is given without angle brackets.
	ContentID string
	Content   []byte
}

// Message is an email before rendering.
type Message struct {
	From        Address
	To, Cc, Bcc []Address // Bcc receives the message but is never written into it
	ReplyTo     *Address
	Subject     string
	// HTML and Text are the bodies; at least one is required. When Text is empty and HTML is
	// not, Build generates Text from HTML with htmltext.Convert, as templates do.
	HTML, Text  string
	Headers     []Header // custom headers, written in order after the standard ones
	Attachments []Attachment
	// MessageID is written as "<MessageID>"; it is given without angle brackets (see
	// NewMessageID) and Build fails if it is empty.
	MessageID string
	// Date is written in time.RFC1123Z layout in its own location; Build fails if it is zero.
	Date time.Time
	// List, when set, makes the message list mail: Build writes its List-Id,
	// List-Unsubscribe and List-Unsubscribe-Post fields (RFC 2919, RFC 2369, RFC 8058).
	List *List
	// FeedbackID, when set, is written as the Feedback-ID field of Gmail's feedback loop
	// ("campaign:stream:sender", email-rules §1.6): printable ASCII without spaces.
	FeedbackID string
}

// List is what makes a message list mail (email-rules §1.5).
type List struct {
	// ID is the List-Id's list-label.namespace (RFC 2919), e.g. "lst_01jd8x.shop.example",
	// written in angle brackets; "" writes no List-Id.
	ID string
	// Unsubscribe are the URIs of List-Unsubscribe in order of preference (the https one first,
	// then a mailto:), each written in angle brackets. They must be printable ASCII without
	// spaces, angle brackets or commas.
	Unsubscribe []string
	// OneClick writes "List-Unsubscribe-Post: List-Unsubscribe=One-Click" (RFC 8058): a POST
	// to the https URI unsubscribes at once.
	OneClick bool
}

// Recipients returns the envelope recipients: the Email of every To, Cc and Bcc address, in that
// order, without duplicates (compared case-insensitively; the first spelling wins). Addresses
// with an empty Email are skipped.
func (m Message) Recipients() []string {
	n := len(m.To) + len(m.Cc) + len(m.Bcc)
	out := make([]string, 0, n)
	seen := make(map[string]struct{}, n)
	for _, list := range [...][]Address{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			if a.Email == "" {
				continue
			}
			key := strings.ToLower(a.Email)
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			out = append(out, a.Email)
		}
	}
	return out
}
