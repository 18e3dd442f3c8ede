package mail

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseReport: whatever arrives at the bounce domain, ParseReport never panics, errs only
// with ErrNotMessage, and returns a report within its documented bounds.
func FuzzParseReport(f *testing.F) {
	for _, data := range readCorpus(f) {
		f.Add(data)
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=a\r\n\r\n--a\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\r\n--a--\r\n"))
	f.Add([]byte("Content-Type: message/delivery-status\n\nFinal-Recipient: x\nStatus: 9.9.9\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotMessage) || r != nil {
				t.Fatalf("ParseReport = %v, %v", r, err)
			}
			return
		}
		checkReportBounds(t, r)
	})
}

// TestParseReportDamaged runs ParseReport on damaged copies of the corpus (cut short, bytes
// changed, lines dropped or doubled), deterministically, so every test run covers some of what
// the fuzzer explores.
func TestParseReportDamaged(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for name, data := range readCorpus(t) {
		for i := range 40 {
			damaged := damage(rng, data)
			r, err := ParseReport(bytes.NewReader(damaged))
			if err != nil {
				if !errors.Is(err, ErrNotMessage) || r != nil {
					t.Fatalf("%s #%d: ParseReport = %v, %v", name, i, r, err)
				}
				continue
			}
			checkReportBounds(t, r)
		}
	}
}

func damage(rng *rand.Rand, data []byte) []byte {
	d := bytes.Clone(data)
	switch rng.IntN(4) {
	case 0: // cut short
		return d[:rng.IntN(len(d)+1)]
	case 1: // bytes changed
		for range 1 + rng.IntN(8) {
			const noise = "\x00\r\n:;<>-= \xff@."
			d[rng.IntN(len(d))] = noise[rng.IntN(len(noise))]
		}
		return d
	case 2: // a line dropped
		lines := bytes.SplitAfter(d, []byte("\n"))
		i := rng.IntN(len(lines))
		return bytes.Join(append(lines[:i:i], lines[i+1:]...), nil)
	default: // a line doubled
		lines := bytes.SplitAfter(d, []byte("\n"))
		i := rng.IntN(len(lines))
		return bytes.Join(append(lines[:i+1:i+1], lines[i:]...), nil)
	}
}

// checkReportBounds checks what ParseReport promises of any report.
func checkReportBounds(t *testing.T, r *Report) {
	t.Helper()
	switch r.Kind {
	case ReportDSN, ReportText:
		if len(r.Recipients) == 0 {
			t.Fatalf("%s report without recipients", r.Kind)
		}
	case ReportARF:
		if r.Feedback == nil || r.Feedback.FeedbackType == "" {
			t.Fatal("ARF report without a Feedback-Type")
		}
	case ReportAutoReply, ReportUnknown:
		if len(r.Recipients) != 0 {
			t.Fatalf("%s report with recipients %v", r.Kind, r.Recipients)
		}
	default:
		t.Fatalf("Kind %q", r.Kind)
	}
	if len(r.Recipients) > maxReportRecipients {
		t.Fatalf("%d recipients", len(r.Recipients))
	}
	values := []string{r.ReportingMTA, r.OriginalEnvelopeID, r.OriginalMessageID, r.OriginalReturnPath,
		r.OriginalMailFrom, r.Subject, r.From}
	values = append(values, r.OriginalTo...)
	for _, rc := range r.Recipients {
		if rc.FinalRecipient == "" && r.Kind == ReportDSN {
			t.Fatal("DSN recipient without an address")
		}
		if (rc.Class != "") != (rc.Action == "failed") {
			t.Fatalf("recipient %+v: Class must be set exactly for failed", rc)
		}
		values = append(values, rc.FinalRecipient, rc.OriginalRecipient, rc.Action, rc.Status, rc.DiagnosticCode, rc.RemoteMTA)
	}
	if fb := r.Feedback; fb != nil {
		values = append(values, fb.FeedbackType, fb.UserAgent, fb.Version, fb.OriginalMailFrom, fb.ArrivalDate,
			fb.SourceIP, fb.ReportedDomain)
		values = append(values, fb.OriginalRcptTo...)
	}
	for _, v := range values {
		if len(v) > maxReportField || !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\r\n\t\x7f") {
			t.Fatalf("value %q is not clean", v)
		}
	}
}
