// IP address and CIDR parsing/matching for the trusted-proxy list; inet_pton does the parsing.
#include "ip_network.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace confab::server {

namespace {

std::array<std::uint8_t, 16> v4_mapped(const std::uint8_t v4[4]) {
    std::array<std::uint8_t, 16> out{};
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, v4, 4);
    return out;
}

// Parses a literal; `is_v4` says which family it was written in.
std::optional<std::array<std::uint8_t, 16>> parse_literal(std::string_view text, bool& is_v4) {
    if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
    const std::string s(text);                                   // inet_pton needs a C string
    std::uint8_t v4[4];
    if (inet_pton(AF_INET, s.c_str(), v4) == 1) {
        is_v4 = true;
        return v4_mapped(v4);
    }
    std::array<std::uint8_t, 16> v6{};
    if (inet_pton(AF_INET6, s.c_str(), v6.data()) == 1) {
        is_v4 = false;
        return v6;
    }
    return std::nullopt;
}

// Built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + std::string(...) chains here.
std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('\'');
    out.append(s);
    out.push_back('\'');
    return out;
}

}  // namespace

bool IpNetwork::contains(const std::array<std::uint8_t, 16>& address) const noexcept {
    const int full = prefix / 8;
    for (int i = 0; i < full; ++i) {
        if (address[static_cast<std::size_t>(i)] != bytes[static_cast<std::size_t>(i)]) return false;
    }
    const int rest = prefix % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (address[static_cast<std::size_t>(full)] & mask) == bytes[static_cast<std::size_t>(full)];
}

std::optional<std::array<std::uint8_t, 16>> parse_ip_address(std::string_view text) {
    bool is_v4 = false;
    return parse_literal(text, is_v4);
}

std::optional<IpNetwork> parse_ip_network(std::string_view text, std::string* why) {
    auto fail = [&](std::string reason) -> std::optional<IpNetwork> {
        if (why) *why = std::move(reason);
        return std::nullopt;
    };
    const auto slash = text.find('/');
    const std::string_view addr = text.substr(0, slash);
    bool is_v4 = false;
    auto bytes = parse_literal(addr, is_v4);
    if (!bytes) return fail(quoted(addr).append(" is not an IPv4 or IPv6 address"));
    const int max_prefix = is_v4 ? 32 : 128;
    int prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view p = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > max_prefix) {
            return fail("the prefix length after '/' must be 0.." + std::to_string(max_prefix));
        }
    }
    IpNetwork net;
    net.prefix = is_v4 ? prefix + 96 : prefix;
    net.bytes = *bytes;
    net.text = std::string(text);
    // Host bits set means the written network is not the one that would be matched.
    std::array<std::uint8_t, 16> masked{};
    for (int i = 0; i < 16; ++i) {
        const int bits = std::max(0, std::min(8, net.prefix - 8 * i));
        const auto mask = static_cast<std::uint8_t>(bits == 0 ? 0 : 0xff << (8 - bits));
        masked[static_cast<std::size_t>(i)] = net.bytes[static_cast<std::size_t>(i)] & mask;
    }
    if (masked != net.bytes) {
        return fail(quoted(text).append(" has host bits set after the prefix (write the network address)"));
    }
    return net;
}

bool ip_in_networks(std::string_view peer, const std::vector<IpNetwork>& networks) {
    auto address = parse_ip_address(peer);
    if (!address) return false;
    for (const auto& n : networks) {
        if (n.contains(*address)) return true;
    }
    return false;
}

std::string client_ip_behind_proxies(std::string_view peer, std::string_view forwarded_for,
                                     const std::vector<IpNetwork>& networks) {
    std::string client(peer);
    std::size_t end = forwarded_for.size();
    while (ip_in_networks(client, networks)) {
        if (end == 0 || end == std::string_view::npos) break;
        const std::size_t comma = forwarded_for.rfind(',', end - 1);
        const std::size_t begin = comma == std::string_view::npos ? 0 : comma + 1;
        std::string_view hop = forwarded_for.substr(begin, end - begin);
        while (!hop.empty() && (hop.front() == ' ' || hop.front() == '\t')) hop.remove_prefix(1);
        while (!hop.empty() && (hop.back() == ' ' || hop.back() == '\t')) hop.remove_suffix(1);
        if (!parse_ip_address(hop)) break;
        client = std::string(hop);
        if (comma == std::string_view::npos) break;
        end = comma;
    }
    return client;
}

std::vector<IpNetwork> loopback_networks() {
    std::vector<IpNetwork> out;
    for (const char* text : {"127.0.0.0/8", "::1"}) out.push_back(*parse_ip_network(text, nullptr));
    return out;
}

}  // namespace confab::server
