package main_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
)

// submitScript is a legacy application sending mail the way most do: Python's smtplib, over
// STARTTLS with a certificate it verifies, AUTH LOGIN with the API key as password, the Bcc
// recipient in the envelope only (send_message strips the Bcc field), postie's labels in
// X-Postie-* fields. It prints one JSON object: the raw message it sent (Bcc left out), the
// DATA reply of a second message sent with the low-level commands, the EHLO features before
// TLS, and the error code of a wrong key.
const submitScript = `
import json, smtplib, ssl, sys
from email.message import EmailMessage
from email import policy

addr, key, cafile = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=cafile)
out = {}

msg = EmailMessage(policy=policy.SMTP)
msg["From"] = "Shop <orders@shop.example>"
msg["To"] = "ann@example.com"
msg["Bcc"] = "audit@shop.example"
msg["Subject"] = "Votre commande est expédiée"
msg["Message-ID"] = "<order-1042@shop.example>"
msg["X-Postie-Tag"] = "orders, shipping"
msg["X-Postie-Metadata-order_id"] = "A-1042"
msg.set_content("Bonjour Ann,\n\nvotre commande A-1042 est en route.\n.\nÀ bientôt\n", cte="8bit")
msg.add_alternative("<p>Bonjour Ann,</p><p>votre commande <b>A-1042</b> est en route.</p>", subtype="html")

with smtplib.SMTP(host, int(port), local_hostname="app.test", timeout=30) as s:
    s.ehlo()
    out["features_before_tls"] = sorted(s.esmtp_features)
    s.starttls(context=ctx)
    s.ehlo()
    s.login("api", key)
    sent = msg.as_bytes()  # fixes the multipart boundary, which send_message then uses too
    s.send_message(msg)
    out["sent"] = b"".join(l for l in sent.splitlines(keepends=True) if not l.startswith(b"Bcc:")).decode()

    second = EmailMessage(policy=policy.SMTP)
    second["From"] = "orders@shop.example"
    second["To"] = "bo@example.com"
    second["Subject"] = "Password reset"
    second.set_content("Your code is 123456.\n")
    s.mail("orders@shop.example")
    s.rcpt("bo@example.com")
    code, resp = s.data(second.as_bytes())
    out["second"] = "%d %s" % (code, resp.decode())

with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.starttls(context=ctx)
    try:
        s.login("api", "pk_not_a_key")
        out["wrong_key"] = 0
    except smtplib.SMTPAuthenticationError as e:
        out["wrong_key"] = e.smtp_code

print(json.dumps(out))
`

// TestSubmissionWithSmtplib: an application using Python's smtplib submits to the real binary
// over STARTTLS with AUTH; the relay (an in-process sink) gets each message with its content
// intact (the X-Postie-* fields removed), the Bcc recipient included, and the API shows the
// labels the fields gave.
func TestSubmissionWithSmtplib(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	dir := t.TempDir()
	cert, _ := sinktest.Cert(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	script := filepath.Join(dir, "submit.py")
	writeFile(t, script, []byte(submitScript))

	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	const key = "pk_submission_e2e_key_0123456789"
	subAddr := freeAddr(t)
	p := start(t, dir, "POSTIE_API_KEY="+key, "POSTIE_SMTP_URL="+sink.URL(), "POSTIE_SUBMISSION_LISTEN="+subAddr,
		"POSTIE_TLS_CERT="+certFile, "POSTIE_TLS_KEY="+keyFile, "POSTIE_SMTP_HOSTNAME=submit.postie.test")

	if want := "SMTP:      " + subAddr; !strings.Contains(p.out(), want) {
		t.Errorf("the banner does not say %q:\n%s", want, p.out())
	}
	cmd := exec.Command(python, script, subAddr, key, certFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s\npostie: %s", err, stderr.String(), p.errOut())
	}
	var out struct {
		FeaturesBeforeTLS []string `json:"features_before_tls"`
		Sent              string
		Second            string
		WrongKey          int `json:"wrong_key"`
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("%v: %s", err, outb)
	}
	if !strings.Contains(strings.Join(out.FeaturesBeforeTLS, " "), "starttls") {
		t.Errorf("EHLO before TLS offers %v, want starttls", out.FeaturesBeforeTLS)
	}
	if out.WrongKey != 535 {
		t.Errorf("a wrong key: %d, want 535", out.WrongKey)
	}
	secondID, ok := strings.CutPrefix(out.Second, "250 Ok: queued as ")
	if !ok {
		secondID, ok = strings.CutPrefix(out.Second, "250 2.0.0 Ok: queued as ")
	}
	if !ok || !strings.HasPrefix(secondID, "msg_") {
		t.Fatalf("second message's DATA reply: %q", out.Second)
	}
	p.waitStatus(key, secondID, "sent")

	ctx := t.Context()
	if err := sink.WaitCount(ctx, 2); err != nil {
		t.Fatal(err)
	}
	var first *smtpsink.Message
	for _, m := range sink.Messages() {
		if m.MessageID == "order-1042@shop.example" {
			first = &m
		}
	}
	if first == nil {
		t.Fatalf("the relay did not get the first message: %+v", sink.Messages())
	}
	if got, want := strings.Join(first.To, ","), "ann@example.com,audit@shop.example"; got != want {
		t.Errorf("relayed to %s, want %s (Bcc honoured)", got, want)
	}
	want := out.Sent
	for _, f := range []string{"X-Postie-Tag: orders, shipping\r\n", "X-Postie-Metadata-order_id: A-1042\r\n"} {
		if !strings.Contains(want, f) {
			t.Fatalf("the script did not send %q:\n%s", f, want)
		}
		want = strings.Replace(want, f, "", 1)
	}
	// The message is relayed as submitted; postie adds only its trace field and a Date
	// (smtplib sets none).
	got := string(first.Body)
	if !strings.HasPrefix(got, "Received: from app.test ([127.0.0.1])\r\n\tby submit.postie.test (postie) with ESMTPSA;\r\n\t") {
		t.Errorf("relayed message does not begin with postie's trace field:\n%s", got)
	}
	got = dropField(dropField(got, "Received"), "Date")
	if got != want {
		t.Errorf("relayed message differs from the submitted one:\n--- relayed\n%s\n--- submitted (without X-Postie-*)\n%s", got, want)
	}

	// The labels the X-Postie-* fields gave.
	var list struct {
		Data []struct {
			ID       string            `json:"id"`
			Tags     []string          `json:"tags"`
			Metadata map[string]string `json:"metadata"`
			Status   string            `json:"status"`
		} `json:"data"`
	}
	code, body := p.request("GET", "/v1/messages?tag=orders", key, nil)
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Data) != 1 {
		t.Fatalf("GET /v1/messages?tag=orders: %d %s", code, body)
	}
	if m := list.Data[0]; strings.Join(m.Tags, ",") != "orders,shipping" || m.Metadata["order_id"] != "A-1042" {
		t.Errorf("labels of the submitted message: %+v", m)
	}
	p.stop()
}

// dropField removes the first header field called name (with its continuation lines) from msg.
func dropField(msg, name string) string {
	i := strings.Index(msg, name+": ")
	if i < 0 || i > 0 && msg[i-1] != '\n' {
		return msg
	}
	j := i
	for {
		k := strings.Index(msg[j:], "\r\n")
		if k < 0 {
			return msg[:i]
		}
		j += k + 2
		if j >= len(msg) || msg[j] != ' ' && msg[j] != '\t' {
			return msg[:i] + msg[j:]
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
