// check_request_head (framing rules against request smuggling), parse_event_id and the target
// parsing of request_head.hpp, as plain functions.
#include "request_head.hpp"

#include <gtest/gtest.h>

#include <string>

namespace confab::server {
namespace {

RequestHead head_with(std::vector<HeadField> fields, unsigned version = 11) {
    RequestHead h;
    h.method = "POST";
    h.target = "/v1/identity";
    h.version = version;
    h.fields = std::move(fields);
    return h;
}

TEST(RequestHead, AcceptsPlainRequestsAndChunked) {
    EXPECT_FALSE(check_request_head(head_with({})));
    EXPECT_FALSE(check_request_head(head_with({{"Host", "x"}, {"Content-Length", "12"}})));
    EXPECT_FALSE(check_request_head(head_with({{"Content-Length", "0"}}, 10)));
    EXPECT_FALSE(check_request_head(head_with({{"Transfer-Encoding", "chunked"}})));
    EXPECT_FALSE(check_request_head(head_with({{"transfer-encoding", "CHUNKED"}})));
    EXPECT_FALSE(check_request_head(head_with({{"Transfer-Encoding", " , chunked ,"}})));
    EXPECT_FALSE(check_request_head(head_with({{"Content-Length", "5, 5"}})));
}

TEST(RequestHead, TransferEncodingNotEndingInChunkedIs400) {
    for (const char* te : {"gzip", "xchunked", "identity", "chunked, identity", "chunkedx", "", " , ",
                           "chunked;q=1", "\"chunked\""}) {
        auto r = check_request_head(head_with({{"Transfer-Encoding", te}}));
        ASSERT_TRUE(r) << te;
        EXPECT_EQ(r->status, 400) << te;
        EXPECT_EQ(r->code, "bad_request");
        EXPECT_EQ(r->message.rfind("Transfer-Encoding: ", 0), 0u) << r->message;
    }
    // Two field lines form one list: the last coding is what counts.
    auto r = check_request_head(head_with({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "identity"}}));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
}

TEST(RequestHead, TransferEncodingWithContentLengthIs400) {
    for (auto fields : {std::vector<HeadField>{{"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}},
                        std::vector<HeadField>{{"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}},
                        std::vector<HeadField>{{"Transfer-Encoding", "gzip"}, {"Content-Length", "3"}}}) {
        auto r = check_request_head(head_with(fields));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400);
        EXPECT_NE(r->message.find("Transfer-Encoding"), std::string::npos);
    }
}

TEST(RequestHead, TransferEncodingInHttp10Is400) {
    auto r = check_request_head(head_with({{"Transfer-Encoding", "chunked"}}, 10));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->message.find("HTTP/1.0"), std::string::npos);
}

TEST(RequestHead, ChunkedTwiceIs400AndOtherCodingsAre501) {
    auto twice = check_request_head(head_with({{"Transfer-Encoding", "chunked, chunked"}}));
    ASSERT_TRUE(twice);
    EXPECT_EQ(twice->status, 400);
    auto gzip = check_request_head(head_with({{"Transfer-Encoding", "gzip, chunked"}}));
    ASSERT_TRUE(gzip);
    EXPECT_EQ(gzip->status, 501);
    EXPECT_EQ(gzip->code, "not_implemented");
}

TEST(RequestHead, BadContentLengthIs400) {
    for (const char* cl : {"", "-1", "+1", "1x", "0x10", "5, 6", "5,", "18446744073709551616", " "}) {
        auto r = check_request_head(head_with({{"Content-Length", cl}}));
        ASSERT_TRUE(r) << cl;
        EXPECT_EQ(r->status, 400);
        EXPECT_EQ(r->message.rfind("Content-Length: ", 0), 0u);
    }
    auto two = check_request_head(head_with({{"Content-Length", "5"}, {"Content-Length", "6"}}));
    ASSERT_TRUE(two);
    EXPECT_EQ(two->status, 400);
}

TEST(ParseEventId, AcceptsTheRangeOfStoredSeqs) {
    EXPECT_EQ(parse_event_id("0"), 0u);
    EXPECT_EQ(parse_event_id("42"), 42u);
    EXPECT_EQ(parse_event_id("0042"), 42u);
    EXPECT_EQ(parse_event_id("9223372036854775807"), 9223372036854775807u);
}

TEST(ParseEventId, RefusesEverythingElse) {
    for (const char* s : {"", "9223372036854775808", "18446744073709551615", "18446744073709551616",
                          "99999999999999999999", "-1", "+1", "1e3", " 5", "5 ", "0x1", "1.0", "٣",
                          "00000000000000000001"}) {
        EXPECT_FALSE(parse_event_id(s)) << s;
    }
    EXPECT_FALSE(parse_event_id(std::string(5000, '9')));
    EXPECT_FALSE(parse_event_id(std::string_view("1\0", 2)));
}

TEST(SplitTarget, DecodesPathAndQuery) {
    auto t = split_target("/v1/apps/a%20b/executions?wait=true&x=a+b%26c&&flag&=v&%zz=%4");
    EXPECT_EQ(t.path, "/v1/apps/a b/executions");
    ASSERT_EQ(t.query.size(), 5u);
    EXPECT_EQ(t.query[0], (std::pair<std::string, std::string>{"wait", "true"}));
    EXPECT_EQ(t.query[1], (std::pair<std::string, std::string>{"x", "a b&c"}));
    EXPECT_EQ(t.query[2], (std::pair<std::string, std::string>{"flag", ""}));
    EXPECT_EQ(t.query[3], (std::pair<std::string, std::string>{"", "v"}));
    EXPECT_EQ(t.query[4], (std::pair<std::string, std::string>{"%zz", "%4"}));
    EXPECT_EQ(split_target("/a+b").path, "/a+b");  // '+' is a space only in the query
    EXPECT_EQ(percent_decode("%41%4", false), "A%4");
}

TEST(SplitPath, KeepsEmptySegments) {
    EXPECT_TRUE(split_path("").empty());
    EXPECT_TRUE(split_path("v1/apps").empty());
    EXPECT_EQ(split_path("/"), (std::vector<std::string_view>{""}));
    EXPECT_EQ(split_path("/v1//x"), (std::vector<std::string_view>{"v1", "", "x"}));
    EXPECT_EQ(split_path("/v1/apps/"), (std::vector<std::string_view>{"v1", "apps", ""}));
}

}  // namespace
}  // namespace confab::server
