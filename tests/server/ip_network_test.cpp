// Tests of the trusted-proxy address list: IPv4/IPv6 literals, CIDR prefixes, IPv4-mapped peers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ip_network.hpp"

namespace {

using confab::server::ip_in_networks;
using confab::server::IpNetwork;
using confab::server::loopback_networks;
using confab::server::parse_ip_network;

std::vector<IpNetwork> nets(std::initializer_list<const char*> texts) {
    std::vector<IpNetwork> out;
    for (const char* t : texts) {
        std::string why;
        auto n = parse_ip_network(t, &why);
        EXPECT_TRUE(n.has_value()) << t << ": " << why;
        if (n) out.push_back(*n);
    }
    return out;
}

TEST(IpNetworkTest, LoopbackDefaultTrustsOnlyThisHost) {
    const auto lo = loopback_networks();
    EXPECT_TRUE(ip_in_networks("127.0.0.1", lo));
    EXPECT_TRUE(ip_in_networks("127.8.9.10", lo));
    EXPECT_TRUE(ip_in_networks("::1", lo));
    // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
    EXPECT_TRUE(ip_in_networks("::ffff:127.0.0.1", lo));
    EXPECT_FALSE(ip_in_networks("128.0.0.1", lo));
    EXPECT_FALSE(ip_in_networks("10.0.0.1", lo));
    EXPECT_FALSE(ip_in_networks("::2", lo));
    EXPECT_FALSE(ip_in_networks("::ffff:10.0.0.1", lo));
    EXPECT_FALSE(ip_in_networks("", lo));
    EXPECT_FALSE(ip_in_networks("not-an-ip", lo));
}

TEST(IpNetworkTest, PrefixesMatchOnBitBoundaries) {
    const auto list = nets({"10.0.0.0/8", "192.168.4.0/22", "fd00::/8", "2001:db8::5"});
    EXPECT_TRUE(ip_in_networks("10.255.0.1", list));
    EXPECT_FALSE(ip_in_networks("11.0.0.1", list));
    EXPECT_TRUE(ip_in_networks("192.168.4.1", list));
    EXPECT_TRUE(ip_in_networks("192.168.7.255", list));
    EXPECT_FALSE(ip_in_networks("192.168.8.0", list));
    EXPECT_FALSE(ip_in_networks("192.168.3.255", list));
    EXPECT_TRUE(ip_in_networks("fdab::1", list));
    EXPECT_FALSE(ip_in_networks("fe80::1", list));
    EXPECT_TRUE(ip_in_networks("2001:db8::5", list));
    EXPECT_FALSE(ip_in_networks("2001:db8::6", list));
    // An IPv6 network never covers IPv4 peers by accident, nor the other way round.
    EXPECT_FALSE(ip_in_networks("253.0.0.1", list));
    EXPECT_FALSE(ip_in_networks("::a00:1", list));  // ::10.0.0.1 (IPv4-compatible), not mapped
}

TEST(IpNetworkTest, ZeroPrefixIsEverythingInItsFamilyOnly) {
    const auto v4_all = nets({"0.0.0.0/0"});
    EXPECT_TRUE(ip_in_networks("203.0.113.9", v4_all));
    EXPECT_FALSE(ip_in_networks("2001:db8::1", v4_all));
}

TEST(IpNetworkTest, ClientBehindTrustedProxiesIsTheFirstUntrustedHopFromTheRight) {
    const auto lb = nets({"127.0.0.0/8", "10.0.0.0/8"});
    // nginx on loopback appended the address it received from.
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "203.0.113.7", lb), "203.0.113.7");
    // Two proxies (an edge at 10.1.2.3, then nginx): the client is left of them.
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "198.51.100.4, 10.1.2.3", lb), "198.51.100.4");
    // What the client wrote itself (left of the first untrusted hop) is never believed.
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "1.2.3.4, 198.51.100.4", lb), "198.51.100.4");
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "127.0.0.9,198.51.100.4", lb), "198.51.100.4");
    // A peer that is not a trusted proxy: its header means nothing.
    EXPECT_EQ(client_ip_behind_proxies("198.51.100.4", "127.0.0.1", lb), "198.51.100.4");
    // Garbage ends the walk at the last trusted hop; so does a list of trusted hops only.
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "evil, unknown", lb), "127.0.0.1");
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "198.51.100.4, bogus, 10.0.0.2", lb), "10.0.0.2");
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "10.0.0.3, 10.0.0.2", lb), "10.0.0.3");
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", "", lb), "127.0.0.1");
    EXPECT_EQ(client_ip_behind_proxies("127.0.0.1", " 2001:db8::9 ", lb), "2001:db8::9");
}

TEST(IpNetworkTest, RefusesTyposWithAReason) {
    for (const char* bad : {"", "localhost", "10.0.0", "10.0.0.256", "10.0.0.0/", "10.0.0.0/33",
                            "10.0.0.0/-1", "10.0.0.0/8x", "::1/129", "10.0.0.1/8", "fd00::1/8",
                            " 10.0.0.1"}) {
        std::string why;
        EXPECT_FALSE(parse_ip_network(bad, &why).has_value()) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

}  // namespace
