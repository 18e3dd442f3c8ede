package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// checkTLS loads the certificate the SMTP listeners offer (POSTIE_TLS_CERT and POSTIE_TLS_KEY):
// the pair must match, and the certificate be valid for a while yet (it is read at start only).
func checkTLS(o Options) []Result {
	if o.Config.TLSCert == "" {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(o.Config.TLSCert, o.Config.TLSKey)
	if err != nil {
		return []Result{{"tls", Fail, fmt.Sprintf("%s: %v", o.Config.TLSCert, err),
			"POSTIE_TLS_CERT must be a PEM certificate (chain) and POSTIE_TLS_KEY its private key, both readable by postie"}}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return []Result{{"tls", Fail, fmt.Sprintf("%s: %v", o.Config.TLSCert, err), "replace the certificate"}}
	}
	names := strings.Join(leaf.DNSNames, ", ")
	if names == "" {
		names = leaf.Subject.CommonName
	}
	now := o.Now()
	left := leaf.NotAfter.Sub(now)
	detail := fmt.Sprintf("certificate for %s, valid until %s", names, leaf.NotAfter.UTC().Format(time.DateOnly))
	fix := "renew it; postie reads it at start, so restart after renewing"
	switch {
	case now.Before(leaf.NotBefore):
		return []Result{{"tls", Fail, detail + ", not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339), "check this machine's clock, or the certificate"}}
	case left <= 0:
		return []Result{{"tls", Fail, detail + ": expired", fix}}
	case left < 14*24*time.Hour:
		return []Result{{"tls", Warn, fmt.Sprintf("%s: expires in %s", detail, untilText(left)), fix}}
	}
	return []Result{{Check: "tls", Status: OK, Detail: detail}}
}

// untilText writes a duration under two weeks in days and hours.
func untilText(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	hours := int(d % (24 * time.Hour) / time.Hour)
	return fmt.Sprintf("%dd%dh", days, hours)
}
