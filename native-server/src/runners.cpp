// App runners: render templates, the echo model, OpenAI-compatible LLM streams and http apps.
#include "runners.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "confab/sse.hpp"
#include "upstream.hpp"
#include "util.hpp"

namespace confab::server {

namespace asio = boost::asio;
using protocol::Json;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

using protocol::dump;

// Calls `on_text(literal)` and `on_name(name)` in order; false from a callback stops the scan.
template <class Text, class Name>
Status scan_template(std::string_view text, Text on_text, Name on_name) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t open = text.find("{{", pos);
        if (open == std::string_view::npos) {
            on_text(text.substr(pos));
            break;
        }
        on_text(text.substr(pos, open - pos));
        const std::size_t close = text.find("}}", open + 2);
        if (close == std::string_view::npos) {
            return make_error("template_error", "unclosed \"{{\" at byte " + std::to_string(open) + " of the template");
        }
        const std::string_view name = trim(text.substr(open + 2, close - open - 2));
        if (name.empty()) {
            return make_error("template_error", "empty placeholder \"{{}}\" at byte " + std::to_string(open) + " of the template");
        }
        if (auto st = on_name(name); !st) return st;
        pos = close + 2;
    }
    return Ok{};
}

std::size_t utf8_length(std::string_view s) {
    std::size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

Error cancelled() { return make_error("cancelled", "the run was cancelled"); }

// Use as `cancelled_in(co_await asio::this_coro::cancellation_state)`: reading the state never
// throws, unlike co_await of an operation or awaitable after a cancellation.
bool cancelled_in(const asio::cancellation_state& cs) { return cs.cancelled() != asio::cancellation_type::none; }

// One piece of streamed output in the event type of the run's mode.
// g++ 12 mishandles some non-trivial temporaries inside a co_await expression (double destruction
// seen here), so arguments of awaited calls are built as named locals first throughout this file.
asio::awaitable<void> emit_text_slow(RunContext& ctx, std::string text) {
    std::string type = ctx.chat ? "agent-response" : "delta";
    Json data = ctx.chat ? protocol::encode(protocol::AgentResponse{std::move(text)})
                         : protocol::encode(protocol::Delta{std::move(text)});
    co_await ctx.emit(std::move(type), std::move(data));
}

// A text token through the hub's fast path when it has one: true when nothing is left to await
// (the common case costs no coroutine frame); false when the caller must still
// `co_await emit_text_rest(ctx, text)`.
bool emit_text_fast(RunContext& ctx, std::string_view text) {
    return ctx.emit_text_now && ctx.emit_text_now(text) == RunContext::TextQueued::queued;
}
asio::awaitable<void> emit_text_rest(RunContext& ctx, std::string text) {
    if (ctx.emit_text_now) {
        co_await ctx.emit_wait();  // queued already; the queue was full
    } else {
        co_await emit_text_slow(ctx, std::move(text));
    }
}
asio::awaitable<void> emit_text(RunContext& ctx, std::string text) {
    if (!emit_text_fast(ctx, text)) co_await emit_text_rest(ctx, std::move(text));
}

// Streams `text` chunk_chars characters per event with delay_ms between events.
// Chunks are cut as they are sent, not split up front: a long reply streamed to many clients
// costs one copy of its text per run, not a string per chunk.
asio::awaitable<Status> stream_text(RunContext& ctx, const std::string& text) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::size_t start = 0;
    for (std::size_t i = 0; start < text.size(); ++i) {
        if (cancelled_in(co_await asio::this_coro::cancellation_state)) co_return cancelled();
        if (i > 0 && ctx.version->delay_ms > 0) {
            timer.expires_after(std::chrono::milliseconds(ctx.version->delay_ms));
            co_await timer.async_wait(asio::use_awaitable);  // throws operation_aborted on cancel
        }
        const std::size_t end = chunk_end(text, start, ctx.version->chunk_chars);
        const std::string_view piece = std::string_view(text).substr(start, end - start);
        start = end;
        if (!emit_text_fast(ctx, piece)) co_await emit_text_rest(ctx, std::string(piece));
    }
    co_return Ok{};
}

// Inputs for rendering: declared optional inputs that were not given render as "".
Json render_inputs(const RunContext& ctx) {
    Json in = ctx.inputs.is_object() ? ctx.inputs : Json::object();
    for (const auto& spec : ctx.version->inputs) {
        auto it = in.find(spec.name);
        if (it == in.end() || it->is_null()) in[spec.name] = "";
    }
    return in;
}

// The user's message outside chat mode: inputs.message when it is a string, else the inputs.
std::string message_from_inputs(const Json& inputs) {
    if (inputs.is_object()) {
        auto it = inputs.find("message");
        if (it != inputs.end() && it->is_string()) return it->get<std::string>();
    }
    return dump(inputs);
}

asio::awaitable<Result<Json>> run_template(RunContext& ctx) {
    auto text = render_template(ctx.version->template_text, render_inputs(ctx));
    ctx.release_request();
    if (!text) co_return text.error();
    if (auto st = co_await stream_text(ctx, *text); !st) co_return st.error();
    co_return Json(std::move(*text));
}

asio::awaitable<Result<Json>> run_echo(RunContext& ctx) {
    std::size_t turn = 1;
    for (const auto& m : ctx.history) turn += m.role == protocol::Role::user;
    std::string reply = echo_reply(ctx.chat ? ctx.message : message_from_inputs(ctx.inputs), turn);
    ctx.release_request();
    if (auto st = co_await stream_text(ctx, reply); !st) co_return st.error();
    co_return Json(std::move(reply));
}

// The clock model: one token per character of the message, each the emit time (clock_stamp of
// CLOCK_MONOTONIC, read just before the event is handed to emit), delay_ms apart as stream_text.
// A client on the same machine reads emit-to-arrival latency from it (bench/server/sse_load).
asio::awaitable<Result<Json>> run_clock(RunContext& ctx) {
    const std::size_t tokens = ctx.chat ? utf8_length(ctx.message) : utf8_length(message_from_inputs(ctx.inputs));
    ctx.release_request();
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const bool keep = !ctx.streamed_text_kept;  // else the hub's log is the reply
    std::string reply;
    if (keep) reply.reserve(tokens * 4);
    for (std::size_t i = 0; i < tokens; ++i) {
        if (cancelled_in(co_await asio::this_coro::cancellation_state)) co_return cancelled();
        if (i > 0 && ctx.version->delay_ms > 0) {
            timer.expires_after(std::chrono::milliseconds(ctx.version->delay_ms));
            co_await timer.async_wait(asio::use_awaitable);  // throws operation_aborted on cancel
        }
        const auto now = std::chrono::steady_clock::now().time_since_epoch();
        std::string stamp = clock_stamp(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now).count()));
        if (keep) reply += stamp;
        if (!emit_text_fast(ctx, stamp)) co_await emit_text_rest(ctx, std::move(stamp));
    }
    if (!keep) {
        ctx.output_is_streamed_text = true;
        co_return Json(nullptr);
    }
    co_return Json(std::move(reply));
}

// Reads an OpenAI-compatible chat.completions SSE stream; appends and emits content tokens.
struct LlmStream {
    sse::Parser parser;
    std::vector<sse::Event> events;
    std::string output;
    std::string raw;           // the body while no SSE event has been seen (non-streaming answers)
    bool saw_event = false;
    bool done = false;         // "data: [DONE]"
    bool finished = false;     // a choice carried a finish_reason
};

constexpr const char* kDoneCode = "__llm_done";  // internal: stops the read at [DONE]

Status malformed(std::string_view why) {
    return make_error("upstream_error", "the LLM upstream sent a malformed stream: " + std::string(why));
}

// Returns the content token of one streamed chunk (possibly empty) or an error.
Result<std::string> token_of(const Json& j, bool& finished) {
    if (!j.is_object()) return malformed("an event's data is not a JSON object").error();
    if (auto err = j.find("error"); err != j.end() && !err->is_null()) {
        std::string msg = err->is_object() && err->contains("message") && (*err)["message"].is_string()
                              ? (*err)["message"].get<std::string>()
                              : dump(*err);
        // The provider's text may name internal hosts or models: it goes to the log, not to clients.
        log_line(R"({"level":"warn","msg":"the LLM upstream reported an error","detail":)" + dump(Json(msg)) + "}");
        return make_error("upstream_error", "the LLM upstream reported an error");
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array()) return malformed("an event has no \"choices\" array").error();
    if (choices->empty()) return std::string();  // e.g. a usage-only chunk
    const Json& c0 = (*choices)[0];
    if (!c0.is_object()) return malformed("choices[0] is not an object").error();
    if (auto fr = c0.find("finish_reason"); fr != c0.end() && !fr->is_null()) finished = true;
    auto delta = c0.find("delta");
    if (delta == c0.end() || delta->is_null()) return std::string();
    if (!delta->is_object()) return malformed("choices[0].delta is not an object").error();
    auto content = delta->find("content");
    if (content == delta->end() || content->is_null()) return std::string();
    if (!content->is_string()) return malformed("choices[0].delta.content is not a string").error();
    return content->get<std::string>();
}

// The chat.completions request of an llm/agent run. A plain function: the conversation's JSON
// and the rendered prompts are gone once the body is written, not kept for the stream's length.
Result<UpstreamRequest> llm_request(const RunContext& ctx) {
    const LlmUpstream& llm = ctx.server->llm;
    const Json inputs = render_inputs(ctx);
    Json messages = Json::array();
    if (!ctx.version->system_prompt.empty()) {
        auto sys = render_template(ctx.version->system_prompt, inputs);
        if (!sys) return sys.error();
        messages.push_back({{"role", "system"}, {"content", *sys}});
    }
    for (const auto& m : ctx.history) {
        messages.push_back({{"role", protocol::to_string(m.role)}, {"content", m.content}});
    }
    std::string user;
    if (ctx.chat) {
        user = ctx.message;
    } else if (!ctx.version->prompt.empty()) {
        auto p = render_template(ctx.version->prompt, inputs);
        if (!p) return p.error();
        user = std::move(*p);
    } else if (ctx.app->type == protocol::AppType::agent) {
        user = message_from_inputs(ctx.inputs);
    } else {
        user = dump(ctx.inputs);
    }
    messages.push_back({{"role", "user"}, {"content", std::move(user)}});

    // An llm app may name its model; an agent's `model` field says "llm", not which one.
    const std::string model = ctx.app->type == protocol::AppType::llm && !ctx.version->model.empty()
                                  ? ctx.version->model
                                  : llm.model;
    UpstreamRequest req;
    std::string base = llm.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    req.url = base + "/v1/chat/completions";
    if (!llm.api_key.empty()) req.headers.emplace_back("Authorization", "Bearer " + llm.api_key);
    req.headers.emplace_back("Accept", "text/event-stream");
    req.body = dump(Json{{"model", model}, {"stream", true}, {"messages", std::move(messages)}});
    req.connect_timeout_ms = llm.connect_timeout_ms;
    req.idle_timeout_ms = llm.idle_timeout_ms;
    return req;
}

asio::awaitable<Result<Json>> run_llm(RunContext& ctx) {
    const LlmUpstream& llm = ctx.server->llm;
    if (!llm.configured()) {
        co_return make_error("not_configured",
                             "this app needs an LLM upstream: set llm.baseUrl in the config or CONFAB_LLM_BASE_URL");
    }
    auto built = llm_request(ctx);
    if (!built) co_return built.error();
    UpstreamRequest req = std::move(*built);
    ctx.release_request();

    LlmStream s;
    s.parser = sse::Parser(sse::ParserLimits{llm.max_event_bytes});
    ChunkHandler on_chunk = [&ctx, &s](std::string_view chunk) -> asio::awaitable<Status> {
        if (!s.saw_event && s.raw.size() < (1u << 20)) s.raw.append(chunk);
        s.events.clear();
        // An event over the limit is dropped by the parser; the reply would miss text, so the run
        // fails, saying which limit and how to raise it.
        if (auto st = s.parser.feed(chunk, s.events); !st) {
            co_return make_error("upstream_error", "the LLM upstream sent an event too large to relay: " +
                                                       st.error().message + " (config llm.maxEventBytes)");
        }
        for (const auto& ev : s.events) {
            s.saw_event = true;
            if (ev.data == "[DONE]") {
                s.done = true;
                co_return make_error(kDoneCode, "");
            }
            auto j = protocol::parse_json(ev.data);
            if (!j) co_return malformed(j.error().message);
            auto token = token_of(*j, s.finished);
            if (!token) co_return token.error();
            if (token->empty()) continue;
            if (!ctx.streamed_text_kept) s.output += *token;  // else the hub's log is the reply
            if (!emit_text_fast(ctx, *token)) co_await emit_text_rest(ctx, std::move(*token));
        }
        co_return Ok{};
    };
    auto res = co_await http_request(std::move(req), on_chunk);
    if (!res && res.error().code != kDoneCode) co_return res.error();
    if (!s.saw_event) {
        // The upstream ignored stream:true and answered with one JSON completion.
        auto j = protocol::parse_json(s.raw);
        if (j && j->is_object() && (*j)["choices"].is_array() && !(*j)["choices"].empty() &&
            (*j)["choices"][0].is_object() && (*j)["choices"][0]["message"].is_object() &&
            (*j)["choices"][0]["message"]["content"].is_string()) {
            s.output = (*j)["choices"][0]["message"]["content"].get<std::string>();
            if (!s.output.empty()) {
                std::string piece = s.output;
                co_await emit_text(ctx, std::move(piece));
            }
            co_return Json(std::move(s.output));
        }
        if (j) {
            bool unused = false;
            if (auto t = token_of(*j, unused); !t) co_return t.error();  // {"error": ...}
        }
        co_return malformed("no server-sent events and no JSON completion in the response").error();
    }
    if (!s.done && !s.finished) {
        co_return make_error("upstream_error", "the LLM upstream closed the stream before it finished");
    }
    if (ctx.streamed_text_kept) {
        ctx.output_is_streamed_text = true;
        co_return Json(nullptr);
    }
    co_return Json(std::move(s.output));
}

asio::awaitable<Result<Json>> run_http(RunContext& ctx) {
    UpstreamRequest req;
    req.url = ctx.version->url;
    req.body = dump(ctx.inputs.is_object() ? ctx.inputs : Json::object());
    ctx.release_request();
    req.headers.emplace_back("Accept", "application/json, text/plain;q=0.9, */*;q=0.5");
    ChunkHandler collect;  // none: the whole body is the output
    auto res = co_await http_request(std::move(req), std::move(collect));
    if (!res) co_return res.error();
    auto parsed = protocol::parse_json(res->body);
    Json output = parsed ? std::move(*parsed) : Json(res->body);
    std::string text = output.is_string() ? output.get<std::string>() : dump(output);
    co_await emit_text(ctx, std::move(text));
    co_return output;
}

// What a workflow app's first step gets: the one input's value when the app has a single input
// (a string as it is, other JSON as JSON text), else inputs.message, else the inputs as JSON.
std::string workflow_input(const Json& inputs) {
    if (inputs.is_object() && inputs.size() == 1) {
        const Json& v = inputs.begin().value();
        return v.is_string() ? v.get<std::string>() : dump(v);
    }
    return message_from_inputs(inputs);
}

asio::awaitable<void> discard_event(std::string, Json) { co_return; }

// A workflow app: the stored workflow's agent steps in stepOrder, each step's action followed by
// the previous step's output (the app's input for the first), exactly like a workflow run of the
// server-to-server API. Each step starts with an "agent-action" {tool: agentId, tool_input: its
// message}; the last step's output streams as the run's output. The whole workflow is checked
// before anything runs: a human_approval step cannot pause an app execution (nobody could resume
// it), so such a workflow is refused with the route that can run it.
asio::awaitable<Result<Json>> run_workflow(RunContext& ctx) {
    const std::string& wid = ctx.version->workflow_id;
    if (!ctx.load_workflow) co_return make_error("not_configured", "workflow apps need the server's store");
    std::string wid_arg = wid;
    auto loaded = co_await ctx.load_workflow(std::move(wid_arg));
    if (!loaded) co_return loaded.error();
    const Json steps = sorted_workflow_steps(*loaded);
    if (steps.empty()) co_return make_error("workflow_error", "workflow '" + wid + "' has no steps");
    std::vector<const AppConfig*> agents;
    for (const Json& step : steps) {
        const std::string agent_id = step.value("agentId", "");
        const std::string order = std::to_string(step.value("stepOrder", std::int64_t{0}));
        if (agent_id == "human_approval") {
            co_return make_error("unsupported", "workflow '" + wid + "' pauses for human approval at step " + order +
                                                    ": run it with POST /v1/workflows/" + wid + "/run");
        }
        const AppConfig* a = ctx.workspace ? ctx.workspace->find_app(agent_id) : nullptr;
        if (!a || a->type != protocol::AppType::agent || a->versions.empty()) {
            co_return make_error("agent_not_found", "workflow '" + wid + "' step " + order + ": agent '" + agent_id + "' not found");
        }
        agents.push_back(a);
    }
    std::string carry = workflow_input(ctx.inputs);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        std::string message = workflow_step_message(steps[i].value("action", ""), carry);
        std::string action_type = "agent-action";
        Json action{{"tool", agents[i]->id}, {"tool_input", message}};
        co_await ctx.emit(std::move(action_type), std::move(action));
        RunContext step;
        step.server = ctx.server;
        step.workspace = ctx.workspace;
        step.app = agents[i];
        step.version = &agents[i]->versions.back();
        step.inputs = Json{{"message", message}};
        step.message = message;
        step.chat = false;
        // Only the last step's text is the answer; earlier steps are announced, not streamed.
        if (i + 1 == steps.size()) step.emit = ctx.emit;
        else step.emit = discard_event;
        auto out = co_await dispatch_runner(step);
        if (!out) {
            Error e = out.error();
            if (e.code != "cancelled") {
                e.message = "workflow '" + wid + "' step " + std::to_string(steps[i].value("stepOrder", std::int64_t{0})) +
                            " (" + agents[i]->id + "): " + e.message;
            }
            co_return e;
        }
        carry = out->is_string() ? out->get<std::string>() : dump(*out);
    }
    co_return Json(std::move(carry));
}

asio::awaitable<Result<Json>> unsupported_app(std::string type) {
    co_return make_error("unsupported", type + " apps cannot be run here");
}

}  // namespace

Json sorted_workflow_steps(const Json& steps) {
    Json out = steps.is_array() ? steps : Json::array();
    std::stable_sort(out.begin(), out.end(), [](const Json& a, const Json& b) {
        return a.value("stepOrder", std::int64_t{0}) < b.value("stepOrder", std::int64_t{0});
    });
    return out;
}

std::string workflow_step_message(const std::string& action, const std::string& carry) {
    if (carry.empty()) return action;
    return action.empty() ? carry : action + "\n\n" + carry;
}

Result<std::vector<std::string>> template_placeholders(std::string_view text) {
    std::vector<std::string> names;
    auto st = scan_template(
        text, [](std::string_view) {},
        [&](std::string_view name) -> Status {
            if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
            return Ok{};
        });
    if (!st) return st.error();
    return names;
}

Result<std::string> render_template(std::string_view text, const Json& inputs) {
    std::string out;
    out.reserve(text.size());
    auto st = scan_template(
        text, [&](std::string_view literal) { out.append(literal); },
        [&](std::string_view name) -> Status {
            const Json* value = nullptr;
            if (inputs.is_object()) {
                auto it = inputs.find(name);
                if (it != inputs.end()) value = &*it;
            }
            if (value == nullptr) {
                return make_error("template_error", "the template uses {{" + std::string(name) +
                                                        "}} but no input \"" + std::string(name) + "\" was given");
            }
            if (value->is_string()) {
                out += value->get_ref<const std::string&>();
            } else {
                out += dump(*value);
            }
            return Ok{};
        });
    if (!st) return st.error();
    return out;
}

std::size_t chunk_end(std::string_view text, std::size_t start, int chunk_chars) {
    const std::size_t per = static_cast<std::size_t>(std::max(1, chunk_chars));
    std::size_t i = start;
    for (std::size_t chars = 0; chars < per && i < text.size(); ++chars) {
        // Advance over one code point (a lead byte and its continuation bytes).
        ++i;
        while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
    }
    return i;
}

std::vector<std::string> split_chunks(std::string_view text, int chunk_chars) {
    std::vector<std::string> out;
    for (std::size_t start = 0; start < text.size();) {
        const std::size_t end = chunk_end(text, start, chunk_chars);
        out.emplace_back(text.substr(start, end - start));
        start = end;
    }
    return out;
}

std::string clock_stamp(std::uint64_t monotonic_us) {
    static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out(4, 'A');
    for (int i = 3; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = digits[monotonic_us & 63];
        monotonic_us >>= 6;
    }
    return out;
}

std::string echo_reply(std::string_view message, std::size_t turn_number) {
    // A fence longer than any backtick run inside the message cannot be closed by it.
    std::size_t longest = 0, run = 0;
    for (char c : message) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    const std::string fence(std::max<std::size_t>(3, longest + 1), '`');
    std::size_t lines = message.empty() ? 0 : 1;
    for (char c : message) lines += c == '\n';
    if (!message.empty() && message.back() == '\n') --lines;

    std::string out;
    out += "## Echo\n\n";
    out += "- Turn: " + std::to_string(turn_number) + "\n";
    out += "- Length: " + std::to_string(utf8_length(message)) + " characters\n";
    out += "- Lines: " + std::to_string(lines) + "\n\n";
    out += "You said:\n\n";
    out += fence + "text\n";
    out += message;
    if (message.empty() || message.back() != '\n') out += '\n';
    out += fence + "\n";
    return out;
}

// Not a coroutine: it hands back the runner's own awaitable, so a run's chain of frames has one
// fewer (a frame lives as long as the run: ~0.8 KiB a stream).
asio::awaitable<Result<Json>> dispatch_runner(RunContext& ctx) {
    using protocol::AppType;
    switch (ctx.app->type) {
        case AppType::template_:
            return run_template(ctx);
        case AppType::llm:
            return run_llm(ctx);
        case AppType::http:
            return run_http(ctx);
        case AppType::agent:
            if (ctx.version->model == "llm") return run_llm(ctx);
            if (ctx.version->model == "clock") return run_clock(ctx);
            return run_echo(ctx);
        case AppType::workflow:
            return run_workflow(ctx);
    }
    return unsupported_app(std::string(protocol::to_string(ctx.app->type)));
}

std::optional<Error> check_run_context(const RunContext& ctx) {
    if (ctx.server == nullptr || ctx.app == nullptr || ctx.version == nullptr || !ctx.emit) {
        return make_error("internal_error", "a run needs server, app, version and emit");
    }
    return std::nullopt;
}

Error run_failure(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& x) {
        if (x.code() == asio::error::operation_aborted) return cancelled();
        return make_error("internal_error", std::string("the run failed: ") + x.what());
    } catch (const std::exception& x) {
        return make_error("internal_error", std::string("the run failed: ") + x.what());
    } catch (...) {
        return make_error("internal_error", "the run failed");
    }
}

asio::awaitable<Result<Json>> run_app(RunContext& ctx) {
    if (auto bad = check_run_context(ctx)) co_return *bad;
    // Once the caller cancels, asio throws operation_aborted from the next co_await; that and
    // any exception from emit become an Error here (no co_await inside a catch block).
    std::exception_ptr failed;
    try {
        if (cancelled_in(co_await asio::this_coro::cancellation_state)) co_return cancelled();
        auto result = co_await dispatch_runner(ctx);
        if (!result && cancelled_in(co_await asio::this_coro::cancellation_state)) co_return cancelled();
        co_return result;
    } catch (const std::exception&) {
        failed = std::current_exception();
    }
    co_return run_failure(failed);
}

}  // namespace confab::server
