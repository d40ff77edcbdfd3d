package jobs

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAddrGuard(t *testing.T) {
	t.Parallel()
	guard := &addrGuard{}

	for _, blocked := range []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
		"100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "ff02::1",
		"::7f00:1", "::808:808", "::ffff:0:7f00:1", "fec0::1", // IPv4-compatible, SIIT, site-local
		"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::f5ff:fffe", // Teredo, whose client address may be private
		// Clouds' fixed metadata and host addresses: Azure's WireServer,
		// AWS's IMDS over IPv6, Alibaba's and Oracle's metadata.
		"168.63.129.16", "fd00:ec2::254", "100.100.100.200", "192.0.0.192",
	} {
		var blockedErr *BlockedAddressError
		require.ErrorAs(t, guard.check(netip.MustParseAddr(blocked)), &blockedErr, blocked)
	}
	for _, public := range []string{"93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"} {
		require.NoError(t, guard.check(netip.MustParseAddr(public)), public)
	}

	allowed := &addrGuard{allow: mustParseCIDRs(t, "127.0.0.1,10.0.0.0/8")}
	require.NoError(t, allowed.check(netip.MustParseAddr("127.0.0.1")))
	require.NoError(t, allowed.check(netip.MustParseAddr("::ffff:127.0.0.1")))
	require.NoError(t, allowed.check(netip.MustParseAddr("10.9.8.7")))
	require.Error(t, allowed.check(netip.MustParseAddr("127.0.0.2")))
	require.Error(t, allowed.check(netip.MustParseAddr("::1")))
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	guard := &addrGuard{}
	require.Error(t, guard.control("tcp", "127.0.0.1:80", nil))
	require.Error(t, guard.control("tcp6", "[fe80::1%eth0]:80", nil))
	require.NoError(t, guard.control("tcp", "1.1.1.1:443", nil))
}

func mustParseCIDRs(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	prefixes, err := ParseCIDRs(s)
	require.NoError(t, err)
	return prefixes
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	prefixes := mustParseCIDRs(t, " 10.0.0.0/8, ::1 ,fd00::/8,,::ffff:192.168.0.0/112")
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}, prefixes)
	empty, err := ParseCIDRs("")
	require.NoError(t, err)
	require.Empty(t, empty)

	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0/8"} {
		_, err := ParseCIDRs(bad)
		require.ErrorContains(t, err, "invalid CIDR", bad)
	}
}

func FuzzParseCIDRs(f *testing.F) {
	for _, seed := range []string{"10.0.0.0/8", "::1", "a,b", "::ffff:1.2.3.4/120", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefixes, err := ParseCIDRs(s)
		if err != nil {
			return
		}
		for _, p := range prefixes {
			require.True(t, p.IsValid())
			require.False(t, p.Addr().Is4In6(), "mapped prefixes are unmapped so they match unmapped addresses")
		}
	})
}
