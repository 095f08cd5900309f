// The execution manager: one coroutine per run on its own strand, dense event seqs stored before
// they are published, and SSE readers (small objects, not coroutines) that replay the run's log or
// storage, then follow the live run without gaps.
#include "hub.hpp"

// g++ 12 destroys some temporaries of a co_await full-expression twice: aggregate-initialised
// ones (`T{...}`) and lambdas that capture non-trivial objects by value (verified with ASan).
// So in coroutines here such objects are named locals, and lambdas passed to co_await capture
// by reference.

#include <algorithm>
#include <exception>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "confab/json_write.hpp"
#include "confab/sse.hpp"
#include "runners.hpp"
#include "util.hpp"

namespace asio = boost::asio;

namespace confab::server {

namespace {

constexpr std::size_t kReplayPage = 256;
// Events a run may have emitted and not yet stored before its runner waits (backpressure).
constexpr std::size_t kMaxQueued = 16;

// Storing an event failed: the run cannot go on (nothing unstored may be sent), and it ends as
// error "storage_unavailable" once storage accepts its final state again.
struct StorageFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};


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

// The timer is only ever touched under mu_ (armed in wait(), cancelled here), so a notification
// either finds the wait armed and cancels it, or comes first and leaves notified_ set, which the
// arming sees. Nothing depends on which thread or executor either side runs on.
void Subscriber::notify_locked() {
    if (notified_) return;
    notified_ = true;
    timer_.cancel();
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

bool Subscriber::aborted() {
    std::lock_guard lock(mu_);
    return aborted_;
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
    auto arm = [this, max](auto handler) {
        std::lock_guard lock(mu_);
        timer_.expires_after(max);
        // No per-operation cancellation: a cancellation emitted from another thread would touch
        // the timer outside mu_. The wait is bounded by `max` and callers loop anyway.
        timer_.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), std::move(handler)));
        if (notified_) timer_.cancel();  // notified since the last take(): wake at once
    };
    co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>,
                                  void(boost::system::error_code)>(std::move(arm),
                                                                   asio::as_tuple(asio::use_awaitable));
}

// ---------------------------------------------------------------- ExecutionHub

std::uint64_t first_compaction(std::uint64_t every, std::string_view run_id) {
    if (every <= 1) return 1;
    return every / 2 + std::hash<std::string_view>{}(run_id) % every;
}

struct ExecutionHub::LiveRun {
    LiveRun(std::string i, asio::strand<asio::io_context::executor_type> s)
        : id(std::move(i)), strand(std::move(s)) {}
    std::string id;
    asio::strand<asio::io_context::executor_type> strand;
    std::mutex mu;  // guards subs, finished
    std::vector<std::shared_ptr<RunListener>> subs;
    bool finished = false;
    // Terminal events sent to readers although storage refused them (a run whose storage failed
    // must still end for its readers); stored later by the retry loop, unchanged. Late subscribers
    // get them too.
    std::vector<StoredEventPtr> unstored;
    // Touched only on `strand`:
    asio::cancellation_signal signal;
    std::string cancel_reason;  // "", "cancel" or "shutdown"
    std::uint64_t seq = 0;     // the last event stored (and published)
    std::uint64_t emitted = 0;  // the last seq handed out by emit (>= seq)
    std::uint64_t compacted = 0;  // the last seq in the run's events rows (the rest is in the journal)
    std::uint64_t compact_at = 0;  // the seq at which the next flush compacts (first_compaction)
    bool storage_failed = false;  // an event could not be stored: the run ends storage_unavailable
    // Guarded by mu (readers snapshot it from any thread); appended on `strand` after each commit:
    // every stored event (1..seq), then the terminal ones. Its text is the streamed reply (chat
    // result, partial output on cancel).
    RunLog log;
    // Events the runner emitted that are not stored yet: a flush stores them in one db job (the
    // db thread commits the jobs waiting at that moment in one transaction), then publishes them.
    // The runner does not wait for the commit; it waits only while kMaxQueued are queued.
    std::vector<EventRecord> queued;
    struct QueuedText {
        std::optional<std::string> text;  // its reply text
        bool text_only = false;           // its data is exactly that text (RunLog::append)
    };
    std::vector<QueuedText> queued_text;
    bool flushing = false;
    std::optional<asio::steady_timer> flushed;  // cancelled after each flush: wakes a waiting runner
    // A remote run (shared store): the run lives on another instance; `log` is filled by the
    // follower from the store (`seq` is the follower's: the last seq in the log). `dropped`
    // (under the hub's mu_): nobody read it any more and it left remotes_.
    bool remote = false;
    bool dropped = false;
};

ExecutionHub::ExecutionHub(asio::io_context& ioc, DbExecutor& db, const ServerConfig& config,
                           Metrics& metrics, HubOptions options)
    : ioc_(ioc), db_(db), config_(config), metrics_(metrics), options_(options),
      follow_strand_(asio::make_strand(ioc)), follow_timer_(follow_strand_) {}

asio::awaitable<Result<ExecutionRecord>> ExecutionHub::start(StartSpec spec) {
    if (spec.id.empty()) spec.id = random_id("ex_");
    auto live = std::make_shared<LiveRun>(spec.id, asio::make_strand(ioc_));
    live->compact_at = first_compaction(options_.compact_every, spec.id);
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

// On the run's strand: the checks of an emit, before anything is queued. A runner that keeps
// emitting after a cancel gets stopped here: nothing after the cancel is stored, so the terminal
// event is the last one.
void ExecutionHub::check_emit(const LiveRun& live) {
    if (!live.cancel_reason.empty()) {
        throw boost::system::system_error(asio::error::operation_aborted, "cancelled");
    }
    if (live.storage_failed) throw StorageFailure("storing an event failed");
}

// Queues one event (its type, its data as JSON text, its reply text) and starts a flush if none
// runs. True when the queue is full: the runner waits (wait_room) before its next event.
bool ExecutionHub::queue_event(const std::shared_ptr<LiveRun>& live, std::string type, std::string data,
                               const std::string* text, bool text_only) {
    EventRecord& ev = live->queued.emplace_back();
    ev.seq = ++live->emitted;
    ev.type = std::move(type);
    ev.data = std::move(data);
    ev.created_at = now_ms();
    auto& qt = live->queued_text.emplace_back();
    if (text) {
        qt.text = *text;
        qt.text_only = text_only;
    }
    if (!live->flushing) {
        live->flushing = true;
        flush(live);
    }
    return live->queued.size() >= kMaxQueued;
}

// Backpressure: storage slower than the runner throttles it, and nothing grows without bound.
asio::awaitable<void> ExecutionHub::wait_room(std::shared_ptr<LiveRun> live) {
    while (live->queued.size() >= kMaxQueued && !live->storage_failed) {
        co_await wait_flushed(live);
        if (!live->cancel_reason.empty()) {
            throw boost::system::system_error(asio::error::operation_aborted, "cancelled");
        }
    }
    if (live->storage_failed) throw StorageFailure("storing an event failed");
}

asio::awaitable<void> ExecutionHub::emit(std::shared_ptr<LiveRun> live, std::string type,
                                         protocol::Json data) {
    check_emit(*live);
    const std::string* text = protocol::reply_text_of(type, data);
    const bool text_only = text && data.size() == 1;
    if (queue_event(live, std::move(type), protocol::dump(data), text, text_only) || live->storage_failed) {
        co_await wait_room(std::move(live));
    }
}

// The runners' token path (RunContext::emit_text_now): the event emit would queue for
// encode(AgentResponse{text}) / encode(Delta{text}), byte for byte, without building it.
bool ExecutionHub::emit_text(const std::shared_ptr<LiveRun>& live, bool chat, std::string_view text) {
    check_emit(*live);
    std::string data;
    data.reserve(text.size() + 16);
    data += chat ? R"({"token":)" : R"({"content":)";
    protocol::append_json_string(data, text);
    data += '}';
    const std::string t(text);
    const bool full = queue_event(live, chat ? "agent-response" : "delta", std::move(data), &t, true);
    return full || live->storage_failed;
}

asio::awaitable<void> ExecutionHub::wait_flushed(std::shared_ptr<LiveRun> live) {
    if (!live->flushed) live->flushed.emplace(live->strand);
    live->flushed->expires_after(std::chrono::seconds(60));
    co_await live->flushed->async_wait(asio::as_tuple(asio::use_awaitable));  // woken by cancel()
}

asio::awaitable<void> ExecutionHub::drain(std::shared_ptr<LiveRun> live) {
    while (live->flushing || (!live->queued.empty() && !live->storage_failed)) co_await wait_flushed(live);
}

// Stores what the run has queued, in order, one db job per round, and publishes each round once
// it is committed; runs on the run's strand, one round after the other until the queue is empty.
// Not a coroutine: a round is one db job whose answer is posted back to the strand (a coroutine
// per round cost three frames and a spawn per event).
void ExecutionHub::flush(std::shared_ptr<LiveRun> live) {
    if (live->queued.empty() || live->storage_failed) {
        live->flushing = false;
        if (live->flushed) live->flushed->cancel();
        return;
    }
    struct Round {
        std::vector<EventRecord> events;
        std::vector<LiveRun::QueuedText> texts;
        Status stored = Ok{};
    };
    Round round;
    round.events = std::move(live->queued);
    round.texts = std::move(live->queued_text);
    live->queued.clear();
    live->queued_text.clear();
    // At compact_at (every options_.compact_every events; the first spread by the run's id, see
    // first_compaction), the ones journalled before go to the run's events rows in
    // the same transaction (from the log: many of one run at once, so its pages are written
    // once for all of them), and the journal can be cut past the run's older rows.
    // The events to compact are read from the log by the db job itself, as it runs: a job
    // waiting in the queue holds no copy of them (when many runs compact at once, as runs
    // started together do, queued copies were most of the server's memory). The log holds
    // (compacted, seq] and only this flush appends to it, after the commit.
    const bool compact = live->seq >= live->compact_at;
    const std::uint64_t compact_from = live->compacted;
    const std::uint64_t compact_to = live->seq;
    // The job may use the run by reference: the answer below holds it until the job has run.
    LiveRun* run = live.get();
    auto job = [run, compact, compact_from, r = std::move(round)](Store& s) mutable {
        std::vector<EventRecord> moved;
        if (compact) {
            std::lock_guard lock(run->mu);
            moved = run->log.events_after(compact_from);
        }
        r.stored = s.journal_events(run->id, r.events, moved);
        return std::move(r);
    };
    auto answer = [this, live, compact, compact_to](std::exception_ptr failed, std::optional<Round> r) mutable {
        Status st = Ok{};
        if (failed || !r) {  // the group commit failed, or the executor stopped
            std::string why = "not stored";
            try {
                if (failed) std::rethrow_exception(failed);
            } catch (const std::exception& e) {
                why = e.what();
            } catch (...) {
            }
            st = make_error("storage_unavailable", why);
        } else {
            st = std::move(r->stored);
        }
        if (!st) {
            // Nothing of this round (nor what was queued after it) was stored or sent: the run
            // ends storage_unavailable after its last stored event.
            live->storage_failed = true;
            live->queued.clear();
            live->queued_text.clear();
            live->emitted = live->seq;
            log_line(std::string(R"({"level":"error","msg":"storing events failed","execution":")") + live->id +
                     R"(","reason":)" + protocol::dump(protocol::Json(st.error().message)) + "}");
            flush(std::move(live));  // ends the chain
            return;
        }
        if (compact) {
            live->compacted = compact_to;
            live->compact_at = compact_to + options_.compact_every;
        }
        std::vector<StoredEventPtr> frames;
        frames.reserve(r->events.size());
        for (EventRecord& ev : r->events) {
            std::string frame;
            encode_event(frame, ev.seq, ev.type, ev.data);
            frames.push_back(std::make_shared<const StoredEvent>(StoredEvent{ev.seq, ev.type, std::move(frame)}));
        }
        {
            std::lock_guard lock(live->mu);
            for (std::size_t i = 0; i < r->events.size(); ++i) {
                const EventRecord& ev = r->events[i];
                const auto& t = r->texts[i];
                live->log.append(ev.type, ev.data, t.text ? &*t.text : nullptr, t.text_only, ev.created_at);
            }
            live->seq = r->events.back().seq;
            for (auto& sub : live->subs) sub->on_events(frames.data(), frames.size());
        }
        if (live->flushed) live->flushed->cancel();
        flush(std::move(live));
    };
    db_.submit(std::move(job), asio::bind_executor(live->strand, std::move(answer)));
}

// A run: the runner, then the completion. One frame for both, alive while the runner runs (the
// completion's locals are in finish_run, which exists only at the end: a run's frames are what a
// stream costs; run and a separate run_runner were two, ~1.6 KiB).
asio::awaitable<void> ExecutionHub::run(std::shared_ptr<LiveRun> live, StartSpec spec) {
    RunnerOutcome out;
    try {
        Status st = co_await db_.run([&live](Store& s) {
            return s.set_status(live->id, protocol::ExecutionStatus::running, now_ms());
        });
        if (!st) throw StorageFailure(st.error().message);
        RunContext ctx;
        ctx.server = &config_;
        ctx.workspace = spec.workspace;
        ctx.app = spec.app;
        ctx.version = spec.version;
        // Moved, not copied: the run needs them only here (the user's message is held once).
        ctx.inputs = std::move(spec.inputs);
        ctx.message = std::move(spec.message);
        ctx.history = std::move(spec.history);
        ctx.streamed_text_kept = true;
        ctx.chat = spec.chat;
        if (spec.app && spec.app->type == protocol::AppType::workflow) {
            ctx.load_workflow = [this, ws = spec.workspace](std::string wf_id) {
                return load_workflow_steps(db_, ws ? ws->id : std::string(), std::move(wf_id));
            };
        }
        // Each captures `this` and the address of this frame's `live` (the context lives in this
        // frame): 16 bytes, kept inside the std::function, not an allocation each per run.
        const std::shared_ptr<LiveRun>* run = &live;
        ctx.emit = [this, run](std::string type, protocol::Json data) {
            return emit(*run, std::move(type), std::move(data));
        };
        if (spec.chat) {
            ctx.emit_text_now = [this, run](std::string_view text) {
                return emit_text(*run, true, text) ? RunContext::TextQueued::queued_wait : RunContext::TextQueued::queued;
            };
        } else {
            ctx.emit_text_now = [this, run](std::string_view text) {
                return emit_text(*run, false, text) ? RunContext::TextQueued::queued_wait : RunContext::TextQueued::queued;
            };
        }
        ctx.emit_wait = [this, run] { return wait_room(*run); };
        if (!live->cancel_reason.empty()) {  // a cancel may have come before the run started
            out.result = make_error("cancelled", "cancelled");
        } else if (auto bad = check_run_context(ctx)) {
            out.result = std::move(*bad);
        } else {
            // The runner is awaited in this frame, not in run_app's (a frame less per run): its
            // exceptions reach the catches below as run_app would turn them into errors, and a
            // cancel (cancel_reason) decides the run's end in finish_run.
            out.result = co_await dispatch_runner(ctx);
            out.output_streamed = ctx.output_is_streamed_text;
        }
    } catch (const StorageFailure& e) {
        out.storage_failed = true;
        log_line(std::string(R"({"level":"error","msg":"storage failed mid-run","execution":")") + live->id +
                 R"(","reason":)" + protocol::dump(protocol::Json(e.what())) + "}");
    } catch (const boost::system::system_error& e) {  // cancelled, before or while the runner ran
        if (e.code() == asio::error::operation_aborted) {
            out.result = make_error("cancelled", "cancelled");
        } else {
            out.result = run_failure(std::current_exception());
        }
    } catch (const std::exception&) {
        out.result = run_failure(std::current_exception());  // "internal_error", as run_app says it
    }
    // From here on nothing may be interrupted: the terminal events must be written.
    co_await asio::this_coro::reset_cancellation_state();
    co_await asio::this_coro::throw_if_cancelled(false);
    // What the runner emitted is stored (or storage failed) before the run's end is decided.
    co_await drain(live);

    co_await finish_run(live, spec, std::move(out));
}

// The completion: the run's end decided, stored in one transaction and sent.
asio::awaitable<void> ExecutionHub::finish_run(std::shared_ptr<LiveRun> live, const StartSpec& spec, RunnerOutcome out) {
    using protocol::ExecutionStatus;
    const std::string& id = live->id;
    const Result<protocol::Json>& result = out.result;
    const bool storage_failed = out.storage_failed;
    const bool output_streamed = out.output_streamed;
    ExecutionStatus status;
    protocol::Json output = nullptr;
    std::optional<std::string> error;
    std::string code;
    // Read on the strand: only flush (on the strand, finished by now) appends to the log.
    const std::string_view streamed = live->log.text();
    auto fail_on_storage = [&] {
        status = ExecutionStatus::error;
        output = nullptr;
        error = "storage is unavailable: the run was stopped";
        code = "storage_unavailable";
    };
    if (storage_failed || live->storage_failed) {
        fail_on_storage();
    } else if (live->cancel_reason == "shutdown") {
        status = ExecutionStatus::error;
        error = "server shutting down";
        code = "shutting_down";
    } else if (live->cancel_reason == "cancel" || (!result.ok() && result.error().code == "cancelled")) {
        status = ExecutionStatus::cancelled;
        if (!streamed.empty()) output = std::string(streamed);  // what the client already saw
    } else if (result.ok()) {
        status = ExecutionStatus::success;
        // After drain(): the log holds every event the runner emitted, so its text is the reply.
        output = output_streamed ? protocol::Json(std::string(streamed)) : std::move(out.result.value());
    } else {
        status = ExecutionStatus::error;
        error = result.error().message;
        code = result.error().code.empty() ? "run_failed" : result.error().code;
    }

    // The completion: the terminal events at seq + 1 (and + 2) and the final state, committed in
    // one transaction with every event of the run (docs/STREAMING.md, clause 2), before anyone is
    // sent "completed". If storage refuses it, the run ends as error "storage_unavailable".
    RunCompletion done;
    std::vector<StoredEventPtr> terminal;
    auto build = [&] {
        done = RunCompletion{};
        done.execution_id = id;
        done.status = status;
        done.output = output;
        done.error = error;
        done.now = now_ms();
        std::string chat_text;
        if (spec.chat) {
            chat_text = status == ExecutionStatus::success
                            ? (output.is_string() ? output.get<std::string>() : protocol::dump(output))
                            : std::string(streamed);
        }
        // Every turn leaves its reply in the history, a failed or stopped one too (with what was
        // streamed, possibly nothing), so that a reload shows the turn as it ended.
        if (spec.chat && spec.session_id) {
            MessageRecord m;
            m.session_id = *spec.session_id;
            m.role = protocol::Role::assistant;
            m.content = chat_text;
            m.execution_id = id;
            m.turn_id = spec.turn_id;
            m.created_at = done.now;
            m.status = protocol::to_string(status);
            if (status == ExecutionStatus::error) {
                m.error_code = code;
                m.error_message = visitor_error_message(code, *error);
            }
            done.message = std::move(m);
        }
        std::vector<std::pair<std::string, protocol::Json>> ends;
        if (status == ExecutionStatus::error) {
            protocol::ApiError failure{*error, code};  // named: see the note at the top of this file
            ends.emplace_back("error", protocol::encode(failure));
        }
        if (spec.chat) {
            protocol::ChatCompleted c;
            c.result = chat_text;
            c.session_id = spec.session_id.value_or("");
            c.status = status;
            ends.emplace_back("completed", protocol::encode(c));
        } else {
            protocol::ExecutionCompleted c;
            c.status = status;
            c.output = output;
            c.error = error;
            ends.emplace_back("completed", protocol::encode(c));
        }
        {
            // Events up to `compacted` are in the run's events rows already.
            std::lock_guard lock(live->mu);
            done.events = live->log.events_after(live->compacted);
        }
        terminal.clear();
        std::uint64_t seq = live->seq;
        for (auto& [type, data] : ends) {
            EventRecord& ev = done.events.emplace_back();
            ev.seq = ++seq;
            ev.type = type;
            ev.data = protocol::dump(data);
            ev.created_at = done.now;
            std::string frame;
            encode_event(frame, ev.seq, ev.type, ev.data);
            terminal.push_back(std::make_shared<const StoredEvent>(StoredEvent{ev.seq, ev.type, std::move(frame)}));
        }
    };
    build();
    bool stored = co_await store_completion(done);
    if (!stored && status != ExecutionStatus::error) {
        // A success (or cancel) that cannot be recorded is not reported as one.
        fail_on_storage();
        build();
    }
    // The readers get the end now: stored, or (storage refused it) sent unstored and stored later,
    // unchanged and at the same seqs, so a reader that resumes later reads exactly what it was sent.
    // On a shared store, one caveat: if storage stays unreachable for longer than this instance's
    // lease, another instance takes the run over and stores ITS end ("interrupted") at these seqs,
    // and this instance exits fenced when storage is back. Readers then saw an error end that the
    // database words differently; both are the run's error end at the same seqs (README).
    {
        std::lock_guard lock(live->mu);
        const std::size_t first_terminal = done.events.size() - terminal.size();
        for (std::size_t i = 0; i < terminal.size(); ++i) {
            const EventRecord& ev = done.events[first_terminal + i];
            if (stored) {
                live->log.append(ev.type, ev.data, nullptr, false, ev.created_at);
            } else {
                live->unstored.push_back(terminal[i]);
            }
            for (auto& sub : live->subs) sub->on_events(&terminal[i], 1);
        }
        if (stored) live->seq = terminal.back()->seq;
    }
    if (stored) {
        finalize(live);
        co_return;
    }
    // Retried with backoff until storage accepts it (a restart closes the run as "interrupted"
    // if it never does).
    metrics_.storage_failed_run();
    StorageBackoff backoff;
    for (;;) {
        if (!co_await backoff.wait(shutting_down())) {
            log_line(R"({"level":"error","msg":"shutting down with a run whose final state is not stored; the restart closes it","execution":")" + id + "\"}");
            break;
        }
        if (co_await store_completion(done)) {
            log_line(R"({"level":"info","msg":"storage accepted the final state of a run again","execution":")" + id + "\"}");
            break;
        }
    }
    finalize(live);
}

asio::awaitable<bool> ExecutionHub::store_completion(const RunCompletion& done) {
    Status st = make_error("storage_unavailable", "not stored");
    try {
        st = co_await db_.run([&done](Store& s) { return s.complete_run(done); });
    } catch (const std::exception& e) {  // the group commit failed, or the executor stopped
        st = make_error("storage_unavailable", e.what());
    }
    if (st) co_return true;
    if (st.error().code == "conflict") {
        // Finished already (closed by someone else, or a batch reported as failed had committed):
        // what is stored stands.
        log_line(R"({"level":"warn","msg":"a run's completion found it completed already","execution":")" + done.execution_id +
                 R"(","reason":)" + protocol::dump(protocol::Json(st.error().message)) + "}");
        co_return true;
    }
    log_line(R"({"level":"error","msg":"storing the final state of a run failed","execution":")" + done.execution_id +
             R"(","reason":)" + protocol::dump(protocol::Json(st.error().message)) + "}");
    co_return false;
}

void ExecutionHub::finalize(const std::shared_ptr<LiveRun>& live) {
    {
        std::lock_guard lock(mu_);
        runs_.erase(live->id);
    }
    std::lock_guard lock(live->mu);
    live->finished = true;
    auto subs = std::move(live->subs);
    live->subs.clear();
    for (auto& sub : subs) sub->on_closed();
}

std::shared_ptr<ExecutionHub::LiveRun> ExecutionHub::subscribe(const std::string& id,
                                                               const std::shared_ptr<RunListener>& sub) {
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

void ExecutionHub::unsubscribe(const std::shared_ptr<LiveRun>& live, const std::shared_ptr<RunListener>& sub) {
    if (!live) return;
    std::lock_guard lock(live->mu);
    auto& v = live->subs;
    v.erase(std::remove(v.begin(), v.end(), sub), v.end());
}

std::size_t ExecutionHub::replay_live(LiveRun& live, std::uint64_t& last, std::size_t limit, std::string& out,
                                      bool& done) {
    std::vector<EventRecord> evs = live.log.events_after(last, limit);
    for (const EventRecord& e : evs) {
        encode_event(out, e.seq, e.type, e.data);
        last = e.seq;
        if (e.type == "completed") {
            done = true;
            return evs.size();
        }
    }
    std::size_t n = evs.size();
    for (const auto& ev : live.unstored) {
        if (n >= limit || ev->seq != last + 1) continue;
        out += ev->frame;
        last = ev->seq;
        ++n;
        if (ev->type == "completed") {
            done = true;
            break;
        }
    }
    return n;
}

// A live run's SSE reader: fed under the run's lock by its publishers while it keeps up, caught
// up from the run's log (page by page, each once the socket took the last) when it fell behind.
// Lock order: the run's mu, then the reader's, then the stream's own.
struct ExecutionHub::Reader final : RunListener, std::enable_shared_from_this<Reader> {
    Reader(std::shared_ptr<StreamOut> o, std::uint64_t after, std::size_t b, Metrics& m)
        : out(std::move(o)), budget(b), metrics(m), last(after) {
        metrics.stream_opened();
    }
    ~Reader() override { metrics.stream_closed(); }

    const std::shared_ptr<StreamOut> out;
    std::shared_ptr<LiveRun> live;  // set before it is subscribed, never changed
    const std::size_t budget;       // live events it may have waiting for the socket
    Metrics& metrics;
    std::mutex mu;  // guards what follows
    std::uint64_t last;  // the last seq handed to `out`
    enum class Mode { catch_up, live, done } mode = Mode::catch_up;
    std::size_t waiting = 0;  // events handed to `out` since its socket last took everything
    bool pull_scheduled = false;

    // Under the run's lock (a publisher).
    void on_events(const StoredEventPtr* evs, std::size_t n) override {
        std::lock_guard lock(mu);
        if (mode != Mode::live) return;  // a catch-up reads them from the log
        std::string buf;
        bool gap = false;
        bool completed = false;
        std::size_t taken = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const StoredEvent& e = *evs[i];
            if (e.seq <= last) continue;
            if (e.seq != last + 1) {  // never expected; the log has the missing ones
                gap = true;
                break;
            }
            if (buf.empty() && i + 1 == n) {  // the common case: one event, sent without a copy
                last = e.seq;
                deliver(e.frame, 1, e.type == "completed");
                return;
            }
            buf += e.frame;
            last = e.seq;
            ++taken;
            if (e.type == "completed") {
                completed = true;
                break;
            }
        }
        if (!buf.empty()) {
            deliver(buf, taken, completed);
            if (mode != Mode::live) return;
        }
        if (gap) fall_behind();
    }

    // Under the run's lock: a final read of the log settles any doubt, then the stream ends.
    void on_closed() override {
        std::lock_guard lock(mu);
        if (mode == Mode::live) {
            mode = Mode::catch_up;
            schedule_pull();
        }
    }

    // Under mu: hands `bytes` (`n` events) to the stream.
    void deliver(std::string_view bytes, std::size_t n, bool completed) {
        StreamOut::Sent sent = out->send(bytes);
        // Events handed over since the socket last took everything it was given.
        waiting = sent == StreamOut::Sent::ok ? 0 : waiting + n;
        if (sent == StreamOut::Sent::closed) {
            mode = Mode::done;  // on_gone unsubscribes it
        } else if (completed) {
            mode = Mode::done;
            out->finish();
        } else if (sent == StreamOut::Sent::backlogged || waiting > budget) {
            fall_behind();
        }
    }

    void fall_behind() {
        mode = Mode::catch_up;
        metrics.stream_caught_up();
        schedule_pull();
    }

    void schedule_pull() {
        if (pull_scheduled) return;
        pull_scheduled = true;
        out->when_drained([self = shared_from_this()] { self->pull(); });
    }

    // On the stream's executor once its socket took everything: the next page of the log.
    void pull() {
        if (out->closed()) return;
        std::lock_guard run_lock(live->mu);
        std::lock_guard lock(mu);
        pull_scheduled = false;
        if (mode != Mode::catch_up) return;
        std::string buf;
        bool completed = false;
        std::size_t n = replay_live(*live, last, kReplayPage, buf, completed);
        StreamOut::Sent sent = buf.empty() ? StreamOut::Sent::ok : out->send(buf);
        if (sent == StreamOut::Sent::closed) {
            mode = Mode::done;
        } else if (completed) {
            mode = Mode::done;
            out->finish();
        } else if (n == kReplayPage || sent == StreamOut::Sent::backlogged) {
            schedule_pull();
        } else if (live->finished) {
            // Ended without a "completed" event this process could send (its final state is
            // not stored): the stream ends; a resume reads what storage has.
            mode = Mode::done;
            out->finish();
        } else {
            waiting = 0;
            mode = Mode::live;  // caught up, under the run's lock: the next event is pushed
        }
    }
};

bool ExecutionHub::attach(const std::shared_ptr<LiveRun>& live, const std::string& id, std::uint64_t after_seq,
                          const std::shared_ptr<StreamOut>& out) {
    const bool remote = live == nullptr;
    auto reader = std::make_shared<Reader>(out, after_seq, options_.stream_queue, metrics_);
    reader->live = live;
    bool subscribed = false;
    if (remote) {
        // A remote run is subscribed to under mu_, so the follower cannot drop it meanwhile.
        std::lock_guard lock(mu_);
        reader->live = follow_locked(id, nullptr);
        std::lock_guard run_lock(reader->live->mu);
        reader->live->subs.push_back(reader);
        subscribed = true;
    } else {
        std::lock_guard lock(live->mu);
        if (!live->finished) {
            live->subs.push_back(reader);
            subscribed = true;
        }
    }
    if (!subscribed) return false;
    // Subscribed before anything is read: each event is either in the log when the first
    // pull reads it (under the run's lock) or pushed after it turned the reader live.
    std::weak_ptr<Reader> weak = reader;
    out->on_gone([weak] {
        if (auto r = weak.lock()) unsubscribe(r->live, r);
    });
    reader->pull();
    return true;
}

void ExecutionHub::stream(const std::string& id, std::uint64_t after_seq, std::shared_ptr<StreamOut> out) {
    std::shared_ptr<LiveRun> live;
    {
        std::lock_guard lock(mu_);
        auto it = runs_.find(id);
        if (it != runs_.end()) live = it->second;
    }
    // If it finished meanwhile, everything it will ever store is stored.
    if (live && attach(live, id, after_seq, out)) return;
    auto ex = out->executor();  // before `out` is moved into the coroutine
    if (db_.shared()) {
        asio::co_spawn(ex, stream_shared(id, after_seq, std::move(out)), asio::detached);
        return;
    }
    asio::co_spawn(ex, replay_stored(id, after_seq, std::move(out)), asio::detached);
}

// Shared store, a run not live here: if the store says it has not ended, another instance runs
// it (or ran it and died: the take-over ends it), and the reader follows it as a remote run.
asio::awaitable<void> ExecutionHub::stream_shared(std::string id, std::uint64_t after_seq,
                                                  std::shared_ptr<StreamOut> out) {
    std::optional<ExecutionRecord> rec;
    try {
        rec = co_await db_.run([&id](Store& s) { return s.get_execution_by_id(id); });
    } catch (const std::exception&) {
        // the executor stopped: the replay below ends the stream
    }
    if (rec && !protocol::is_terminal(rec->status)) {
        std::shared_ptr<LiveRun> live;
        {
            std::lock_guard lock(mu_);
            if (auto it = runs_.find(id); it != runs_.end()) live = it->second;
        }
        if (live && attach(live, id, after_seq, out)) co_return;
        if (!live && attach(nullptr, id, after_seq, out)) co_return;
    }
    co_await replay_stored(std::move(id), after_seq, std::move(out));
}

// A run not live here: its events from storage, a page at a time, each once the client took
// the last one. Lives only as long as the replay.
asio::awaitable<void> ExecutionHub::replay_stored(std::string id, std::uint64_t last, std::shared_ptr<StreamOut> out) {
    metrics_.stream_opened();
    try {
        for (;;) {
            // A client that left stops the replay before the next read: a replay that writes
            // nothing would otherwise never notice (issue 12, defect 1).
            if (out->closed()) break;
            auto evs = co_await db_.read([&id, last](Store& s) { return s.events_after(id, last, kReplayPage); });
            std::string buf;
            bool done = false;
            const std::uint64_t page_start = last;
            for (const auto& e : evs) {
                if (e.seq <= last) continue;
                encode_event(buf, e.seq, e.type, e.data);
                last = e.seq;
                if (e.type == "completed") {
                    done = true;
                    break;
                }
            }
            if (!evs.empty() && last == page_start) {
                // A page that brought nothing new would be fetched again forever: end the replay
                // (storage answered something other than "after `last`").
                log_line(R"({"level":"error","msg":"replay made no progress","execution":")" + id +
                         R"(","after":)" + std::to_string(last) + "}");
                done = true;
            }
            const StreamOut::Sent sent = buf.empty() ? StreamOut::Sent::ok : out->send(buf);
            if (sent == StreamOut::Sent::closed) break;
            if (done || evs.size() < kReplayPage) {
                out->finish();
                break;
            }
            if (sent != StreamOut::Sent::ok) {
                auto wait = [out](auto handler) {
                    auto h = std::make_shared<decltype(handler)>(std::move(handler));
                    out->when_drained([h] { (*h)(); });
                };
                co_await asio::async_initiate<const asio::use_awaitable_t<>, void()>(std::move(wait), asio::use_awaitable);
            }
        }
    } catch (const std::exception& e) {
        log_line(std::string(R"({"level":"error","msg":"stream failed","execution":")") + id +
                 R"(","reason":)" + protocol::dump(protocol::Json(e.what())) + "}");
        out->finish();
    }
    metrics_.stream_closed();
}

asio::awaitable<void> ExecutionHub::cancel_and_settle(ExecutionRecord rec) {
    const std::string id = rec.id;
    if (cancel(id)) {
        co_await wait_finished(id, std::chrono::milliseconds(5000));
        co_return;
    }
    if (db_.shared()) {
        // Live on another instance whose lease is current: its owner stops it ("c id" to every
        // instance's listener), and this caller follows it until it has stored its end.
        auto owner = co_await db_.run([&id](Store& s) { return s.execution_owner(id); });
        if (owner && owner->alive) {
            // Asked again every second while it runs: a notification the owner missed (its LISTEN
            // connection was reconnecting) only delays the cancel. A second ask is a no-op there.
            for (int round = 0; round < 5; ++round) {
                Status asked = co_await db_.run([&id](Store& s) { return s.request_cancel(id); });
                if (!asked) {
                    log_line(R"({"level":"error","msg":"asking another instance to cancel a run failed","execution":")" + id +
                             R"(","reason":)" + protocol::dump(protocol::Json(asked.error().message)) + "}");
                    co_return;  // the caller reads the execution as it stands
                }
                if (co_await wait_finished(id, std::chrono::milliseconds(1000))) co_return;
            }
            co_return;
        }
        if (owner) {
            // Its owner's lease ran out: take it over first (fencing the owner, so that it cannot
            // write after the close below, and closing its runs as interrupted, this one included).
            auto taken = co_await db_.run([](Store& s) { return s.take_over_expired(now_ms()); });
            if (taken) {
                for (const auto& closed : *taken) on_done_notified(closed);
            }
            auto again = co_await db_.run([&id](Store& s) { return s.get_execution_by_id(id); });
            if (!again || protocol::is_terminal(again->status)) co_return;
            rec = std::move(*again);
        }
    }
    // Not running in any process and not terminal: close it out here so it cannot stay open.
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
    if (!live && db_.shared()) {
        // Not live here: on a shared store, not ended in the store means live elsewhere.
        std::optional<ExecutionRecord> rec;
        try {
            rec = co_await db_.run([&id](Store& s) { return s.get_execution_by_id(id); });
        } catch (const std::exception&) {
            co_return true;  // shutting down
        }
        if (!rec || protocol::is_terminal(rec->status)) co_return true;
        live = subscribe(id, sub);  // it may have started here meanwhile
        if (!live) {
            std::lock_guard lock(mu_);
            live = follow_locked(id, sub);
        }
    }
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
    {
        std::lock_guard lock(follow_mu_);
        following_ = false;
    }
    wake_follower();
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

// ---------------------------------------------------------------- remote runs (shared store)

namespace {
constexpr std::size_t kFollowPage = 1024;  // events read per remote run per db job
bool has_completed(const std::vector<EventRecord>& evs) {
    return std::any_of(evs.begin(), evs.end(), [](const EventRecord& e) { return e.type == "completed"; });
}
}  // namespace

std::shared_ptr<ExecutionHub::LiveRun> ExecutionHub::follow_locked(const std::string& id,
                                                                   const std::shared_ptr<RunListener>& sub) {
    auto& slot = remotes_[id];
    if (!slot) {
        slot = std::make_shared<LiveRun>(id, asio::make_strand(ioc_));
        slot->remote = true;
        {
            std::lock_guard lock(follow_mu_);
            pending_catch_up_.insert(id);
        }
        wake_follower();
    }
    if (sub) {
        std::lock_guard lock(slot->mu);
        slot->subs.push_back(sub);
    }
    return slot;
}

void ExecutionHub::wake_follower() {
    asio::post(follow_strand_, [this] { follow_timer_.cancel(); });
}

void ExecutionHub::start_following() {
    {
        std::lock_guard lock(follow_mu_);
        if (following_) return;
        following_ = true;
    }
    asio::co_spawn(follow_strand_, follow_loop(), asio::detached);
}

void ExecutionHub::on_journal_notified(std::int64_t first, std::int64_t last) {
    {
        std::lock_guard lock(mu_);
        if (remotes_.empty()) return;  // a run followed later catches up from storage first
    }
    {
        std::lock_guard lock(follow_mu_);
        if (pending_range_) {
            // Merged: one fetch for all of them; rows in between are only more to dedupe.
            pending_range_->first = std::min(pending_range_->first, first);
            pending_range_->second = std::max(pending_range_->second, last);
        } else {
            pending_range_.emplace(first, last);
        }
    }
    wake_follower();
}

void ExecutionHub::on_done_notified(const std::string& id) {
    {
        std::lock_guard lock(mu_);
        if (remotes_.count(id) == 0) return;
    }
    {
        std::lock_guard lock(follow_mu_);
        pending_catch_up_.insert(id);
    }
    wake_follower();
}

void ExecutionHub::on_cancel_notified(const std::string& id) { (void)cancel(id); }

void ExecutionHub::resync_followed() {
    {
        std::lock_guard lock(follow_mu_);
        pending_resync_ = true;
    }
    wake_follower();
}

std::size_t ExecutionHub::followed_runs() const {
    std::lock_guard lock(mu_);
    return remotes_.size();
}

std::vector<std::shared_ptr<ExecutionHub::LiveRun>> ExecutionHub::followed(const std::set<std::string>* only) {
    std::vector<std::shared_ptr<LiveRun>> out;
    std::lock_guard lock(mu_);
    if (only) {
        for (const auto& id : *only) {
            if (auto it = remotes_.find(id); it != remotes_.end()) out.push_back(it->second);
        }
    } else {
        for (const auto& [id, run] : remotes_) out.push_back(run);
    }
    return out;
}

// One coroutine on follow_strand_ does all the reading for remote runs, so each run's log has one
// writer and every db job serves all the runs at once: the journal rows a "j" names, catch-ups
// (new runs, "d", gaps, after a resync), and a safety poll every 1-2 s so that a notification
// that never came only delays events, never loses them.
asio::awaitable<void> ExecutionHub::follow_loop() {
    std::minstd_rand jitter(static_cast<unsigned>(std::random_device{}()));
    auto poll_interval = [&] { return std::chrono::milliseconds(1000 + jitter() % 1000); };
    auto next_poll = std::chrono::steady_clock::now() + poll_interval();
    for (;;) {
        std::optional<std::pair<std::int64_t, std::int64_t>> range;
        std::set<std::string> catch_ids;
        bool resync = false;
        {
            std::lock_guard lock(follow_mu_);
            if (!following_) break;
            range = std::exchange(pending_range_, std::nullopt);
            catch_ids.swap(pending_catch_up_);
            resync = std::exchange(pending_resync_, false);
        }
        {
            // A remote run nobody reads any more is dropped (a new reader starts a new one).
            std::lock_guard lock(mu_);
            for (auto it = remotes_.begin(); it != remotes_.end();) {
                std::lock_guard run_lock(it->second->mu);
                if (it->second->subs.empty()) {
                    it->second->dropped = true;
                    it = remotes_.erase(it);
                } else {
                    ++it;
                }
            }
        }
        const auto now = std::chrono::steady_clock::now();
        try {
            if (resync || now >= next_poll) {
                co_await catch_up(followed(nullptr));
                next_poll = now + poll_interval();
            } else {
                if (range) co_await fetch_journal(range->first, range->second, followed(nullptr));
                if (!catch_ids.empty()) co_await catch_up(followed(&catch_ids));
            }
        } catch (const std::exception& e) {
            // The db executor stopped (shutting down), or a read failed: the next round retries.
            log_line(R"({"level":"warn","msg":"following remote runs failed","reason":)" +
                     protocol::dump(protocol::Json(e.what())) + "}");
        }
        bool more = false;
        {
            std::lock_guard lock(follow_mu_);
            if (!following_) break;
            more = pending_range_ || !pending_catch_up_.empty() || pending_resync_;
        }
        if (more) continue;
        // Woken early by wake_follower (posted to this strand: it either finds this wait armed or
        // runs before the next round, which sees what it was woken for).
        follow_timer_.expires_at(next_poll);
        co_await follow_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Shutting down: nobody feeds the remote runs any more; their readers end with the server.
}

asio::awaitable<void> ExecutionHub::catch_up(std::vector<std::shared_ptr<LiveRun>> runs) {
    if (runs.empty()) co_return;
    struct Ask {
        std::string id;
        std::uint64_t after = 0;
    };
    struct Got {
        std::vector<EventRecord> events;
        bool more = false;   // a full page: there may be more
        bool ended = false;  // the store says it ended, and `events` holds all it stored
    };
    std::vector<Ask> asks;
    asks.reserve(runs.size());
    for (const auto& r : runs) asks.push_back(Ask{r->id, r->seq});
    auto got = co_await db_.read([&asks](Store& s) {
        std::vector<Got> out(asks.size());
        for (std::size_t i = 0; i < asks.size(); ++i) {
            Got& g = out[i];
            g.events = s.events_after(asks[i].id, asks[i].after, kFollowPage);
            g.more = g.events.size() == kFollowPage;
            if (g.more || has_completed(g.events)) continue;
            // Nothing says it ended: ask its status, then (it ended) read what its end stored,
            // which committed before the status was read.
            auto rec = s.get_execution_by_id(asks[i].id);
            if (rec && !protocol::is_terminal(rec->status)) continue;
            const std::uint64_t after = g.events.empty() ? asks[i].after : g.events.back().seq;
            auto rest = s.events_after(asks[i].id, after, kFollowPage);
            g.more = rest.size() == kFollowPage;
            g.events.insert(g.events.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
            g.ended = !g.more;
        }
        return out;
    });
    std::set<std::string> again;
    for (std::size_t i = 0; i < runs.size(); ++i) {
        const bool gap = append_remote(runs[i], got[i].events);
        if (gap || got[i].more) {
            again.insert(runs[i]->id);
        } else if (got[i].ended) {
            // Ended without a "completed" this process could read (never expected): its readers
            // end, and a resume reads what the store has.
            close_remote(runs[i]);
        }
    }
    if (!again.empty()) {
        std::lock_guard lock(follow_mu_);
        pending_catch_up_.insert(again.begin(), again.end());
    }
}

asio::awaitable<void> ExecutionHub::fetch_journal(std::int64_t first, std::int64_t last,
                                                  std::vector<std::shared_ptr<LiveRun>> runs) {
    if (runs.empty()) co_return;
    std::vector<std::string> ids;
    ids.reserve(runs.size());
    for (const auto& r : runs) ids.push_back(r->id);
    auto rows = co_await db_.read([&](Store& s) { return s.journal_range(first, last, ids); });
    std::unordered_map<std::string, std::vector<EventRecord>> by_run;
    for (auto& row : rows) by_run[row.execution_id].push_back(std::move(row.event));
    std::set<std::string> again;
    for (const auto& r : runs) {
        auto it = by_run.find(r->id);
        if (it == by_run.end()) continue;
        auto& evs = it->second;
        std::sort(evs.begin(), evs.end(), [](const EventRecord& a, const EventRecord& b) { return a.seq < b.seq; });
        if (append_remote(r, evs)) again.insert(r->id);  // rows it missed: read them from storage
    }
    if (!again.empty()) {
        std::lock_guard lock(follow_mu_);
        pending_catch_up_.insert(again.begin(), again.end());
    }
}

bool ExecutionHub::append_remote(const std::shared_ptr<LiveRun>& run, const std::vector<EventRecord>& events) {
    if (events.empty()) return false;
    bool gap = false, completed = false;
    {
        std::lock_guard lock(run->mu);
        if (run->finished) return false;
        std::vector<StoredEventPtr> frames;
        for (const EventRecord& e : events) {
            if (e.seq <= run->seq) continue;  // had it
            if (e.seq != run->seq + 1) {
                gap = true;
                break;
            }
            run->log.append(e.type, e.data, nullptr, false, e.created_at);
            run->seq = e.seq;
            std::string frame;
            encode_event(frame, e.seq, e.type, e.data);
            frames.push_back(std::make_shared<const StoredEvent>(StoredEvent{e.seq, e.type, std::move(frame)}));
            if (e.type == "completed") {
                completed = true;
                break;
            }
        }
        if (!frames.empty()) {
            for (auto& sub : run->subs) sub->on_events(frames.data(), frames.size());
        }
    }
    if (completed) close_remote(run);
    return gap && !completed;
}

void ExecutionHub::close_remote(const std::shared_ptr<LiveRun>& run) {
    {
        std::lock_guard lock(mu_);
        if (auto it = remotes_.find(run->id); it != remotes_.end() && it->second == run) remotes_.erase(it);
    }
    std::lock_guard lock(run->mu);
    if (run->finished) return;
    run->finished = true;
    auto subs = std::move(run->subs);
    run->subs.clear();
    for (auto& sub : subs) sub->on_closed();
}

}  // namespace confab::server
