package doctor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/transport/smtp"
	"golang.org/x/net/dns/dnsmessage"
)

// find returns the results of check whose detail contains about.
func find(rs []Result, check, about string) []Result {
	var out []Result
	for _, r := range rs {
		if r.Check == check && strings.Contains(r.Detail, about) {
			out = append(out, r)
		}
	}
	return out
}

// one returns the single result of check about about, failing the test otherwise.
func one(t *testing.T, rs []Result, check, about string) Result {
	t.Helper()
	got := find(rs, check, about)
	if len(got) != 1 {
		var b bytes.Buffer
		Print(&b, rs)
		t.Fatalf("%d %s results about %q, want 1:\n%s", len(got), check, about, b.String())
	}
	return got[0]
}

func migratedSQLite(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postie.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDatabaseSQLite: the schema check on a database missing, current, behind, ahead and not
// postie's; the check works beside a postie holding the file's lock; the clock and disk checks
// warn and fail at their thresholds.
func TestDatabaseSQLite(t *testing.T) {
	t.Parallel()
	latest := sqlite.LatestMigration()
	if latest < 15 || latest != postgres.LatestMigration() {
		t.Fatalf("latest migrations: sqlite %d, postgres %d", latest, postgres.LatestMigration())
	}
	cfgFor := func(path string) config.Config {
		c := config.Default()
		c.DatabaseURL = "sqlite:" + path
		c.ImportDir = filepath.Join(filepath.Dir(path), "imports", "not-made-yet")
		return c
	}
	exec := func(path, query string) {
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(query); err != nil {
			t.Fatal(err)
		}
	}

	missing := filepath.Join(t.TempDir(), "postie.db")
	rs := checkDatabase(t.Context(), opts(cfgFor(missing)))
	if r := one(t, rs, "database", "no database file yet"); r.Status != Warn || len(rs) != 1 {
		t.Errorf("missing database: %+v", rs)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("doctor created the database")
	}

	current := migratedSQLite(t)
	running, err := sqlite.Open(t.Context(), current, sqlite.Options{}) // holds the file's lock, as postie serve does
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	o := opts(cfgFor(current))
	rs = checkDatabase(t.Context(), o)
	if r := one(t, rs, "database", "answers"); r.Status != OK {
		t.Errorf("database: %+v", r)
	}
	if r := one(t, rs, "migrations", fmt.Sprintf("schema version %d, the latest", latest)); r.Status != OK {
		t.Errorf("migrations: %+v", r)
	}
	if r := one(t, rs, "clock", ""); r.Status != OK {
		t.Errorf("clock: %+v", r)
	}
	for _, tc := range []struct {
		shift time.Duration
		want  Status
		about string
	}{{3 * time.Second, Warn, "3s ahead of"}, {-20 * time.Second, Fail, "20s behind"}} {
		o := o
		o.Now = func() time.Time { return time.Now().Add(tc.shift) }
		if r := one(t, checkDatabase(t.Context(), o), "clock", tc.about); r.Status != tc.want || r.Fix == "" {
			t.Errorf("clock %v: %+v", tc.shift, r)
		}
	}

	behind := migratedSQLite(t)
	exec(behind, fmt.Sprintf("DELETE FROM goose_db_version WHERE version_id >= %d", latest-1))
	if r := one(t, checkDatabase(t.Context(), opts(cfgFor(behind))), "migrations", "2 migration(s) pending"); r.Status != Warn {
		t.Errorf("behind: %+v", r)
	}
	ahead := migratedSQLite(t)
	exec(ahead, fmt.Sprintf("INSERT INTO goose_db_version (version_id, is_applied) VALUES (%d, 1)", latest+1))
	if r := one(t, checkDatabase(t.Context(), opts(cfgFor(ahead))), "migrations", "newer than this binary"); r.Status != Fail {
		t.Errorf("ahead: %+v", r)
	}
	other := filepath.Join(t.TempDir(), "other.db")
	exec(other, "CREATE TABLE t (x)")
	if r := one(t, checkDatabase(t.Context(), opts(cfgFor(other))), "migrations", "no postie schema"); r.Status != Warn {
		t.Errorf("not postie's: %+v", r)
	}

	// Free disk: the database's directory, and the import spool (not made yet: its parent's).
	rs = checkDisk(o)
	if len(rs) != 2 || rs[0].Status != OK || !strings.Contains(rs[1].Detail, "CSV imports") {
		t.Errorf("disk: %+v", rs)
	}
	o.WarnFree = 1 << 62
	if r := checkDisk(o)[0]; r.Status != Warn {
		t.Errorf("disk under the warning: %+v", r)
	}
	o.MinFree = 1 << 62
	if r := checkDisk(o)[0]; r.Status != Fail || !strings.Contains(r.Fix, "stops taking writes") {
		t.Errorf("disk under the minimum: %+v", r)
	}
}

// testParts are the parts app.DoctorParts gives (app imports doctor, so not called here).
func testParts() Parts {
	return Parts{
		LatestMigration: map[string]int64{"sqlite": sqlite.LatestMigration(), "postgres": postgres.LatestMigration()},
		MinFreeBytes:    sqlite.DefaultMinFreeBytes,
		ProbeRelay: func(ctx context.Context, u string, timeout time.Duration) (RelayProbe, error) {
			r, err := smtp.ProbeURL(ctx, u, timeout)
			return RelayProbe{Addr: r.Addr, TLS: r.TLS, Auth: r.Auth}, err
		},
	}
}

func opts(c config.Config) Options {
	o := Options{Config: c, Timeout: 5 * time.Second, Parts: testParts()}
	o.defaults()
	return o
}

// TestDatabasePostgres: reach, schema and clock on PostgreSQL, and a refused password.
func TestDatabasePostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	c := config.Default()
	c.DatabaseURL = dbURL
	rs := checkDatabase(t.Context(), opts(c))
	if r := one(t, rs, "migrations", "no postie schema"); r.Status != Warn {
		t.Errorf("empty database: %+v", r)
	}
	s, err := postgres.Open(t.Context(), postgres.Options{URL: dbURL, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs = checkDatabase(t.Context(), opts(c))
	for _, check := range []string{"database", "migrations", "clock"} {
		if r := one(t, rs, check, ""); r.Status != OK {
			t.Errorf("%s: %+v", check, r)
		}
	}

	// A database that does not exist (the test server may trust any password), with a password
	// that must not show.
	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword(u.User.Username(), "wrong-hunter2")
	u.Path = "/postie_no_such_database"
	c.DatabaseURL = u.String()
	rs = checkDatabase(t.Context(), opts(c))
	r := one(t, rs, "database", "postie_no_such_database")
	if r.Status != Fail || strings.Contains(r.Detail, "hunter2") || !strings.Contains(r.Fix, "password") || len(rs) != 1 {
		t.Errorf("a database that does not exist: %+v", rs)
	}
}

// TestRelay: doctor's relay check against an in-process SMTP server: STARTTLS and AUTH
// accepted, implicit TLS, a wrong password, no STARTTLS offered, nothing listening, no relay.
func TestRelay(t *testing.T) {
	t.Parallel()
	cert, _ := sinktest.Cert(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	srvTLS := sinktest.Start(t, smtpsink.Options{TLSConfig: sinktestServer(cert), Username: "app", Password: "hunter2"})
	implicit := sinktest.Start(t, smtpsink.Options{TLSConfig: sinktestServer(cert), Implicit: true, Username: "app", Password: "hunter2"})
	plain := sinktest.Start(t, smtpsink.Options{})
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	caq := "?ca=" + url.QueryEscape(ca)
	for _, tc := range []struct {
		name, url string
		want      Status
		about     []string
	}{
		{"starttls and auth", "smtp://app:hunter2@" + srvTLS.Addr() + caq, OK, []string{"answers, TLS 1.3, AUTH accepted"}},
		{"implicit tls", "smtps://app:hunter2@" + implicit.Addr() + caq, OK, []string{"TLS 1.3"}},
		{"plaintext relay", "smtp://" + plain.Addr() + "?tls=none", OK, []string{"no TLS (tls=none), no AUTH configured"}},
		{"wrong password", "smtp://app:wrong-secret@" + srvTLS.Addr() + caq, Fail, []string{"auth failed", "535"}},
		{"untrusted certificate", "smtp://app:hunter2@" + srvTLS.Addr(), Fail, []string{"tls failed"}},
		{"no starttls", "smtp://app:hunter2@" + plain.Addr(), Fail, []string{"tls failed", "does not offer STARTTLS"}},
		{"nothing listening", "smtp://app:hunter2@" + closed, Fail, []string{"connect failed"}},
		{"bad relay URL", "smtp://app:hunter2@" + plain.Addr() + "?pool=many", Fail, []string{"POSTIE_SMTP_URL"}},
		{"no relay", "", Warn, []string{"capture transport"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.SMTPURL = tc.url
			r := checkRelay(t.Context(), opts(c))
			if r.Status != tc.want {
				t.Errorf("status %v, want %v: %+v", r.Status, tc.want, r)
			}
			for _, a := range tc.about {
				if !strings.Contains(r.Detail, a) {
					t.Errorf("detail lacks %q: %s", a, r.Detail)
				}
			}
			if strings.Contains(r.Detail+r.Fix, "hunter2") || strings.Contains(r.Detail+r.Fix, "wrong-secret") {
				t.Errorf("a password shows: %+v", r)
			}
			if (r.Status == OK) != (r.Fix == "") {
				t.Errorf("fix %q with status %v", r.Fix, r.Status)
			}
		})
	}
}

// TestDNS: SPF, DMARC and MX as an in-process DNS server serves them.
func TestDNS(t *testing.T) {
	t.Parallel()
	res := dnsServer(t, map[string][]dnsmessage.Resource{
		"shop.example.":          {txtRR("shop.example.", "v=spf1 include:relay.example ~all"), txtRR("shop.example.", "google-site-verification=x")},
		"_dmarc.shop.example.":   {txtRR("_dmarc.shop.example.", "v=DMARC1; p=none")},
		"bounce.shop.example.":   {txtRR("bounce.shop.example.", "v=spf1 ip4:192.0.2.1 -all"), mxRR("bounce.shop.example.", "mx.shop.example.")},
		"news.example.":          {txtRR("news.example.", "v=spf1 a -all"), txtRR("news.example.", "v=spf1 mx -all")},
		"bounce.news.example.":   {txtRR("bounce.news.example.", "v=spf1 -all")},
		"_dmarc.news.example.":   {txtRR("_dmarc.news.example.", "v=DMARC1; p=none"), txtRR("_dmarc.news.example.", "v=DMARC1; p=reject")},
		"broken.example.":        nil, // SERVFAIL
		"_dmarc.broken.example.": nil,
		"bounce.broken.example.": nil,
	})
	c := config.Default()
	c.From = "Shop <hello@Shop.Example>"
	c.BounceDomains = "shop.example=bounce.shop.example,news.example=bounce.news.example"
	rs := checkDNS(t.Context(), Options{Config: c, Resolver: res, Timeout: 5 * time.Second})
	for _, tc := range []struct {
		about string
		want  Status
	}{
		{`shop.example: SPF "v=spf1 include:relay.example ~all"`, OK},
		{`shop.example: DMARC "v=DMARC1; p=none"`, OK},
		{`bounce.shop.example: SPF`, OK},
		{`bounce.shop.example: MX mx.shop.example`, OK},
		{"news.example: 2 SPF records", Fail},
		{"_dmarc.news.example: 2 DMARC records", Fail},
		{"bounce.news.example: SPF", OK},
		{"bounce.news.example: bounce domain without an MX record", Fail},
	} {
		if r := one(t, rs, "dns", tc.about); r.Status != tc.want {
			t.Errorf("%s: %+v", tc.about, r)
		}
	}
	if len(rs) != 8 {
		t.Errorf("%d results, want 8 (SPF and DMARC of two sending domains, SPF and MX of two bounce domains): %+v", len(rs), rs)
	}

	c = config.Default()
	c.From = "x@nowhere.example"
	c.BounceDomain = "broken.example"
	rs = checkDNS(t.Context(), Options{Config: c, Resolver: res, Timeout: 5 * time.Second})
	for _, tc := range []struct {
		about string
		want  Status
	}{
		{"nowhere.example: no SPF record", Warn},
		{"nowhere.example: no DMARC record at _dmarc.nowhere.example", Warn},
		{"broken.example: lookup failed", Warn},
	} {
		if got := find(rs, "dns", tc.about); len(got) == 0 || got[0].Status != tc.want || got[0].Fix == "" {
			t.Errorf("%s: %+v", tc.about, rs)
		}
	}

	if rs := checkDNS(t.Context(), Options{Config: config.Default(), Resolver: res}); len(rs) != 1 || rs[0].Status != Warn {
		t.Errorf("no domain: %+v", rs)
	}
}

// TestPrint: one line per check, the fix below it, and the counts.
func TestPrint(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	rs := []Result{{"database", OK, "sqlite x answers", ""}, {"relay", Fail, "auth failed", "check the password"}, {"dns", Warn, "no SPF", "add one"}}
	Print(&b, rs)
	want := "ok    database    sqlite x answers\n" +
		"FAIL  relay       auth failed\n" +
		"                  fix: check the password\n" +
		"warn  dns         no SPF\n" +
		"                  fix: add one\n" +
		"1 ok, 1 warn, 1 FAIL\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if !Failed(rs) || Failed(rs[:1]) {
		t.Error("Failed")
	}
}

// dnsServer serves zone over UDP on loopback and returns a resolver that asks only it. A name
// mapped to nil answers SERVFAIL; a name not in zone, NXDOMAIN.
func dnsServer(t *testing.T, zone map[string][]dnsmessage.Resource) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			resp := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true},
				Questions: []dnsmessage.Question{q}}
			rrs, ok := zone[strings.ToLower(q.Name.String())]
			switch {
			case !ok:
				resp.RCode = dnsmessage.RCodeNameError
			case rrs == nil:
				resp.RCode = dnsmessage.RCodeServerFailure
			}
			for _, rr := range rrs {
				if rr.Header.Type == q.Type {
					resp.Answers = append(resp.Answers, rr)
				}
			}
			out, err := resp.Pack()
			if err != nil {
				continue
			}
			_, _ = pc.WriteTo(out, addr)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func sinktestServer(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func txtRR(name, text string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET, TTL: 60},
		Body: &dnsmessage.TXTResource{TXT: []string{text}}}
}

func mxRR(name, host string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeMX, Class: dnsmessage.ClassINET, TTL: 60},
		Body: &dnsmessage.MXResource{Pref: 10, MX: dnsmessage.MustNewName(host)}}
}

// TestTLS: the SMTP listeners' certificate: valid, about to expire, expired, not matching its key.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, other := selfSigned(t, 30*24*time.Hour), selfSigned(t, time.Hour)
	write := func(name string, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(c tls.Certificate) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certFile, keyFile := write("cert.pem", "CERTIFICATE", cert.Leaf.Raw), write("key.pem", "PRIVATE KEY", keyDER(cert))
	otherKey := write("other.pem", "PRIVATE KEY", keyDER(other))
	for _, tc := range []struct {
		name  string
		key   string
		now   time.Time
		want  Status
		about string
	}{
		{"valid", keyFile, cert.Leaf.NotAfter.Add(-15 * 24 * time.Hour), OK, "certificate for mail.shop.example"},
		{"expiring", keyFile, cert.Leaf.NotAfter.Add(-3 * 24 * time.Hour), Warn, "expires in 3d0h"},
		{"expired", keyFile, cert.Leaf.NotAfter.Add(time.Minute), Fail, "expired"},
		{"not yet valid", keyFile, cert.Leaf.NotBefore.Add(-time.Minute), Fail, "not valid before"},
		{"another key", otherKey, time.Now(), Fail, "private key does not match"},
	} {
		c := config.Default()
		c.TLSCert, c.TLSKey = certFile, tc.key
		o := opts(c)
		o.Now = func() time.Time { return tc.now }
		rs := checkTLS(o)
		if len(rs) != 1 || rs[0].Status != tc.want || !strings.Contains(rs[0].Detail, tc.about) {
			t.Errorf("%s: %+v", tc.name, rs)
		}
	}
	if rs := checkTLS(opts(config.Default())); len(rs) != 0 {
		t.Errorf("no certificate configured: %+v", rs)
	}
}

// selfSigned makes a certificate for mail.shop.example valid from an hour ago for life.
func selfSigned(t *testing.T, life time.Duration) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"mail.shop.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(life)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestFile: a configuration file with secrets must be readable by its owner only.
func TestFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		want       Status
		about      string
	}{
		{"secrets, private", `api_key = "0123456789abcdef0123"`, 0o600, OK, "holds secrets (api_key), readable by its owner only"},
		{"secrets, readable by others", `smtp_url = "smtp://u:hunter2@relay.example:587"`, 0o644, Warn, "holds secrets (smtp_url) and is readable by others (mode 0644)"},
		{"no secrets", `smtp_url = "smtp://relay.example:587"`, 0o644, OK, "holds no secret"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
		if err := os.WriteFile(p, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		c, src, err := config.Resolve(func(k string) string { return map[string]string{config.FileEnv: p}[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs := checkFile(Options{Config: c, Sources: src})
		if len(rs) != 1 || rs[0].Status != tc.want || !strings.Contains(rs[0].Detail, tc.about) || strings.Contains(rs[0].Detail, "hunter2") {
			t.Errorf("%s: %+v", tc.name, rs)
		}
	}
	if rs := checkFile(Options{Config: config.Default()}); len(rs) != 0 {
		t.Errorf("no file: %+v", rs)
	}
}
