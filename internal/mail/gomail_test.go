package mail

import (
	"bytes"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"testing"

	gomail "github.com/wneessen/go-mail"
)

// TestGoMailLimits pins why Build does not use github.com/wneessen/go-mail for MIME writing (see
// the package documentation). If a go-mail upgrade makes one of these fail, go-mail may have
// gained what we need, and Build could be reconsidered.
func TestGoMailLimits(t *testing.T) {
	t.Parallel()
	m := gomail.NewMsg()
	if err := m.From("news@shop.example"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("ann@example.com"); err != nil {
		t.Fatal(err)
	}
	m.Subject("Your order")
	m.SetDateWithValue(testDate)
	m.SetMessageIDWithValue("id@shop.example")
	m.SetGenHeader("X-Second", "2")
	m.SetGenHeader("X-First", "1")
	m.SetBodyString(gomail.TypeTextPlain, "text")
	m.AddAlternativeString(gomail.TypeTextHTML, `<img src="cid:logo.png">`)
	if err := m.EmbedReader("logo.png", bytes.NewReader(fakePNG())); err != nil {
		t.Fatal(err)
	}
	if err := m.AttachReader("Übersicht.pdf", strings.NewReader("%PDF")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.String()

	msg, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	root := parseEntity(t, textproto.MIMEHeader(msg.Header), msg.Body)
	// email-rules §5.8 wants multipart/alternative(text/plain,multipart/related(text/html,image/png)).
	if got, want := root.tree(), "multipart/mixed(multipart/related(multipart/alternative(text/plain,text/html),image/png),application/pdf)"; got != want {
		t.Errorf("go-mail tree = %s, was %s", got, want)
	}
	// RFC 2387 §3.1 requires the type parameter on multipart/related; go-mail leaves it out.
	root.walk(func(e *entity) {
		if e.mediaType == "multipart/related" && e.typeParam != "" {
			t.Errorf("go-mail now writes multipart/related; type=%q", e.typeParam)
		}
	})
	// Generic headers are written sorted by name, not in the order they were set.
	if strings.Index(raw, "X-First:") > strings.Index(raw, "X-Second:") {
		t.Error("go-mail now keeps header order")
	}
	// Filenames are only RFC 2047 encoded-words inside Content-Disposition's quoted filename,
	// which RFC 2047 §5 forbids, with no RFC 2231 form.
	if !strings.Contains(raw, `filename="=?UTF-8?q?=C3=9Cbersicht.pdf?="`) {
		t.Error("go-mail no longer writes encoded-words in filename parameters")
	}
	// It advertises itself unless told not to.
	if !strings.Contains(raw, "User-Agent: go-mail") || !strings.Contains(raw, "X-Mailer: go-mail") {
		t.Error("go-mail no longer adds User-Agent and X-Mailer by default")
	}
}
