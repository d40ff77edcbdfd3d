package jobs

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// blockedPrefixes are networks a webhook may not reach unless allowed: they
// lead into the server's own host or network, not to a receiver on the
// internet.
var blockedPrefixes = []netip.Prefix{ //nolint:gochecknoglobals
	netip.MustParsePrefix("0.0.0.0/8"),        // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),       // private
	netip.MustParsePrefix("100.64.0.0/10"),    // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),      // loopback
	netip.MustParsePrefix("169.254.0.0/16"),   // link-local, cloud metadata
	netip.MustParsePrefix("168.63.129.16/32"), // Azure's WireServer, reachable from every Azure VM
	netip.MustParsePrefix("172.16.0.0/12"),    // private
	netip.MustParsePrefix("192.0.0.0/24"),     // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"),   // private
	netip.MustParsePrefix("198.18.0.0/15"),    // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),      // multicast
	netip.MustParsePrefix("240.0.0.0/4"),      // reserved, broadcast
	netip.MustParsePrefix("::/96"),            // unspecified, loopback, IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0/96"),    // IPv4-mapped, should a dialer not unmap it
	netip.MustParsePrefix("::ffff:0:0:0/96"),  // IPv4-translated (SIIT)
	netip.MustParsePrefix("64:ff9b::/96"),     // NAT64 onto IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),   // local NAT64
	netip.MustParsePrefix("fc00::/7"),         // unique local
	netip.MustParsePrefix("fe80::/10"),        // link-local
	netip.MustParsePrefix("fec0::/10"),        // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),         // multicast
	netip.MustParsePrefix("2001::/32"),        // Teredo, may embed a private IPv4
	netip.MustParsePrefix("2001:db8::/32"),    // documentation
	netip.MustParsePrefix("2002::/16"),        // 6to4, may embed a private IPv4
}

// BlockedAddressError is the error of an attempt refused by the SSRF guard.
type BlockedAddressError struct {
	Addr netip.Addr
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("address %s is private, loopback, link-local or reserved; deliveries may not reach it unless allowed (HOOKRELAY_ALLOW_CIDRS for hookrelay serve, jobs.Config.AllowCIDRs where hookrelay is embedded)", e.Addr)
}

// addrGuard decides, for every connection after DNS resolution, whether its
// address may be dialed; checking there rather than the URL defeats names that
// resolve, or rebind, to internal addresses.
type addrGuard struct {
	allow []netip.Prefix
}

func (g *addrGuard) check(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, prefix := range g.allow {
		if prefix.Contains(addr) {
			return nil
		}
	}
	for _, prefix := range blockedPrefixes {
		if prefix.Contains(addr) {
			return &BlockedAddressError{Addr: addr}
		}
	}
	return nil
}

// control is a net.Dialer.Control function.
func (g *addrGuard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	return g.check(addr.WithZone(""))
}
