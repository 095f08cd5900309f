// The execution manager: starts runs, stores their events, fans them out to live SSE streams,
// replays stored events on resume, cancels runs and ends them all on shutdown.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "config.hpp"
#include "confab/protocol.hpp"
#include "confab/result.hpp"
#include "db_executor.hpp"
#include "http_types.hpp"
#include "metrics.hpp"
#include "run_log.hpp"
#include "store.hpp"

namespace confab::server {

struct StoredEvent {
    std::uint64_t seq = 0;
    std::string type;
    std::string frame;  // the event as SSE bytes, encoded once for every subscriber
};
using StoredEventPtr = std::shared_ptr<const StoredEvent>;

// What a live run tells those who follow it. Both calls come under the run's lock, in seq order,
// so a listener that reads the run's log under the same lock misses nothing and sees nothing twice
// (it drops seqs it has).
class RunListener {
public:
    virtual ~RunListener() = default;
    virtual void on_events(const StoredEventPtr* events, std::size_t n) = 0;  // just committed (or terminal)
    virtual void on_closed() = 0;  // the run has ended: its log holds all it will ever hold
};

// One live reader of a run that waits in a coroutine (cancel_and_settle's wait). Publishers (any thread) push into a bounded queue; the reader sleeps
// on a timer that a publisher cancels to wake it. Both touch the timer only under the mutex, so no
// wake-up is lost whatever executor the reader runs on (a plain multi-threaded io_context too). A reader that falls `capacity` events behind is marked `lagged`: its queue is dropped
// and it catches up from storage, so a slow reader costs bounded memory and loses nothing.
class Subscriber final : public RunListener {
public:
    Subscriber(boost::asio::any_io_executor ex, std::size_t capacity)
        : timer_(std::move(ex)), capacity_(capacity) {}

    void on_events(const StoredEventPtr* events, std::size_t n) override {
        for (std::size_t i = 0; i < n; ++i) push(events[i]);
    }
    void on_closed() override { close(); }

    void push(const StoredEventPtr& ev);  // any thread
    void close();                         // any thread: the run has ended
    void abort();                         // the reader's client is gone: stop reading
    bool aborted();                       // any thread: abort() was called

    struct Batch {
        std::vector<StoredEventPtr> events;
        bool lagged = false;
        bool closed = false;
        bool aborted = false;
    };
    Batch take();  // the reader
    // Sleeps until woken by push/close/abort or until `max` passes; returns at once when one of
    // them came since the last take(). Wake-ups may be spurious: callers take() and loop. One
    // reader at a time.
    boost::asio::awaitable<void> wait(std::chrono::milliseconds max);

private:
    void notify_locked();

    std::mutex mu_;
    std::deque<StoredEventPtr> queue_;
    bool lagged_ = false;
    bool closed_ = false;
    bool aborted_ = false;
    bool notified_ = false;
    boost::asio::steady_timer timer_;  // guarded by mu_ too
    std::size_t capacity_;
};

struct StartSpec {
    std::string id;  // empty: generated
    const WorkspaceConfig* workspace = nullptr;
    const AppConfig* app = nullptr;
    const AppVersion* version = nullptr;
    std::string user_id;
    bool chat = false;
    std::optional<std::string> session_id;
    protocol::Json inputs = protocol::Json::object();
    std::string message;                     // chat
    std::vector<protocol::Message> history;  // chat
    std::optional<std::string> turn_id;      // chat: stored on the reply
};

// The seq at which a run first moves its journalled events into its events rows; then every
// `every` events. Spread over [every/2, every*3/2) by the run's id (at least 1), so runs started
// together (a burst of chats) do not all compact in the same commits: each compaction writes
// `every` rows, and a thousand at once held the db thread for hundreds of milliseconds.
std::uint64_t first_compaction(std::uint64_t every, std::string_view run_id);

struct HubOptions {
    std::size_t stream_queue = 256;  // live events a reader may have waiting for its socket before it catches up from the log
    std::uint64_t compact_every = 256;  // a live run moves its journalled events into events rows every N
};

class ExecutionHub {
public:
    ExecutionHub(boost::asio::io_context& ioc, DbExecutor& db, const ServerConfig& config,
                 Metrics& metrics, HubOptions options);

    // Stores the execution (queued) and starts it; the run goes on independently of the caller.
    // Error "shutting_down" after shutdown().
    boost::asio::awaitable<Result<ExecutionRecord>> start(StartSpec spec);

    // Feeds `out` the events of `id` with seq > after_seq as SSE, stored ones first, then live
    // ones, until the terminal "completed" event, the run's end or the client is gone; then
    // finishes it. Returns at once: a live run's reader is a small object its publishers feed (no
    // coroutine, no timer; heartbeats are the HTTP layer's); a run not live here is replayed from
    // storage page by page as fast as the client reads. The caller has checked that `id` is visible.
    void stream(const std::string& id, std::uint64_t after_seq, std::shared_ptr<StreamOut> out);

    // Asks a live run to stop (it ends "cancelled"). False when `id` is not running here.
    bool cancel(const std::string& id);
    // Cancels the execution `rec` (not terminal; the caller checked it is visible): a run live here
    // is stopped and awaited (up to 5 s) for its terminal events; on a shared store, one live on
    // another instance whose lease is current is asked to stop ("c id") and followed until it ends
    // (up to 5 s); one no process runs (its server died) is closed out in the store as cancelled,
    // with its "completed" event (on a shared store after taking over the instances whose leases
    // ran out, which closes a dead owner's runs as interrupted first). The caller reads the stored
    // execution afterwards (it may have finished first).
    boost::asio::awaitable<void> cancel_and_settle(ExecutionRecord rec);
    // Until the run `id` has ended (true) or `timeout` passed (false). True if it is not live
    // anywhere: on a shared store a run live on another instance is followed until it ends.
    boost::asio::awaitable<bool> wait_finished(std::string id, std::chrono::milliseconds timeout);
    // Live in THIS process (on a shared store a run may be live on another instance).
    bool is_live(const std::string& id) const;

    // ---- Several instances on one database (Store::shared()) ----
    // A run not live here and not terminal in the store is live on another instance: its readers
    // here share one "remote run", a log filled from the store (events_after, then the journal
    // rows that "j" notifications name), fed to them exactly as a local run's log is. These come
    // from the PgListener (any thread) and only queue work for the follower (one coroutine).
    void start_following();                                 // call once, on a shared store
    void on_journal_notified(std::int64_t first, std::int64_t last);  // "j first last"
    void on_done_notified(const std::string& id);            // "d id" (or a take-over here)
    void on_cancel_notified(const std::string& id);          // "c id": cancels it if it is live here
    void resync_followed();                                  // notifications may have been missed
    std::size_t followed_runs() const;

    // Refuses new runs and stops the running ones: they end as error "server shutting down".
    void shutdown();
    std::size_t active_runs() const;
    bool shutting_down() const;

private:
    struct LiveRun;
    struct Reader;
    // Attaches `out` to the local run `live` (false when it has ended meanwhile), or with nullptr to
    // the remote run of `id` (created if nobody here follows it yet).
    bool attach(const std::shared_ptr<LiveRun>& live, const std::string& id, std::uint64_t after_seq,
                const std::shared_ptr<StreamOut>& out);
    boost::asio::awaitable<void> stream_shared(std::string id, std::uint64_t after_seq, std::shared_ptr<StreamOut> out);
    // The remote run of `id`, created (and queued for its first catch-up) if nobody follows it yet,
    // with `sub` subscribed to it; called under mu_.
    std::shared_ptr<LiveRun> follow_locked(const std::string& id, const std::shared_ptr<RunListener>& sub);
    void wake_follower();
    boost::asio::awaitable<void> follow_loop();
    // On the follower: reads the runs' events after what their logs hold (a page budget each).
    boost::asio::awaitable<void> catch_up(std::vector<std::shared_ptr<LiveRun>> runs);
    boost::asio::awaitable<void> fetch_journal(std::int64_t first, std::int64_t last,
                                               std::vector<std::shared_ptr<LiveRun>> runs);
    // On the follower: appends the events that continue the run's log (dense, once each) and
    // publishes them; true when one after a gap came (the caller catches up from storage).
    bool append_remote(const std::shared_ptr<LiveRun>& run, const std::vector<EventRecord>& events);
    void close_remote(const std::shared_ptr<LiveRun>& run);
    std::vector<std::shared_ptr<LiveRun>> followed(const std::set<std::string>* only);
    boost::asio::awaitable<void> replay_stored(std::string id, std::uint64_t after_seq,
                                               std::shared_ptr<StreamOut> out);
    // Commits a run's completion in one db job; false when storage refused it (logged).
    boost::asio::awaitable<bool> store_completion(const RunCompletion& done);
    boost::asio::awaitable<void> run(std::shared_ptr<LiveRun> live, StartSpec spec);
    struct RunnerOutcome {
        Result<protocol::Json> result = make_error("internal", "the run did not start");
        bool storage_failed = false;   // storage failed mid-run
        bool output_streamed = false;  // the output is the text the run streamed (RunContext)
    };
    boost::asio::awaitable<void> finish_run(std::shared_ptr<LiveRun> live, const StartSpec& spec, RunnerOutcome out);
    boost::asio::awaitable<void> emit(std::shared_ptr<LiveRun> live, std::string type,
                                      protocol::Json data);
    static void check_emit(const LiveRun& live);
    bool queue_event(const std::shared_ptr<LiveRun>& live, std::string type, std::string data,
                     const std::string* text, bool text_only);
    boost::asio::awaitable<void> wait_room(std::shared_ptr<LiveRun> live);
    bool emit_text(const std::shared_ptr<LiveRun>& live, bool chat, std::string_view text);  // true: full
    // On the run's strand: stores the run's queued events in a chain of db jobs (no coroutine).
    void flush(std::shared_ptr<LiveRun> live);
    boost::asio::awaitable<void> wait_flushed(std::shared_ptr<LiveRun> live);
    boost::asio::awaitable<void> drain(std::shared_ptr<LiveRun> live);
    std::shared_ptr<LiveRun> subscribe(const std::string& id, const std::shared_ptr<RunListener>& sub);
    // The frames of a live run's events after `last`, up to `limit` of them, from its log (then
    // its unstored terminal events); advances `last`, sets `done` at "completed". The caller holds
    // the run's lock.
    static std::size_t replay_live(LiveRun& live, std::uint64_t& last, std::size_t limit, std::string& out,
                                   bool& done);
    static void unsubscribe(const std::shared_ptr<LiveRun>& live, const std::shared_ptr<RunListener>& sub);
    void finalize(const std::shared_ptr<LiveRun>& live);

    boost::asio::io_context& ioc_;
    DbExecutor& db_;
    const ServerConfig& config_;
    Metrics& metrics_;
    HubOptions options_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<LiveRun>> runs_;
    bool shutting_down_ = false;
    // Shared store: the remote runs followed here (guarded by mu_; lock order mu_, then a run's).
    std::unordered_map<std::string, std::shared_ptr<LiveRun>> remotes_;
    // What the follower has to do (guarded by follow_mu_).
    std::mutex follow_mu_;
    std::optional<std::pair<std::int64_t, std::int64_t>> pending_range_;  // "j" ranges, merged
    std::set<std::string> pending_catch_up_;  // new remote runs, "d", gaps
    bool pending_resync_ = false;
    bool following_ = false;
    boost::asio::strand<boost::asio::io_context::executor_type> follow_strand_;
    boost::asio::steady_timer follow_timer_;  // on follow_strand_: the follower's sleep
};

}  // namespace confab::server
