// IP addresses and CIDR networks for the trusted-proxy list (config `trustedProxies`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confab::server {

// An IPv4 or IPv6 network. IPv4 is held as its IPv4-mapped IPv6 form (::ffff:a.b.c.d, prefix + 96),
// so a peer seen on a dual-stack socket as ::ffff:127.0.0.1 matches "127.0.0.1" and nothing else.
struct IpNetwork {
    std::array<std::uint8_t, 16> bytes{};  // host bits are zero
    int prefix = 128;                      // 0..128, in the IPv6 form
    std::string text;                      // as written in the config, for messages

    bool contains(const std::array<std::uint8_t, 16>& address) const noexcept;
};

// "10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8". Host bits must be zero ("10.0.0.1/8" is refused:
// it is almost always a typo for a single address or a different network). nullopt with a reason.
std::optional<IpNetwork> parse_ip_network(std::string_view text, std::string* why);

// A literal address (no prefix), as http_server.cpp writes the peer; IPv4 becomes IPv4-mapped.
std::optional<std::array<std::uint8_t, 16>> parse_ip_address(std::string_view text);

// True when `peer` (a literal address) is inside one of `networks`; false when it does not parse.
bool ip_in_networks(std::string_view peer, const std::vector<IpNetwork>& networks);

// The client's address behind trusted proxies: when `peer` is in `networks`, the X-Forwarded-For
// list (`forwarded_for`, comma-separated, each proxy appends the address it received from) is
// walked from the right while the hop is trusted; the first untrusted hop is the client. Entries
// to the left of it are the client's own claims and are never believed. A hop that is not a
// literal address ends the walk at the last trusted one. `peer` itself when it is not trusted.
std::string client_ip_behind_proxies(std::string_view peer, std::string_view forwarded_for,
                                     const std::vector<IpNetwork>& networks);

// The default trust list: loopback only (127.0.0.0/8 and ::1), i.e. a proxy on the same host.
std::vector<IpNetwork> loopback_networks();

}  // namespace confab::server
