// Tests of the app runners and the upstream HTTP client against a real loopback socket server.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "config.hpp"
#include "runners.hpp"
#include "upstream.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using confab::Result;
using confab::protocol::AppType;
using confab::protocol::Json;
using namespace confab::server;

// ---- pure functions ----

TEST(RenderTemplateTest, ReplacesPlaceholdersWithInputs) {
    auto r = render_template("Hi {{name}}, {{ n }} items, {{obj}}; {{name}} again",
                             Json{{"name", "Ann"}, {"n", 3}, {"obj", {{"a", true}}}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "Hi Ann, 3 items, {\"a\":true}; Ann again");
    EXPECT_EQ(*render_template("no placeholders { } }}", Json::object()), "no placeholders { } }}");
}

TEST(RenderTemplateTest, UnknownOrMalformedPlaceholdersAreTemplateErrors) {
    auto unknown = render_template("Hi {{who}}", Json{{"name", "Ann"}});
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code, "template_error");
    EXPECT_NE(unknown.error().message.find("who"), std::string::npos);
    auto unclosed = render_template("Hi {{name", Json{{"name", "Ann"}});
    ASSERT_FALSE(unclosed.ok());
    EXPECT_EQ(unclosed.error().code, "template_error");
    EXPECT_FALSE(render_template("{{  }}", Json::object()).ok());
    auto names = template_placeholders("{{a}} {{ b }} {{a}}");
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
}

TEST(SplitChunksTest, SplitsByCharactersNeverInsideUtf8) {
    const std::string text = "héllo wörld ✓ 😀!";
    for (int n : {1, 2, 3, 4, 7, 100}) {
        auto chunks = split_chunks(text, n);
        std::string joined;
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            const auto& c = chunks[i];
            ASSERT_FALSE(c.empty());
            EXPECT_NE(static_cast<unsigned char>(c[0]) & 0xC0, 0x80u) << "chunk starts mid-character";
            std::size_t chars = 0;
            for (char ch : c) chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
            if (i + 1 < chunks.size()) {
                EXPECT_EQ(chars, static_cast<std::size_t>(n));
            } else {
                EXPECT_LE(chars, static_cast<std::size_t>(n));
            }
            joined += c;
        }
        EXPECT_EQ(joined, text);
    }
    EXPECT_TRUE(split_chunks("", 4).empty());
    EXPECT_EQ(split_chunks("abc", 0).size(), 3u);
}

// The line index of the code block's opening fence, and the fence itself.
std::pair<std::size_t, std::string> find_fence(const std::vector<std::string>& lines) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].rfind("```", 0) == 0) {
            std::size_t n = 0;
            while (n < lines[i].size() && lines[i][n] == '`') ++n;
            return {i, lines[i].substr(0, n)};
        }
    }
    return {std::string::npos, ""};
}

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '\n') {
            out.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

TEST(WorkflowStepsTest, OneOrderAndOneMessageForAppsAndServerRuns) {
    const Json steps = Json::parse(R"([{"id": "b", "stepOrder": 2}, {"id": "a1", "stepOrder": 1},
                                       {"id": "a2", "stepOrder": 1}])");
    const Json sorted = sorted_workflow_steps(steps);
    ASSERT_EQ(sorted.size(), 3u);
    EXPECT_EQ(sorted[0]["id"], "a1");  // stable among equal stepOrder
    EXPECT_EQ(sorted[1]["id"], "a2");
    EXPECT_EQ(sorted[2]["id"], "b");
    EXPECT_TRUE(sorted_workflow_steps(Json::object()).empty());
    EXPECT_EQ(workflow_step_message("Summarize:", "the news"), "Summarize:\n\nthe news");
    EXPECT_EQ(workflow_step_message("Summarize:", ""), "Summarize:");
    EXPECT_EQ(workflow_step_message("", "the news"), "the news");
}

TEST(EchoReplyTest, IsMarkdownWithHeadingListAndVerbatimCodeBlock) {
    const std::string msg = "Hello *world*\n<b>x</b> ✓";
    const std::string reply = echo_reply(msg, 2);
    auto lines = split_lines(reply);
    EXPECT_EQ(lines[0].rfind("## ", 0), 0u) << reply;
    EXPECT_NE(reply.find("\n- Turn: 2\n"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\n- Length: 24 characters\n"), std::string::npos) << reply;
    auto [open, fence] = find_fence(lines);
    ASSERT_NE(open, std::string::npos);
    EXPECT_EQ(fence, "```");
    // The message sits verbatim between the fences.
    EXPECT_EQ(lines[open + 1] + "\n" + lines[open + 2], msg);
    EXPECT_EQ(lines[open + 3], fence);
    EXPECT_EQ(echo_reply(msg, 2), reply);  // deterministic
}

TEST(EchoReplyTest, AMessageWithFencesGetsALongerFence) {
    const std::string msg = "see:\n```js\nx = 1\n```\nand ````` five";
    const std::string reply = echo_reply(msg, 1);
    auto lines = split_lines(reply);
    auto [open, fence] = find_fence(lines);
    ASSERT_NE(open, std::string::npos);
    EXPECT_EQ(fence, "``````");  // one longer than the longest run (5)
    // Nothing inside the message can close the block: the first line that is exactly the
    // fence comes after the whole message.
    std::string body;
    std::size_t close = open + 1;
    for (; close < lines.size() && lines[close] != fence; ++close) body += (body.empty() ? "" : "\n") + lines[close];
    EXPECT_EQ(body, msg);
    EXPECT_NE(reply.find("\n- Turn: 1\n"), std::string::npos);
}

// ---- a loopback HTTP server for the upstream tests ----

struct Canned {
    std::string head;                 // status line + headers, without the blank line
    std::vector<std::string> chunks;  // body pieces, each sent as one HTTP chunk
    bool chunked = true;
    bool stall = false;  // after sending, keep the connection open until the client leaves
};

class FakeServer {
public:
    explicit FakeServer(asio::io_context& io) : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string url(std::string_view path = "/") const {
        return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
    }
    const std::string& request() const { return request_; }
    std::string request_body() const {
        auto p = request_.find("\r\n\r\n");
        return p == std::string::npos ? "" : request_.substr(p + 4);
    }

    // Serves one connection with `c`.
    void serve(asio::io_context& io, Canned c) {
        asio::co_spawn(io, serve_one(std::move(c)), [](std::exception_ptr) {});
    }

private:
    asio::awaitable<void> serve_one(Canned c) {
        auto sock = co_await acceptor_.async_accept(asio::use_awaitable);
        char buf[4096];
        for (;;) {
            const std::size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
            request_.append(buf, n);
            const auto end = request_.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            std::size_t length = 0;
            const auto cl = request_.find("Content-Length: ");
            if (cl != std::string::npos && cl < end) length = std::stoul(request_.substr(cl + 16));
            if (request_.size() >= end + 4 + length) break;
        }
        std::string out = c.head + "\r\n";
        if (c.chunked) out += "Transfer-Encoding: chunked\r\n";
        out += "\r\n";
        co_await asio::async_write(sock, asio::buffer(out), asio::use_awaitable);
        for (const auto& piece : c.chunks) {
            std::string framed = c.chunked ? to_hex(piece.size()) + "\r\n" + piece + "\r\n" : piece;
            co_await asio::async_write(sock, asio::buffer(framed), asio::use_awaitable);
        }
        if (c.stall) {
            // Wait for the client to give up (it closes; the read then fails).
            co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
        }
        if (c.chunked) co_await asio::async_write(sock, asio::buffer(std::string("0\r\n\r\n")), asio::use_awaitable);
        boost::system::error_code ec;
        sock.shutdown(tcp::socket::shutdown_both, ec);
    }
    static std::string to_hex(std::size_t n) {
        char b[32];
        std::snprintf(b, sizeof b, "%zx", n);
        return b;
    }
    tcp::acceptor acceptor_;
    std::string request_;
};

// Runs `a` to completion on `io` (and everything else queued there, e.g. the fake server).
template <class T>
T run_to_end(asio::io_context& io, asio::awaitable<T> a) {
    std::optional<T> out;
    // A wrapper coroutine: co_spawn's own completion needs a default-constructible T.
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(a)); },
        [](std::exception_ptr ep) {
            if (ep) std::rethrow_exception(ep);
        });
    io.run();
    io.restart();
    return std::move(*out);
}

// ---- run_app ----

struct Fixture {
    ServerConfig server;
    WorkspaceConfig ws;
    AppConfig app;
    std::vector<std::pair<std::string, Json>> events;

    explicit Fixture(AppType type) {
        app.id = "a";
        app.type = type;
        app.versions.emplace_back();
        version().delay_ms = 0;
    }
    AppVersion& version() { return app.versions.back(); }
    RunContext context(Json inputs = Json::object()) {
        RunContext ctx;
        ctx.server = &server;
        ctx.workspace = &ws;
        ctx.app = &app;
        ctx.version = &app.versions.back();
        ctx.inputs = std::move(inputs);
        ctx.emit = [this](std::string type, Json data) -> asio::awaitable<void> {
            events.emplace_back(std::move(type), std::move(data));
            co_return;
        };
        return ctx;
    }
    std::string joined(const char* field) const {
        std::string s;
        for (const auto& [t, d] : events) s += d[field].get<std::string>();
        return s;
    }
};

TEST(RunAppTest, TemplateStreamsTheRenderedTextInChunks) {
    asio::io_context io;
    Fixture f(AppType::template_);
    f.version().template_text = "Dear {{name}}, welcome to Confab.";
    f.version().chunk_chars = 5;
    f.version().delay_ms = 1;
    f.version().inputs.push_back({"name", confab::protocol::InputType::string, true, ""});
    auto ctx = f.context(Json{{"name", "Bo"}});
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, Json("Dear Bo, welcome to Confab."));
    ASSERT_EQ(f.events.size(), 6u);  // 27 characters, 5 per event
    for (const auto& [type, data] : f.events) EXPECT_EQ(type, "delta");
    EXPECT_EQ(f.events[0].second["content"], "Dear ");
    EXPECT_EQ(f.joined("content"), "Dear Bo, welcome to Confab.");
}

TEST(RunAppTest, OptionalInputsThatAreAbsentRenderEmpty) {
    asio::io_context io;
    Fixture f(AppType::template_);
    f.version().template_text = "[{{opt}}]";
    f.version().inputs.push_back({"opt", confab::protocol::InputType::string, false, ""});
    auto ctx = f.context();
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, Json("[]"));
}

TEST(RunAppTest, EchoAgentInChatModeEmitsAgentResponses) {
    asio::io_context io;
    Fixture f(AppType::agent);
    f.version().model = "echo";
    f.version().chunk_chars = 3;
    auto ctx = f.context();
    ctx.chat = true;
    ctx.message = "What is ```this```?";
    ctx.history = {{confab::protocol::Role::user, "first", 1}, {confab::protocol::Role::assistant, "ok", 2}};
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, Json(echo_reply("What is ```this```?", 2)));
    ASSERT_FALSE(f.events.empty());
    for (const auto& [type, data] : f.events) EXPECT_EQ(type, "agent-response");
    EXPECT_EQ(f.joined("token"), r->get<std::string>());
}

TEST(ClockStampTest, FourBase64UrlCharactersOfMicrosecondsModTwoTo24) {
    EXPECT_EQ(clock_stamp(0), "AAAA");
    EXPECT_EQ(clock_stamp(1), "AAAB");
    EXPECT_EQ(clock_stamp(63), "AAA_");
    EXPECT_EQ(clock_stamp(64), "AABA");
    EXPECT_EQ(clock_stamp((1u << 24) - 1), "____");
    EXPECT_EQ(clock_stamp(1u << 24), "AAAA");  // wraps every 16.7 s
    EXPECT_EQ(clock_stamp((std::uint64_t{5} << 30) + 12345), clock_stamp(12345));
}

TEST(RunAppTest, ClockAgentEmitsOneStampPerMessageCharacterAtEmitTime) {
    asio::io_context io;
    Fixture f(AppType::agent);
    f.version().model = "clock";
    f.version().delay_ms = 2;
    auto ctx = f.context();
    ctx.chat = true;
    ctx.message = "abcdé";  // 5 characters, 6 bytes
    auto decode = [](const std::string& t) {
        const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        std::uint64_t v = 0;
        for (char c : t) v = v * 64 + digits.find(c);
        return v;
    };
    auto now_us = [] {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::steady_clock::now().time_since_epoch())
                                              .count());
    };
    const std::uint64_t before = now_us();
    auto r = run_to_end(io, run_app(ctx));
    const std::uint64_t after = now_us();
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(f.events.size(), 5u);
    std::uint64_t prev = 0;
    for (std::size_t i = 0; i < f.events.size(); ++i) {
        const std::string t = f.events[i].second["token"].get<std::string>();
        ASSERT_EQ(t.size(), 4u);
        // Taken during the run: within [before, after] modulo 2^24, and 2 ms or more apart.
        const std::uint64_t since = (decode(t) - before) & ((1u << 24) - 1);
        EXPECT_LE(since, after - before) << "token " << i;
        if (i > 0) {
            EXPECT_GE(since - prev, 2000u) << "delay_ms between tokens";
        }
        prev = since;
    }
    EXPECT_EQ(f.joined("token"), r->get<std::string>());
}

TEST(RunAppTest, CancellationStopsARunWaitingOnItsDelay) {
    asio::io_context io;
    Fixture f(AppType::template_);
    f.version().template_text = std::string(400, 'x');
    f.version().chunk_chars = 1;
    f.version().delay_ms = 30000;  // the test would stall if cancellation missed the timer
    asio::cancellation_signal signal;
    auto ctx = f.context();
    auto inner = ctx.emit;
    ctx.emit = [&](std::string type, Json data) -> asio::awaitable<void> {
        co_await inner(std::move(type), std::move(data));
        if (f.events.size() == 1) {  // the run now waits on its delay timer
            asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
        }
    };
    std::optional<Result<Json>> result;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result.emplace(co_await run_app(ctx)); },
        asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr ep) { EXPECT_FALSE(ep); }));
    io.run();
    ASSERT_TRUE(result.has_value());
    ASSERT_FALSE(result->ok());
    EXPECT_EQ(result->error().code, "cancelled");
    EXPECT_EQ(f.events.size(), 1u);
}

TEST(RunAppTest, LlmWithoutUpstreamIsNotConfigured) {
    asio::io_context io;
    Fixture f(AppType::llm);
    auto ctx = f.context(Json{{"topic", "x"}});
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "not_configured");
    EXPECT_NE(r.error().message.find("CONFAB_LLM_BASE_URL"), std::string::npos);
}

std::string sse_chunk(const std::string& content) {
    return "data: " + Json{{"choices", {{{"index", 0}, {"delta", {{"content", content}}}}}}}.dump() + "\n\n";
}

TEST(RunAppTest, LlmStreamsTokensFromAnOpenAiCompatibleUpstream) {
    asio::io_context io;
    FakeServer up(io);
    up.serve(io, {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
                  {": keep-alive\n\n", sse_chunk("Hel"), sse_chunk("lo") + "data: {\"choices\":[{\"delta\":{},", 
                   "\"finish_reason\":\"stop\"}]}\n\n", "data: [DONE]\n\n"}});
    Fixture f(AppType::llm);
    f.server.llm.base_url = "http://127.0.0.1:" + std::to_string(up.port()) + "/";
    f.server.llm.api_key = "sk-test";
    f.server.llm.model = "default-model";
    f.version().system_prompt = "You write about {{topic}}.";
    f.version().prompt = "Tell me about {{topic}}.";
    f.version().inputs.push_back({"topic", confab::protocol::InputType::string, true, ""});
    auto ctx = f.context(Json{{"topic", "rain"}});
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, Json("Hello"));
    ASSERT_EQ(f.events.size(), 2u);
    EXPECT_EQ(f.events[0].first, "delta");
    EXPECT_EQ(f.events[0].second["content"], "Hel");

    EXPECT_EQ(up.request().rfind("POST /v1/chat/completions HTTP/1.1\r\n", 0), 0u) << up.request();
    EXPECT_NE(up.request().find("Authorization: Bearer sk-test\r\n"), std::string::npos);
    const Json body = Json::parse(up.request_body());
    EXPECT_EQ(body["model"], "default-model");
    EXPECT_EQ(body["stream"], true);
    ASSERT_EQ(body["messages"].size(), 2u);
    EXPECT_EQ(body["messages"][0], (Json{{"role", "system"}, {"content", "You write about rain."}}));
    EXPECT_EQ(body["messages"][1], (Json{{"role", "user"}, {"content", "Tell me about rain."}}));
}

TEST(RunAppTest, LlmAgentSendsTheHistoryAndEmitsAgentResponses) {
    asio::io_context io;
    FakeServer up(io);
    up.serve(io, {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", {sse_chunk("Sure."), "data: [DONE]\n\n"}});
    Fixture f(AppType::agent);
    f.version().model = "llm";
    f.server.llm.base_url = up.url("");
    auto ctx = f.context();
    ctx.chat = true;
    ctx.message = "and now?";
    ctx.history = {{confab::protocol::Role::user, "hi", 1}, {confab::protocol::Role::assistant, "hello", 2}};
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, Json("Sure."));
    ASSERT_EQ(f.events.size(), 1u);
    EXPECT_EQ(f.events[0].first, "agent-response");
    const Json body = Json::parse(up.request_body());
    EXPECT_EQ(body["model"], "gpt-4o-mini");  // the agent's "llm" is not a model name
    ASSERT_EQ(body["messages"].size(), 3u);
    EXPECT_EQ(body["messages"][0]["content"], "hi");
    EXPECT_EQ(body["messages"][1]["role"], "assistant");
    EXPECT_EQ(body["messages"][2], (Json{{"role", "user"}, {"content", "and now?"}}));
    EXPECT_EQ(up.request().find("Authorization:"), std::string::npos);  // no key configured
}

// A stream holds what it streams: by its first event a runner has let go of what the run was
// asked (a chat's whole conversation, the message, the inputs), which it read to start.
TEST(RunAppTest, ARunnerHoldsNoCopyOfTheRequestWhileItStreams) {
    auto check = [](const char* what, Fixture& f, RunContext& ctx, asio::io_context& io) {
        int seen = 0, holding = 0;
        ctx.emit = [&](std::string, Json) -> asio::awaitable<void> {
            ++seen;
            if (!ctx.message.empty() || !ctx.history.empty() || !ctx.inputs.is_null()) ++holding;
            co_return;
        };
        auto r = run_to_end(io, run_app(ctx));
        ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
        EXPECT_GT(seen, 0) << what;
        EXPECT_EQ(holding, 0) << what << " still held its request while streaming";
        (void)f;
    };
    {
        asio::io_context io;
        FakeServer up(io);
        up.serve(io, {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", {sse_chunk("Sure."), "data: [DONE]\n\n"}});
        Fixture f(AppType::agent);
        f.version().model = "llm";
        f.server.llm.base_url = up.url("");
        auto ctx = f.context(Json{{"topic", "x"}});
        ctx.chat = true;
        ctx.message = "and now?";
        ctx.history = {{confab::protocol::Role::user, "hi", 1}, {confab::protocol::Role::assistant, "hello", 2}};
        check("llm agent", f, ctx, io);
        EXPECT_EQ(Json::parse(up.request_body())["messages"].size(), 3u);
    }
    for (const char* model : {"echo", "clock"}) {
        asio::io_context io;
        Fixture f(AppType::agent);
        f.version().model = model;
        auto ctx = f.context();
        ctx.chat = true;
        ctx.message = "hello there";
        ctx.history = {{confab::protocol::Role::user, "hi", 1}};
        check(model, f, ctx, io);
    }
    {
        asio::io_context io;
        Fixture f(AppType::template_);
        f.version().template_text = "Hi {{name}}";
        auto ctx = f.context(Json{{"name", "Ann"}});
        check("template", f, ctx, io);
    }
}

TEST(RunAppTest, LlmUpstreamErrorsBecomeUpstreamError) {
    asio::io_context io;
    FakeServer up(io);
    up.serve(io, {"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json",
                  {"{\"error\":{\"message\":\"model overloaded\"}}"}});
    Fixture f(AppType::llm);
    f.server.llm.base_url = up.url("");
    auto ctx = f.context(Json{{"q", 1}});
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "upstream_error");
    EXPECT_NE(r.error().message.find("500"), std::string::npos) << r.error().message;
    // Clients see the error: what the upstream said and where it lives go to the log only.
    EXPECT_EQ(r.error().message.find("model overloaded"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("127.0.0.1"), std::string::npos) << r.error().message;
    // Without a prompt template, the inputs go as JSON.
    EXPECT_EQ(Json::parse(up.request_body())["messages"][0]["content"], "{\"q\":1}");
}

TEST(RunAppTest, MalformedUpstreamStreamIsAnError) {
    asio::io_context io;
    FakeServer up(io);
    up.serve(io, {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", {sse_chunk("ok"), "data: {not json\n\n"}});
    Fixture f(AppType::llm);
    f.server.llm.base_url = up.url("");
    auto ctx = f.context();
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "upstream_error");
    EXPECT_NE(r.error().message.find("malformed"), std::string::npos) << r.error().message;
    EXPECT_EQ(f.events.size(), 1u);  // what came before the bad event was streamed
}

TEST(RunAppTest, StreamEndingBeforeDoneIsAnError) {
    asio::io_context io;
    FakeServer up(io);
    up.serve(io, {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", {sse_chunk("partial")}});
    Fixture f(AppType::llm);
    f.server.llm.base_url = up.url("");
    auto ctx = f.context();
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "upstream_error");
}

TEST(RunAppTest, SilentUpstreamTimesOut) {
    asio::io_context io;
    FakeServer up(io);
    Canned c{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", {sse_chunk("a")}};
    c.stall = true;
    up.serve(io, c);
    Fixture f(AppType::llm);
    f.server.llm.base_url = up.url("");
    f.server.llm.idle_timeout_ms = 150;
    auto ctx = f.context();
    auto r = run_to_end(io, run_app(ctx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "upstream_timeout");
    EXPECT_EQ(f.events.size(), 1u);
}

TEST(RunAppTest, CancellationStopsARunWaitingOnItsUpstream) {
    asio::io_context io;
    FakeServer up(io);
    Canned c{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", {sse_chunk("a")}};
    c.stall = true;
    up.serve(io, c);
    Fixture f(AppType::llm);
    f.server.llm.base_url = up.url("");
    f.server.llm.idle_timeout_ms = 30000;  // far away: the cancel must end the read, not this
    asio::cancellation_signal signal;
    auto ctx = f.context();
    auto inner = ctx.emit;
    ctx.emit = [&](std::string type, Json data) -> asio::awaitable<void> {
        co_await inner(std::move(type), std::move(data));
        asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
    };
    std::optional<Result<Json>> result;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result.emplace(co_await run_app(ctx)); },
        asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr ep) { EXPECT_FALSE(ep); }));
    io.run();
    ASSERT_TRUE(result.has_value());
    ASSERT_FALSE(result->ok());
    EXPECT_EQ(result->error().code, "cancelled");
    EXPECT_EQ(f.events.size(), 1u);
}

TEST(RunAppTest, HttpAppOutputIsTheJsonBodyOrText) {
    asio::io_context io;
    {
        FakeServer up(io);
        up.serve(io, {"HTTP/1.1 200 OK\r\nContent-Type: application/json", {"{\"sum\":", "3}"}});
        Fixture f(AppType::http);
        f.version().url = up.url("/hook?x=1");
        auto ctx = f.context(Json{{"a", 1}, {"b", 2}});
        auto r = run_to_end(io, run_app(ctx));
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(*r, (Json{{"sum", 3}}));
        ASSERT_EQ(f.events.size(), 1u);
        EXPECT_EQ(f.events[0].second["content"], "{\"sum\":3}");
        EXPECT_EQ(up.request().rfind("POST /hook?x=1 HTTP/1.1\r\n", 0), 0u);
        EXPECT_EQ(Json::parse(up.request_body()), (Json{{"a", 1}, {"b", 2}}));
    }
    {
        FakeServer up(io);
        Canned c{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5", {"hello"}};
        c.chunked = false;
        up.serve(io, c);
        Fixture f(AppType::http);
        f.version().url = up.url("/");
        auto ctx = f.context();
        auto r = run_to_end(io, run_app(ctx));
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(*r, Json("hello"));
    }
}

// ---- the upstream client on its own ----

TEST(UpstreamTest, ParsesHttpUrls) {
    auto u = parse_http_url("http://example.com:8080/a/b?c=1#frag");
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->host, "example.com");
    EXPECT_EQ(u->port, 8080);
    EXPECT_EQ(u->target, "/a/b?c=1");
    auto d = parse_http_url("HTTP://h");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->port, 80);
    EXPECT_EQ(d->target, "/");
    EXPECT_EQ(parse_http_url("http://[::1]:9/x")->host, "::1");
    for (const char* bad : {"https://h/", "ftp://h", "http://", "http://:80/", "http://h:0/", "http://h:x/",
                            "http://u@h/", "http://h /", "h:80"}) {
        auto r = parse_http_url(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_EQ(r.error().code, "invalid_url");
        }
    }
}

TEST(UpstreamTest, RefusedConnectionIsUnavailableAndDoesNotNameTheUpstream) {
    asio::io_context io;
    std::uint16_t port;
    {
        tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        port = a.local_endpoint().port();
    }  // closed: nothing listens there now
    UpstreamRequest req;
    req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
    auto r = run_to_end(io, http_request(req));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "upstream_unavailable");
    EXPECT_EQ(r.error().message.find("127.0.0.1"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find(std::to_string(port)), std::string::npos) << r.error().message;
}

TEST(UpstreamTest, ChunkHandlerErrorStopsTheRequest) {
    asio::io_context io;
    FakeServer up(io);
    Canned c{"HTTP/1.1 200 OK", {"one", "two"}};
    c.stall = true;  // would time out (30 s) if the handler's error did not stop the read
    up.serve(io, c);
    UpstreamRequest req;
    req.url = up.url("/");
    std::string seen;
    auto r = run_to_end(io, http_request(req, [&](std::string_view chunk) -> asio::awaitable<confab::Status> {
        seen.append(chunk);
        co_return confab::make_error("enough", "stop here");
    }));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "enough");
    EXPECT_EQ(seen.rfind("one", 0), 0u);  // stopped after the first delivery, whatever it held
}

}  // namespace
