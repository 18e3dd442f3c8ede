package mail

// Report is what an inbound mail to the bounce domain says (email-rules §4): a delivery status
// notification (RFC 3464 in an RFC 6522 multipart/report), a feedback report (RFC 5965 ARF), a
// non-standard bounce recognised by its text, or an automatic reply. ParseReport makes it.
type Report struct {
	Kind string // ReportDSN, ReportARF, ReportText, ReportAutoReply or ReportUnknown

	// Per-message fields of a DSN.
	ReportingMTA       string // "mx.example.net" (the type "dns;" removed)
	OriginalEnvelopeID string
	// Recipients: one per DSN recipient block, or the one a text bounce names.
	Recipients []DSNRecipient

	// Feedback is the ARF report, for Kind ReportARF.
	Feedback *Feedback

	// The original message, as far as the report returned it (message/rfc822,
	// text/rfc822-headers, or the quoted headers of a text bounce): its Message-ID (without angle
	// brackets), Return-Path and the envelope sender the report names (ARF Original-Mail-From),
	// any of which may carry a postie bounce address or message id.
	OriginalMessageID  string
	OriginalReturnPath string
	OriginalMailFrom   string
	OriginalTo         []string // bare addresses of the original To header, when returned

	// Subject and From of the report itself, for the record.
	Subject, From string
}

// Kinds of Report.
const (
	ReportDSN       = "dsn"
	ReportARF       = "arf"
	ReportText      = "text"       // a bounce without a delivery-status part, recognised by its text
	ReportAutoReply = "auto_reply" // RFC 3834 Auto-Submitted: auto-replied, X-Autoreply, vacation notices
	ReportUnknown   = "unknown"    // none of these: recorded, never acted on
)

// DSNRecipient is one per-recipient block of a DSN (or what a text bounce says of its recipient).
type DSNRecipient struct {
	FinalRecipient    string // bare address ("rfc822;" removed)
	OriginalRecipient string // bare address, "" when absent
	Action            string // failed, delayed, delivered, relayed, expanded (lowercased)
	Status            string // enhanced status code, e.g. "5.1.1"
	DiagnosticCode    string // e.g. "smtp; 550 5.1.1 User unknown" with the type removed: "550 5.1.1 User unknown"
	RemoteMTA         string
	Class             string // the bounce class (BounceClass), "" for actions other than failed
}

// Feedback is the machine-readable part of an ARF report.
type Feedback struct {
	FeedbackType     string // abuse, fraud, virus, other, not-spam, auth-failure (lowercased)
	UserAgent        string
	Version          string
	OriginalMailFrom string   // bare address
	OriginalRcptTo   []string // bare addresses (often redacted or absent)
	ArrivalDate      string
	SourceIP         string
	ReportedDomain   string
}

// Bounce classes returned by BounceClass; the same words as store.Bounce….
const (
	ClassHard         = "hard"
	ClassSoft         = "soft"
	ClassBlock        = "block"
	ClassMessage      = "message"
	ClassUndetermined = "undetermined"
)
