package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	loopback := Policy{Allow: prefixes("127.0.0.0/8", "::1/128")}
	private := Policy{Allow: prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")}
	for _, tc := range []struct {
		addr   string
		policy Policy
		want   string // "" allowed, else a word of the refusal
	}{
		{"93.184.216.34", Policy{}, ""},
		{"2606:2800:220:1:248:1893:25c8:1946", Policy{}, ""},
		{"127.0.0.1", Policy{}, "loopback"},
		{"127.9.9.9", Policy{}, "loopback"},
		{"::1", Policy{}, "loopback"},
		{"::ffff:127.0.0.1", Policy{}, "loopback"}, // IPv4 in IPv6
		{"64:ff9b::7f00:1", Policy{}, "loopback"},  // NAT64
		{"0.0.0.0", Policy{}, "this network"},
		{"::", Policy{}, "unspecified"},
		{"10.1.2.3", Policy{}, "private"},             // RFC 1918
		{"172.31.255.255", Policy{}, "private"},       // RFC 1918
		{"192.168.0.1", Policy{}, "private"},          // RFC 1918
		{"fd12::1", Policy{}, "private"},              // RFC 4193
		{"100.64.0.1", Policy{}, "carrier-grade NAT"}, // RFC 6598
		{"169.254.1.1", Policy{}, "link-local"},       // RFC 3927
		{"fe80::1", Policy{}, "link-local"},           // RFC 4291
		{"169.254.169.254", Policy{}, "metadata"},     // cloud metadata
		{"fd00:ec2::254", Policy{}, "metadata"},       // AWS metadata over IPv6
		{"224.0.0.1", Policy{}, "multicast"},          // RFC 5771
		{"ff02::1", Policy{}, "multicast"},            //
		{"255.255.255.255", Policy{}, "reserved"},     // broadcast
		{"127.0.0.1", loopback, ""},                   //
		{"::1", loopback, ""},                         //
		{"10.0.0.1", loopback, "private"},             //
		{"10.0.0.1", private, ""},                     //
		{"fd00:ec2::254", private, "metadata"},        // a range that holds it is not enough
		{"169.254.169.254", Policy{Allow: prefixes("169.254.0.0/16")}, "metadata"},
		{"169.254.169.254", Policy{Allow: prefixes("169.254.169.254/32")}, ""},
		{"172.15.0.1", Policy{}, ""}, // just outside 172.16/12
	} {
		err := tc.policy.CheckAddr(netip.MustParseAddr(tc.addr))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.addr, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrRefusedAddress) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want a refusal naming %q", tc.addr, err, tc.want)
		}
	}
}

// fixedResolver resolves every name to addrs.
func fixedResolver(addrs ...string) Resolver {
	return func(context.Context, string) ([]netip.Addr, error) {
		out := make([]netip.Addr, len(addrs))
		for i, a := range addrs {
			out[i] = netip.MustParseAddr(a)
		}
		return out, nil
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	strict := New(Config{Resolve: fixedResolver("93.184.216.34")})
	toPrivate := New(Config{Resolve: fixedResolver("93.184.216.34", "10.0.0.7")})
	lenient := New(Config{Policy: Policy{AllowHTTP: true, Allow: prefixes("127.0.0.0/8")}, Resolve: fixedResolver("93.184.216.34")})
	for _, tc := range []struct {
		svc  *Service
		url  string
		want string // "" valid, else a word of the problem
	}{
		{strict, "https://hooks.example.com/postie", ""},
		{strict, "https://hooks.example.com:8443/postie?x=1", ""},
		{strict, "", "required"},
		{strict, "/postie", "absolute"},
		{strict, "hooks.example.com/postie", "absolute"},
		{strict, "mailto:ops@example.com", "absolute"},
		{strict, "ftp://hooks.example.com/", "https"},
		{strict, "http://hooks.example.com/", "POSTIE_WEBHOOK_ALLOW_HTTP"},
		{strict, "https://user:pw@hooks.example.com/", "credentials"},
		{strict, "https://user@hooks.example.com/", "credentials"},
		{strict, "https:///path", "host"},
		{strict, "https://hooks.example.com/#frag", "fragment"},
		{strict, "https://hooks.example.com:99999/", "port"},
		{strict, "https://hooks.example.com/a b", "spaces"},
		{strict, "https://127.0.0.1/", "loopback"},
		{strict, "https://[::1]:8080/", "loopback"},
		{strict, "https://localhost/", "loopback"},
		{strict, "https://api.localhost./", "loopback"},
		{strict, "https://10.0.0.1/", "private"},
		{strict, "https://169.254.169.254/latest/meta-data", "metadata"},
		{toPrivate, "https://hooks.example.com/", "resolves to an address refused: 10.0.0.7"},
		{lenient, "http://127.0.0.1:8080/hook", ""},
		{lenient, "http://localhost:8080/hook", ""},
		{lenient, "http://10.0.0.1/hook", "private"},
		{strict, "https://hooks.example.com/" + strings.Repeat("a", 2048), "2048"},
	} {
		got := tc.svc.CheckURL(ctx, tc.url)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("CheckURL(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
	// A name that does not resolve now is accepted (best effort): each connection is checked.
	unresolved := New(Config{Resolve: func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no such host") }})
	if got := unresolved.CheckURL(ctx, "https://hooks.example.com/"); got != "" {
		t.Errorf("an unresolved name is refused: %s", got)
	}
}

// receiver is an httptest server counting the requests it gets.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// testJob is a delivery of one payload to url.
func testJob(rawURL string) job {
	return job{d: store.WebhookDelivery{ID: 7, Type: store.WebhookMessageSent, LeaseUntil: time.Now().Add(time.Hour)},
		endpoint: store.WebhookEndpoint{ID: "whk_x", URL: rawURL, Secret: NewSecret(), Enabled: true}, body: []byte(`{}`)}
}

// TestConnectionTimeCheck: a name that resolved to a public address when its URL was saved and
// resolves to loopback when a payload is sent (DNS rebinding) is refused as the connection is
// made: the receiver gets nothing.
func TestConnectionTimeCheck(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	u, _ := url.Parse(srv.URL)
	var lookups atomic.Int64
	rebinding := func(context.Context, string) ([]netip.Addr, error) {
		if lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	s := New(Config{Policy: Policy{AllowHTTP: true}, Resolve: rebinding, Timeout: 5 * time.Second})
	hookURL := "http://hooks.rebind.test:" + u.Port() + "/hook"
	if msg := s.CheckURL(context.Background(), hookURL); msg != "" {
		t.Fatalf("saving: %s", msg)
	}
	r := s.send(context.Background(), testJob(hookURL))
	if r.ok() || r.attempt.Code != 0 || !strings.Contains(r.attempt.Error, "address policy") || !strings.Contains(r.attempt.Error, "loopback") {
		t.Fatalf("attempt %+v: want a connection refused by the address policy", r.attempt)
	}
	// A literal address is checked by the dialer too (a URL saved under another policy).
	r = s.send(context.Background(), testJob(srv.URL))
	if r.ok() || !strings.Contains(r.attempt.Error, "loopback") {
		t.Fatalf("attempt %+v: want a refusal", r.attempt)
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d requests", hits.Load())
	}
	// Allowed, the same receiver is reached.
	allowed := New(Config{Policy: Policy{AllowHTTP: true, Allow: prefixes("127.0.0.0/8")}, Resolve: fixedResolver("127.0.0.1")})
	if r := allowed.send(context.Background(), testJob(hookURL)); !r.ok() || r.attempt.Code != 200 {
		t.Fatalf("allowed: %+v", r.attempt)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	redirecting, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
	})
	s := New(Config{Policy: Policy{AllowHTTP: true, Allow: prefixes("127.0.0.0/8")}})
	r := s.send(context.Background(), testJob(redirecting.URL))
	if r.ok() || r.attempt.Code != http.StatusTemporaryRedirect || !strings.Contains(r.attempt.Error, "not followed") {
		t.Fatalf("attempt %+v: want a failed attempt with 307", r.attempt)
	}
	if hits.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestResponseCapped(t *testing.T) {
	t.Parallel()
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(strings.Repeat("é", 1<<20))) // 2 MiB
	})
	s := New(Config{Policy: Policy{AllowHTTP: true, Allow: prefixes("127.0.0.0/8")}})
	r := s.send(context.Background(), testJob(srv.URL))
	if r.ok() || r.attempt.Code != 500 || r.attempt.Error != "HTTP 500" {
		t.Fatalf("attempt %+v", r.attempt)
	}
	if n := len(r.attempt.Response); n > maxExcerpt || n < maxExcerpt-1 || !strings.HasPrefix(r.attempt.Response, "éé") {
		t.Fatalf("excerpt of %d bytes", n)
	}
}
