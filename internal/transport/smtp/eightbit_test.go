package smtp

import (
	"bytes"
	"context"
	"testing"
)

// TestEightBitToRelayWithout8BITMIME: a relay that does not offer 8BITMIME gets the 8-bit text
// part re-encoded as quoted-printable (RFC 6152) and no BODY=8BITMIME, the header fields as
// they were; one that offers it gets the message as it is, with BODY=8BITMIME.
func TestEightBitToRelayWithout8BITMIME(t *testing.T) {
	t.Parallel()
	const head = "From: a@example.com\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\nContent-Type: text/plain; charset=utf-8\r\n"
	raw := []byte(head + "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n")
	for _, tc := range []struct {
		name   string
		no8bit bool
		want   []byte
		mail   string
	}{
		{"without 8BITMIME", true, []byte(head + "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n"),
			"MAIL FROM:<bounce@example.com> SIZE="},
		{"with 8BITMIME", false, raw, "MAIL FROM:<bounce@example.com> BODY=8BITMIME SIZE="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{no8bit: tc.no8bit})
			tr := b.client(t, nil)
			if _, err := tr.Send(context.Background(), env("b@example.net"), raw); err != nil {
				t.Fatal(err)
			}
			b.relay.mu.Lock()
			defer b.relay.mu.Unlock()
			if len(b.relay.msgs) != 1 || !bytes.Equal(b.relay.msgs[0].Body, tc.want) {
				t.Errorf("relay got %+v, want %q", b.relay.msgs, tc.want)
			}
			if !bytes.Contains(b.relay.wire.Bytes(), []byte(tc.mail)) {
				t.Errorf("MAIL command: %q, want %q", b.relay.wire.Bytes(), tc.mail)
			}
		})
	}
}
