package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress is the error of a connection (or a URL) to an address the policy refuses.
var ErrRefusedAddress = errors.New("address refused")

// refused are the address ranges a webhook may not reach unless Policy.Allow lists them: this
// machine, private networks, link-local (where cloud metadata services live), carrier-grade NAT,
// multicast and the unusable ones. An IPv4 address inside IPv6 (::ffff:a.b.c.d, 64:ff9b::/96)
// is judged as the IPv4 address.
var refused = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\" address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"}, // with 255.255.255.255, the broadcast
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a reserved address"},
}

// metadata are the cloud metadata services' addresses: refused even when a range that holds them
// is allowed, unless Policy.Allow lists the address by itself.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, …
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// nat64 is the well-known NAT64 prefix, whose addresses carry an IPv4 address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// refusedError is an address refused, with the range it is in.
type refusedError struct {
	addr       netip.Addr
	what, hint string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("%s is %s, which webhooks may not reach unless POSTIE_WEBHOOK_ALLOW lists it%s", e.addr, e.what, e.hint)
}

func (e *refusedError) Is(target error) bool { return target == ErrRefusedAddress }

// Policy is what webhook URLs may name and reach.
type Policy struct {
	// Allow lists ranges reachable although refused (POSTIE_WEBHOOK_ALLOW); a cloud metadata
	// address only when listed by itself (a /32 or /128).
	Allow []netip.Prefix
	// AllowHTTP lets URLs use http:// as well as https:// (POSTIE_WEBHOOK_ALLOW_HTTP).
	AllowHTTP bool
}

// CheckAddr returns nil when a webhook may connect to a, or an error wrapping ErrRefusedAddress
// that says which range a is in.
func (p Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		if err := p.CheckAddr(netip.AddrFrom4([4]byte(b[12:]))); err != nil {
			return err
		}
	}
	for _, m := range metadata {
		if a == m {
			for _, al := range p.Allow {
				if al.IsSingleIP() && al.Addr().Unmap() == a {
					return nil
				}
			}
			return &refusedError{addr: a, what: "a cloud metadata service's address", hint: " by itself"}
		}
	}
	for _, r := range refused {
		if !r.prefix.Contains(a) {
			continue
		}
		for _, al := range p.Allow {
			if al.Contains(a) {
				return nil
			}
		}
		return &refusedError{addr: a, what: r.what}
	}
	return nil
}

// control is the dialer's Control: it checks the address each connection is about to be made
// to, after every name resolution, so a name that resolved to a public address when the URL was
// saved and to a private one now (DNS rebinding) is refused all the same.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: not an address: %q", ErrRefusedAddress, address)
	}
	return p.CheckAddr(ap.Addr())
}

// Resolver resolves a host name to its addresses.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// defaultResolver resolves through the system (the hosts file, then DNS).
func defaultResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// dialer dials webhook receivers: it resolves the host with resolve and connects to its
// addresses in turn, each checked by the policy at connection time.
type dialer struct {
	policy  Policy
	resolve Resolver
	net     net.Dialer
}

func newDialer(p Policy, resolve Resolver, timeout time.Duration) *dialer {
	return &dialer{policy: p, resolve: resolve,
		net: net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}}
}

// DialContext connects to address (host:port), trying each address of the host in turn.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = d.resolve(ctx, host); err != nil {
		return nil, err
	} else if len(addrs) == 0 {
		return nil, fmt.Errorf("%s has no address", host)
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.net.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// checkHost checks, when a URL is saved, the host it names: a literal address by the policy; a
// name by its addresses, best effort (a name that does not resolve now is accepted, and every
// connection is checked anyway). localhost names are loopback without asking.
func (p Policy) checkHost(ctx context.Context, resolve Resolver, host string) error {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return p.CheckAddr(a)
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return p.CheckAddr(netip.MustParseAddr("127.0.0.1"))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := resolve(ctx, host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return fmt.Errorf("%s resolves to an address refused: %w", host, err)
		}
	}
	return nil
}
