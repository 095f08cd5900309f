// Request-head checks (framing / smuggling), Last-Event-ID and target parsing: see request_head.hpp.
#include "request_head.hpp"

#include <charconv>

namespace confab::server {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1: empty
// elements are ignored).
template <typename Fn>
void for_each_element(std::string_view list, Fn&& fn) {
    for (;;) {
        auto comma = list.find(',');
        auto element = trim(list.substr(0, comma));
        if (!element.empty()) fn(element);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

HeadRejection reject(int status, std::string message) {
    return HeadRejection{status, status == 501 ? "not_implemented" : "bad_request", std::move(message)};
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<HeadRejection> check_request_head(const RequestHead& head) {
    bool has_te = false, has_cl = false;
    std::size_t codings = 0, chunked_count = 0;
    bool last_is_chunked = false;
    std::optional<std::uint64_t> length;
    for (const auto& f : head.fields) {
        if (iequals(f.name, "transfer-encoding")) {
            has_te = true;
            for_each_element(f.value, [&](std::string_view coding) {
                ++codings;
                last_is_chunked = iequals(coding, "chunked");
                if (last_is_chunked) ++chunked_count;
            });
        } else if (iequals(f.name, "content-length")) {
            has_cl = true;
            bool any = false, bad = false;
            for (auto list = f.value;;) {
                auto comma = list.find(',');
                auto element = trim(list.substr(0, comma));
                std::uint64_t v = 0;
                auto [p, ec] = std::from_chars(element.data(), element.data() + element.size(), v);
                if (element.empty() || ec != std::errc() || p != element.data() + element.size() ||
                    element.front() == '+' || (length && *length != v)) {
                    bad = true;
                    break;
                }
                length = v;
                any = true;
                if (comma == std::string_view::npos) break;
                list.remove_prefix(comma + 1);
            }
            if (bad || !any) {
                return reject(400, "Content-Length: must be one non-negative decimal number");
            }
        }
    }
    if (!has_te) return std::nullopt;
    if (head.version < 11) {
        return reject(400, "Transfer-Encoding: not allowed in an HTTP/1.0 request");
    }
    if (has_cl) {
        return reject(400, "Transfer-Encoding: not allowed together with Content-Length");
    }
    if (!last_is_chunked) {
        return reject(400, "Transfer-Encoding: the final transfer coding must be chunked");
    }
    if (chunked_count > 1) {
        return reject(400, "Transfer-Encoding: chunked may be applied only once");
    }
    if (codings > 1) {
        return reject(501, "Transfer-Encoding: only chunked is supported");
    }
    return std::nullopt;
}

std::optional<std::uint64_t> parse_event_id(std::string_view text) {
    // 2^63-1 has 19 digits; a longer string is refused before any arithmetic.
    if (text.empty() || text.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');  // at most 19 digits: fits in uint64
    }
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return v;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size()) {
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
    return out;
}

SplitTarget split_target(std::string_view target) {
    SplitTarget out;
    auto q = target.find('?');
    out.path = percent_decode(target.substr(0, q), false);
    if (q == std::string_view::npos) return out;
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            std::string key = percent_decode(pair.substr(0, eq), true);
            std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true);
            out.query.emplace_back(std::move(key), std::move(value));
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    if (path.empty() || path.front() != '/') return out;
    path.remove_prefix(1);
    for (;;) {
        auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

}  // namespace confab::server
