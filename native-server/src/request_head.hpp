// Pure checks and parses of an HTTP request head (no Beast, no I/O): framing rules against request
// smuggling, target splitting, Last-Event-ID. Unit-tested and fuzzed (tests/fuzz/request_head_fuzz.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace confab::server {

struct HeadField {
    std::string_view name;   // as received (any case)
    std::string_view value;  // as received, without the surrounding whitespace
};

struct RequestHead {
    std::string_view method;
    std::string_view target;
    unsigned version = 11;  // 10 = HTTP/1.0, 11 = HTTP/1.1
    std::vector<HeadField> fields;
};

// Why a head is refused: the status to answer (the connection is then closed, as the rest of
// the bytes on it cannot be framed safely) and a message naming the header.
struct HeadRejection {
    int status = 400;
    std::string code;     // "bad_request" or "not_implemented"
    std::string message;
};

// The message-framing rules of RFC 9112 section 6 that keep a body from being read as the next
// request (request smuggling):
//  - Transfer-Encoding in an HTTP/1.0 request: 400;
//  - Transfer-Encoding together with Content-Length: 400;
//  - Transfer-Encoding whose final coding is not `chunked` (gzip, xchunked, identity,
//    "chunked, identity", empty): 400, as the body length cannot be determined;
//  - `chunked` more than once: 400;
//  - a transfer coding other than `chunked` before it ("gzip, chunked"): 501, as the server
//    decodes none (RFC 9112 section 6.1);
//  - Content-Length that is not one decimal number (or a list of equal ones): 400.
// Field names compare case-insensitively; several Transfer-Encoding lines form one list.
std::optional<HeadRejection> check_request_head(const RequestHead& head);

// A Last-Event-ID (header or ?lastEventId=): plain ASCII digits, no sign or spaces, at most 19 of
// them, value 0 .. 2^63-1 (the range of stored seqs, which SQLite keeps as int64). std::nullopt
// otherwise.
std::optional<std::uint64_t> parse_event_id(std::string_view text);

// %XX-decoding; a malformed escape is kept as is. `plus_is_space` for query strings.
std::string percent_decode(std::string_view s, bool plus_is_space);

// Splits a request target into its percent-decoded path and query pairs (in order, duplicates kept).
struct SplitTarget {
    std::string path;
    std::vector<std::pair<std::string, std::string>> query;
};
SplitTarget split_target(std::string_view target);

// "/v1/apps/x" -> {"v1", "apps", "x"}; a path not starting with '/' -> {}. Empty segments are kept
// ("/v1//x" has three), so that routing can refuse them.
std::vector<std::string_view> split_path(std::string_view path);

}  // namespace confab::server
