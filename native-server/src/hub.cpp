// The execution manager: one coroutine per run on its own strand, dense event seqs stored before
// they are published, and SSE readers that replay storage then follow the live run without gaps.
#include "hub.hpp"

// g++ 12 destroys some temporaries of a co_await full-expression twice: aggregate-initialised
// ones (`T{...}`) and lambdas that capture non-trivial objects by value (verified with ASan).
// So in coroutines here such objects are named locals, and lambdas passed to co_await capture
// by reference.

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "confab/sse.hpp"
#include "runners.hpp"
#include "util.hpp"

namespace asio = boost::asio;

namespace confab::server {

namespace {

constexpr std::size_t kReplayPage = 256;


void encode_event(std::string& out, std::uint64_t seq, std::string_view type, std::string_view data) {
    std::string id = std::to_string(seq);
    sse::encode_to(out, sse::OutEvent{type, data, id, std::nullopt});
}

// The error text a failed turn keeps in the session's history, which a site's visitors read:
// runner errors are written for that (upstream ones never name the upstream); an internal
// failure's text (storage, exceptions) is not, and goes to the log only.
std::string visitor_error_message(const std::string& code, const std::string& message) {
    if (code == "internal" || code == "internal_error" || code == "storage_error" || code == "run_failed") {
        return "the reply failed";
    }
    return message;
}

// The stored steps of a workflow (a workflow app's run reads the definition as edited through the API).
asio::awaitable<Result<protocol::Json>> load_workflow_steps(DbExecutor& db, std::string ws_id, std::string wf_id) {
    auto doc = co_await db.run([&](Store& s) { return s.get_workflow(ws_id, wf_id); });
    if (!doc) co_return make_error("workflow_not_found", "workflow '" + wf_id + "' not found");
    co_return doc->doc.value("steps", protocol::Json::array());
}

}  // namespace

// ---------------------------------------------------------------- Subscriber

void Subscriber::notify_locked() {
    if (notified_) return;
    notified_ = true;
    asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
}

void Subscriber::push(const StoredEventPtr& ev) {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (lagged_) {
        notify_locked();
        return;  // it re-reads storage anyway
    }
    if (queue_.size() >= capacity_) {
        queue_.clear();
        lagged_ = true;
    } else {
        queue_.push_back(ev);
    }
    notify_locked();
}

void Subscriber::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    notify_locked();
}

void Subscriber::abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    notify_locked();
}

Subscriber::Batch Subscriber::take() {
    std::lock_guard lock(mu_);
    Batch b;
    b.events.assign(queue_.begin(), queue_.end());
    queue_.clear();
    b.lagged = std::exchange(lagged_, false);
    b.closed = closed_;
    b.aborted = aborted_;
    notified_ = false;
    return b;
}

asio::awaitable<void> Subscriber::wait(std::chrono::milliseconds max) {
    timer_.expires_after(max);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
}

// ---------------------------------------------------------------- ExecutionHub

struct ExecutionHub::LiveRun {
    LiveRun(std::string i, asio::strand<asio::io_context::executor_type> s)
        : id(std::move(i)), strand(std::move(s)) {}
    std::string id;
    asio::strand<asio::io_context::executor_type> strand;
    std::mutex mu;  // guards subs, finished
    std::vector<std::shared_ptr<Subscriber>> subs;
    bool finished = false;
    // Touched only on `strand`:
    asio::cancellation_signal signal;
    std::string cancel_reason;  // "", "cancel" or "shutdown"
    std::uint64_t seq = 0;
    std::string text;  // streamed text so far (chat result, partial output on cancel)
};

ExecutionHub::ExecutionHub(asio::io_context& ioc, DbExecutor& db, const ServerConfig& config,
                           Metrics& metrics, HubOptions options)
    : ioc_(ioc), db_(db), config_(config), metrics_(metrics), options_(options) {}

asio::awaitable<Result<ExecutionRecord>> ExecutionHub::start(StartSpec spec) {
    if (spec.id.empty()) spec.id = random_id("ex_");
    auto live = std::make_shared<LiveRun>(spec.id, asio::make_strand(ioc_));
    {
        std::lock_guard lock(mu_);
        if (shutting_down_) {
            co_return make_error("shutting_down", "the server is shutting down; retry shortly");
        }
        // Registered before the record exists, so whoever can see the record finds the run live.
        runs_[spec.id] = live;
    }
    ExecutionRecord rec;
    rec.id = spec.id;
    rec.workspace_id = spec.workspace->id;
    rec.user_id = spec.user_id;
    rec.app_id = spec.app->id;
    rec.version = spec.version->version;
    rec.kind = spec.chat ? "chat" : "execution";
    rec.session_id = spec.session_id;
    rec.status = protocol::ExecutionStatus::queued;
    rec.inputs = spec.inputs;
    rec.created_at = rec.updated_at = now_ms();
    Status st = make_error("internal", "not stored");
    try {
        st = co_await db_.run([&rec](Store& s) { return s.insert_execution(rec); });
    } catch (const std::exception& e) {
        st = make_error("internal", e.what());
    }
    if (!st) {
        std::lock_guard lock(mu_);
        runs_.erase(spec.id);
        co_return st.error();
    }
    // Spawned from the run's strand, so that binding the cancellation slot and a cancel() that
    // arrives meanwhile (posted to the same strand) never touch the signal concurrently.
    asio::post(live->strand, [this, live, spec = std::move(spec)]() mutable {
        asio::co_spawn(live->strand, run(live, std::move(spec)),
                       asio::bind_cancellation_slot(live->signal.slot(), asio::detached));
    });
    co_return rec;
}

asio::awaitable<void> ExecutionHub::append(std::shared_ptr<LiveRun> live, std::string type,
                                           protocol::Json data) {
    EventRecord ev;
    ev.seq = live->seq + 1;
    ev.type = std::move(type);
    ev.data = protocol::dump(data);
    ev.created_at = now_ms();
    const std::string& id = live->id;
    Status st = co_await db_.run([&](Store& s) { return s.append_event(id, ev); });
    if (!st) throw std::runtime_error("storing an event failed: " + st.error().message);
    live->seq = ev.seq;
    if (ev.type == "delta" || ev.type == "agent-response") {
        const char* key = ev.type == "delta" ? "content" : "token";
        if (data.is_object()) {
            auto it = data.find(key);
            if (it != data.end() && it->is_string()) live->text += it->get_ref<const std::string&>();
        }
    }
    std::string frame;
    encode_event(frame, ev.seq, ev.type, ev.data);
    auto shared = std::make_shared<const StoredEvent>(StoredEvent{ev.seq, std::move(ev.type), std::move(frame)});
    std::lock_guard lock(live->mu);
    for (auto& sub : live->subs) sub->push(shared);
}

asio::awaitable<void> ExecutionHub::emit(std::shared_ptr<LiveRun> live, std::string type,
                                         protocol::Json data) {
    // A runner that keeps emitting after a cancel gets stopped here: nothing after the cancel is
    // stored, so the terminal event is the last one.
    if (!live->cancel_reason.empty()) {
        throw boost::system::system_error(asio::error::operation_aborted, "cancelled");
    }
    co_await append(std::move(live), std::move(type), std::move(data));
}

asio::awaitable<void> ExecutionHub::run(std::shared_ptr<LiveRun> live, StartSpec spec) {
    using protocol::ExecutionStatus;
    const std::string id = live->id;
    Result<protocol::Json> result = make_error("internal", "the run did not start");
    try {
        Status st = co_await db_.run([&](Store& s) {
            return s.set_status(id, ExecutionStatus::running, now_ms());
        });
        if (!st) throw std::runtime_error(st.error().message);
        RunContext ctx;
        ctx.server = &config_;
        ctx.workspace = spec.workspace;
        ctx.app = spec.app;
        ctx.version = spec.version;
        ctx.inputs = spec.inputs;
        ctx.message = spec.message;
        ctx.history = spec.history;
        ctx.chat = spec.chat;
        if (spec.app && spec.app->type == protocol::AppType::workflow) {
            ctx.load_workflow = [this, ws = spec.workspace](std::string wf_id) {
                return load_workflow_steps(db_, ws ? ws->id : std::string(), std::move(wf_id));
            };
        }
        ctx.emit = [this, live](std::string type, protocol::Json data) {
            return emit(live, std::move(type), std::move(data));
        };
        if (live->cancel_reason.empty()) {  // a cancel may have come before the run started
            result = co_await run_app(ctx);
        } else {
            result = make_error("cancelled", "cancelled");
        }
    } catch (const boost::system::system_error& e) {
        if (e.code() == asio::error::operation_aborted) {
            result = make_error("cancelled", "cancelled");
        } else {
            result = make_error("internal", e.what());
        }
    } catch (const std::exception& e) {
        result = make_error("internal", e.what());
    }
    // From here on nothing may be interrupted: the terminal events must be written.
    co_await asio::this_coro::reset_cancellation_state();
    co_await asio::this_coro::throw_if_cancelled(false);

    ExecutionStatus status;
    protocol::Json output = nullptr;
    std::optional<std::string> error;
    std::string code;
    if (live->cancel_reason == "shutdown") {
        status = ExecutionStatus::error;
        error = "server shutting down";
        code = "shutting_down";
    } else if (live->cancel_reason == "cancel" || (!result.ok() && result.error().code == "cancelled")) {
        status = ExecutionStatus::cancelled;
        if (!live->text.empty()) output = live->text;  // what the client already saw
    } else if (result.ok()) {
        status = ExecutionStatus::success;
        output = std::move(result.value());
    } else {
        status = ExecutionStatus::error;
        error = result.error().message;
        code = result.error().code.empty() ? "run_failed" : result.error().code;
    }
    std::string chat_text;
    if (spec.chat) {
        if (status == ExecutionStatus::success) {
            chat_text = output.is_string() ? output.get<std::string>() : protocol::dump(output);
        } else {
            chat_text = live->text;
        }
    }
    try {
        // The assistant message and the terminal status are stored before the "completed" event,
        // so a client that saw "completed" finds both when it asks.
        // Every turn leaves its reply in the history, a failed or stopped one too (with what was
        // streamed, possibly nothing), so that a reload shows the turn as it ended.
        if (spec.chat && spec.session_id) {
            MessageRecord m;
            m.session_id = *spec.session_id;
            m.role = protocol::Role::assistant;
            m.content = chat_text;
            m.execution_id = id;
            m.turn_id = spec.turn_id;
            m.created_at = now_ms();
            m.status = protocol::to_string(status);
            if (status == ExecutionStatus::error) {
                m.error_code = code;
                m.error_message = visitor_error_message(code, *error);
            }
            Status st = co_await db_.run([&](Store& s) { return s.append_message(m); });
            if (!st) log_line(R"({"level":"error","msg":"storing the assistant message failed","execution":")" + id + "\"}");
        }
        Status fin = co_await db_.run([&](Store& s) {
            return s.finish_execution(id, status, output, error, now_ms());
        });
        if (!fin && fin.error().code != "conflict") {
            log_line(R"({"level":"error","msg":"finishing an execution failed","execution":")" + id + "\"}");
        }
        if (status == ExecutionStatus::error) {
            protocol::ApiError failure{*error, code};  // named: see the note at the top of this file
            protocol::Json failure_json = protocol::encode(failure);
            co_await append(live, "error", std::move(failure_json));
        }
        if (spec.chat) {
            protocol::ChatCompleted c;
            c.result = chat_text;
            c.session_id = spec.session_id.value_or("");
            c.status = status;
            co_await append(live, "completed", protocol::encode(c));
        } else {
            protocol::ExecutionCompleted c;
            c.status = status;
            c.output = output;
            c.error = error;
            co_await append(live, "completed", protocol::encode(c));
        }
    } catch (const std::exception& e) {
        log_line(std::string(R"({"level":"error","msg":"ending a run failed","execution":")") + id +
                 R"(","reason":)" + protocol::dump(protocol::Json(e.what())) + "}");
    }
    finalize(live);
}

void ExecutionHub::finalize(const std::shared_ptr<LiveRun>& live) {
    {
        std::lock_guard lock(mu_);
        runs_.erase(live->id);
    }
    std::lock_guard lock(live->mu);
    live->finished = true;
    for (auto& sub : live->subs) sub->close();
    live->subs.clear();
}

std::shared_ptr<ExecutionHub::LiveRun> ExecutionHub::subscribe(const std::string& id,
                                                               const std::shared_ptr<Subscriber>& sub) {
    std::shared_ptr<LiveRun> live;
    {
        std::lock_guard lock(mu_);
        auto it = runs_.find(id);
        if (it == runs_.end()) return nullptr;
        live = it->second;
    }
    std::lock_guard lock(live->mu);
    if (live->finished) return nullptr;  // every event is stored by now
    live->subs.push_back(sub);
    return live;
}

void ExecutionHub::unsubscribe(const std::shared_ptr<LiveRun>& live, const std::shared_ptr<Subscriber>& sub) {
    if (!live) return;
    std::lock_guard lock(live->mu);
    auto& v = live->subs;
    v.erase(std::remove(v.begin(), v.end(), sub), v.end());
}

asio::awaitable<void> ExecutionHub::stream(std::string id, std::uint64_t after_seq, EventSink& sink) {
    auto ex = co_await asio::this_coro::executor;
    auto sub = std::make_shared<Subscriber>(ex, options_.stream_queue);
    // Subscribe first, then read storage: an event is stored before it is published, so each one
    // is either in storage by the time we read it or reaches our queue afterwards (or both: the
    // seq check drops the second copy).
    sink.on_client_gone([sub] { sub->abort(); });
    auto live = subscribe(id, sub);
    metrics_.stream_opened();
    std::uint64_t last = after_seq;
    bool done = false;
    bool replay = true;
    auto last_write = std::chrono::steady_clock::now();
    try {
        while (!done) {
            if (replay) {
                replay = false;
                for (;;) {
                    auto evs = co_await db_.run([&id, last](Store& s) { return s.events_after(id, last, kReplayPage); });
                    if (evs.empty()) break;
                    std::string buf;
                    for (const auto& e : evs) {
                        if (e.seq <= last) continue;
                        encode_event(buf, e.seq, e.type, e.data);
                        last = e.seq;
                        if (e.type == "completed") {
                            done = true;
                            break;
                        }
                    }
                    if (!buf.empty()) {
                        if (!co_await sink.write(std::move(buf))) goto out;
                        last_write = std::chrono::steady_clock::now();
                    }
                    if (done || evs.size() < kReplayPage) break;
                }
                if (done || !live) break;  // not live: storage had everything
            }
            auto batch = sub->take();
            if (batch.aborted) break;
            if (batch.lagged) {
                metrics_.stream_caught_up();
                replay = true;
                continue;
            }
            std::string buf;
            for (const auto& e : batch.events) {
                if (e->seq <= last) continue;
                if (e->seq != last + 1) {  // never expected; storage has the missing ones
                    replay = true;
                    break;
                }
                buf += e->frame;
                last = e->seq;
                if (e->type == "completed") {
                    done = true;
                    break;
                }
            }
            if (!buf.empty()) {
                if (!co_await sink.write(std::move(buf))) break;
                last_write = std::chrono::steady_clock::now();
                continue;
            }
            if (replay || done) continue;
            if (batch.closed) {
                replay = true;  // a final storage read settles any doubt, then the loop ends
                live.reset();
                continue;
            }
            auto since = std::chrono::steady_clock::now() - last_write;
            if (since >= options_.heartbeat) {
                if (!co_await sink.write(sse::encode_comment("hb"))) break;
                last_write = std::chrono::steady_clock::now();
                continue;
            }
            co_await sub->wait(std::chrono::duration_cast<std::chrono::milliseconds>(options_.heartbeat - since) +
                               std::chrono::milliseconds(1));
        }
    } catch (const std::exception& e) {
        log_line(std::string(R"({"level":"error","msg":"stream failed","execution":")") + id +
                 R"(","reason":)" + protocol::dump(protocol::Json(e.what())) + "}");
    }
out:
    unsubscribe(live, sub);
    metrics_.stream_closed();
}

asio::awaitable<void> ExecutionHub::cancel_and_settle(ExecutionRecord rec) {
    const std::string id = rec.id;
    if (cancel(id)) {
        co_await wait_finished(id, std::chrono::milliseconds(5000));
        co_return;
    }
    // Not running in this process and not terminal: close it out here so it cannot stay open.
    const auto last_seq = rec.last_seq;
    co_await db_.run([&](Store& s) {
        if (!s.finish_execution(id, protocol::ExecutionStatus::cancelled, nullptr, std::nullopt, now_ms())) return;
        protocol::ExecutionCompleted done;
        done.status = protocol::ExecutionStatus::cancelled;
        EventRecord ev{last_seq + 1, "completed", protocol::dump(protocol::encode(done)), now_ms()};
        (void)s.append_event(id, ev);
    });
}

bool ExecutionHub::cancel(const std::string& id) {
    std::shared_ptr<LiveRun> live;
    {
        std::lock_guard lock(mu_);
        auto it = runs_.find(id);
        if (it == runs_.end()) return false;
        live = it->second;
    }
    asio::post(live->strand, [live] {
        if (!live->cancel_reason.empty()) return;
        live->cancel_reason = "cancel";
        live->signal.emit(asio::cancellation_type::terminal);
    });
    return true;
}

asio::awaitable<bool> ExecutionHub::wait_finished(std::string id, std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    auto sub = std::make_shared<Subscriber>(ex, 1);
    auto live = subscribe(id, sub);
    if (!live) co_return true;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool finished = false;
    for (;;) {
        if (sub->take().closed) {
            finished = true;
            break;
        }
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        co_await sub->wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                           std::chrono::milliseconds(1));
    }
    unsubscribe(live, sub);
    co_return finished;
}

bool ExecutionHub::is_live(const std::string& id) const {
    std::lock_guard lock(mu_);
    return runs_.count(id) != 0;
}

void ExecutionHub::shutdown() {
    std::vector<std::shared_ptr<LiveRun>> live;
    {
        std::lock_guard lock(mu_);
        shutting_down_ = true;
        for (auto& [id, run] : runs_) live.push_back(run);
    }
    for (auto& run : live) {
        asio::post(run->strand, [run] {
            if (!run->cancel_reason.empty()) return;
            run->cancel_reason = "shutdown";
            run->signal.emit(asio::cancellation_type::terminal);
        });
    }
}

std::size_t ExecutionHub::active_runs() const {
    std::lock_guard lock(mu_);
    return runs_.size();
}

bool ExecutionHub::shutting_down() const {
    std::lock_guard lock(mu_);
    return shutting_down_;
}

}  // namespace confab::server
