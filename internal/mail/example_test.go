package mail_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/postie/postie/internal/mail"
)

func ExampleParseAddress() {
	for _, s := range []string{`"Doe, J" <j@bücher.de>`, "a@", "a b@x.com"} {
		a, err := mail.ParseAddress(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%q %s\n", a.Name, a.Email)
	}
	// Output:
	// "Doe, J" j@xn--bcher-kva.de
	// invalid address "a@": missing domain
	// invalid address "a b@x.com": contains a space
}

func ExampleAddress_String() {
	fmt.Println(mail.Address{Name: "Müller, Hans", Email: "hm@example.com"})
	// Output: =?utf-8?q?M=C3=BCller=2C_Hans?= <hm@example.com>
}

func ExampleMessage_Recipients() {
	m := mail.Message{
		To:  []mail.Address{{Email: "ann@example.com"}},
		Cc:  []mail.Address{{Email: "Ann@Example.com"}, {Email: "bo@example.com"}},
		Bcc: []mail.Address{{Email: "audit@shop.example"}},
	}
	fmt.Println(m.Recipients())
	// Output: [ann@example.com bo@example.com audit@shop.example]
}

func ExampleBuild() {
	from, _ := mail.ParseAddress("Shop <news@shop.example>")
	to, _ := mail.ParseAddress("ann@example.com")
	raw, err := mail.Build(mail.Message{
		From:      from,
		To:        []mail.Address{to},
		Bcc:       []mail.Address{{Email: "audit@shop.example"}},
		Subject:   "Grüße",
		Text:      "Hello Ann",
		Headers:   []mail.Header{{Name: "X-Order", Value: "A-1"}},
		MessageID: "b2kfxqtq3wdeknr7qzv4wqcyky@shop.example", // mail.NewMessageID("", "shop.example")
		Date:      time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s", bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")))
	// Output:
	// From: "Shop" <news@shop.example>
	// To: <ann@example.com>
	// Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
	// Date: Sat, 14 Mar 2026 15:09:26 +0000
	// Message-ID: <b2kfxqtq3wdeknr7qzv4wqcyky@shop.example>
	// X-Order: A-1
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: quoted-printable
	//
	// Hello Ann
}
