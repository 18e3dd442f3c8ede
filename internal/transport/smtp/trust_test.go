package smtp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/transport"
)

// issue makes a certificate for 127.0.0.1 from tmpl, signed by parent (self-signed when nil),
// and returns it with its key.
func issue(t *testing.T, tmpl *x509.Certificate, parent *tls.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writePEM writes the certificates' PEM to a new file and returns its path.
func writePEM(t *testing.T, certs ...tls.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw})...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRelayTrust: a relay whose certificate comes from a private CA, or is self-signed, is
// refused at TLS with a verification error by default (system roots), accepted with ?ca= naming
// that CA or certificate, and accepted with ?tls=insecure; over STARTTLS and implicit TLS alike.
func TestRelayTrust(t *testing.T) {
	t.Parallel()
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "relay.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	ca := issue(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Private CA"},
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}, nil)
	byCA := *server
	byCA.SerialNumber = big.NewInt(2)
	selfSigned := *server
	selfSigned.SerialNumber = big.NewInt(3)
	other := issue(t, &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "Other CA"},
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}, nil)
	relays := []struct {
		name string
		cert tls.Certificate
		ca   string // the PEM file to trust
	}{
		{"private CA", issue(t, &byCA, &ca), writePEM(t, ca)},
		{"self-signed", issue(t, &selfSigned, nil), ""},
	}
	relays[1].ca = writePEM(t, relays[1].cert)
	otherCA := writePEM(t, other)

	for _, r := range relays {
		for _, implicit := range []bool{false, true} {
			scheme := map[bool]string{false: "smtp", true: "smtps"}[implicit]
			t.Run(r.name+"/"+scheme, func(t *testing.T) {
				t.Parallel()
				s := sinktest.Start(t, smtpsink.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{r.cert}}, Implicit: implicit})
				send := func(query string) error {
					cfg, err := ParseURL(fmt.Sprintf("%s://%s?command_timeout=5s&%s", scheme, s.Addr(), query))
					if err != nil {
						t.Fatal(err)
					}
					tr, err := New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer tr.Close()
					_, err = tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
					return err
				}
				for _, query := range []string{"", "ca=" + url.QueryEscape(otherCA)} {
					te := wantErr(t, send(query), transport.Unreachable, stageTLS)
					var unknown x509.UnknownAuthorityError
					if !errors.As(te.Err, &unknown) {
						t.Errorf("%q: error %q (%T), want a certificate verification error", query, te.Text, te.Err)
					}
				}
				for _, query := range []string{"ca=" + url.QueryEscape(r.ca), "tls=insecure"} {
					if err := send(query); err != nil {
						t.Errorf("%q: %v", query, err)
					}
				}
				if got := s.Count(); got != 2 {
					t.Errorf("relay received %d messages, want 2", got)
				}
			})
		}
	}
}

// TestRelayTrustErrors: a ca= that cannot be used stops New with an error naming the parameter
// (and not the path, as ParseURL quotes no value).
func TestRelayTrustErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noCert := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(noCert, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{"smtp://relay.example.com?ca=" + url.QueryEscape(filepath.Join(dir, "missing.pem")), "ca: cannot read the CA file: no such file"},
		{"smtp://relay.example.com?ca=" + url.QueryEscape(dir), "ca: cannot read the CA file"},
		{"smtp://relay.example.com?ca=" + url.QueryEscape(noCert), "ca: the CA file holds no PEM certificate"},
		{"smtp://relay.example.com?tls=none&ca=" + url.QueryEscape(noCert), "need TLS"},
		{"smtp://relay.example.com?tls=insecure&ca=" + url.QueryEscape(noCert), "exclude each other"},
	} {
		cfg, err := ParseURL(tc.url)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", tc.url, err)
		}
		_, err = New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), dir) {
			t.Errorf("New(%q): %v; want an error with %q and without the path", tc.url, err, tc.want)
		}
	}
	if _, err := ParseURL("smtp://relay.example.com?ca="); err == nil || !strings.Contains(err.Error(), "ca") {
		t.Errorf("ParseURL with an empty ca: %v, want an error naming ca", err)
	}
}
