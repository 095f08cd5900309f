// Runs blocking Store work on one dedicated thread and hands results back to the awaiting coroutine.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "store.hpp"

namespace confab::server {

// Store calls block (SQLite: fsync at checkpoints, busy waits; PostgreSQL: a round trip to the
// server), so they never run on the I/O threads. One thread owns the Store; work is queued FIFO, so writes of one execution are applied in the
// order they were issued.
//
//   auto rec = co_await db.run([&](Store& s) { return s.get_execution(ws, user, id); });
//
// The lambda runs on the db thread; the coroutine resumes on ITS OWN executor (the handler's
// associated executor) with the result. The lambda may capture by reference: the awaiting
// coroutine is suspended until it has run. An exception thrown by the lambda is rethrown in the
// coroutine. After stop(), run() throws std::runtime_error("database executor stopped").
// Not cancellable: queued work always runs (it is short), a cancelled caller just gets it later.
//
// g++ 12 (Debian 12.2) destroys some temporaries in a co_await operand twice: a lambda that
// captures a std::string (or any non-trivial type) BY VALUE, or an aggregate built with braces,
// double-frees (seen with ASan). Capture by reference ([&], [&x]) in `co_await db.run(...)`, or
// name the lambda first: `auto f = [id](Store& s) {...}; co_await db.run(std::move(f));`.
// The pauses between attempts to write what storage refused (a run's final state): 100 ms,
// doubling up to 5 s. One per retried write; used by the hub and the workflow runs alike.
class StorageBackoff {
public:
    // Sleeps the next pause and says true; says false at once when `give_up` (shutdown: the
    // restart closes the run from what is stored).
    boost::asio::awaitable<bool> wait(bool give_up);

private:
    std::chrono::milliseconds next_{100};
};

class DbExecutor {
public:
    // `commit_delay` > 0 holds every transaction of the db thread that long before it runs
    // (`--commit-delay-ms`: slow storage, for tests and drills).
    explicit DbExecutor(std::unique_ptr<Store> store, std::chrono::milliseconds commit_delay = {});
    ~DbExecutor();  // calls stop()
    DbExecutor(const DbExecutor&) = delete;
    DbExecutor& operator=(const DbExecutor&) = delete;

    template <class F>
    boost::asio::awaitable<std::invoke_result_t<F, Store&>> run(F f);

    // Read-only work (no write, no transaction of its own) on one of the reader connections when
    // there are some (PostgreSQL: --database-read-connections), else as run(). A reader sees what
    // is committed, which is everything any caller was told is stored, and never waits behind the
    // write path's group commits; a follower's catch-ups and replays of stored runs use it.
    template <class F>
    boost::asio::awaitable<std::invoke_result_t<F, Store&>> read(F f) {
        return aside(std::move(f));
    }
    // The same connections serve work that needs no transaction of the writer: a statement that
    // commits on its own and is outside the durability contract (the UNLOGGED rate buckets'
    // atomic upsert), which then never waits for the write path's WAL flush.
    template <class F>
    boost::asio::awaitable<std::invoke_result_t<F, Store&>> aside(F f);
    // Before the first read(): stores (connections of their own, not registered as an instance)
    // that serve read(), one thread each.
    void add_readers(std::vector<std::unique_ptr<Store>> readers);
    std::size_t readers() const noexcept { return readers_.size(); }

    // As run(), for a caller that is not a coroutine: `handler(std::exception_ptr, std::optional<R>)`
    // is posted to the handler's associated executor once `f` has run and its transaction has
    // committed (the exception_ptr set, and no result, when `f` threw, the commit failed or the
    // executor had stopped). A job and a post: no coroutine frames for a hot caller.
    template <class F, class Handler>
    void submit(F f, Handler handler) {
        using R = std::invoke_result_t<F, Store&>;
        enqueue(std::make_unique<AsyncJob<R, F, Handler>>(std::move(f), std::move(handler)));
    }
    // For threads that are not running an io_context (startup, shutdown, tests): queues `f` and
    // blocks until it has run. Never call it from the db thread itself (deadlock).
    template <class F>
    std::invoke_result_t<F, Store&> run_blocking(F f);

    // Before the first job: the answers to callers that run on `ioc` go into one queue that one
    // handler at a time drains there, dispatching each to its caller's executor (inline when that
    // is free) in job order, instead of one post per job. A commit of N streams' events then wakes
    // an I/O thread and takes the scheduler's lock a few times, not N times. The order of the
    // answers to one executor (a run's strand) is the order of their jobs, as with one post each,
    // across commits too: one drainer, so a commit's answers never overtake the last commit's on
    // another I/O thread.
    void complete_on(boost::asio::io_context& ioc) { complete_ioc_ = &ioc; }

    // Drains queued work, checkpoints the WAL, joins the thread. Idempotent.
    void stop();

    // Any thread: the store's last write failed for a reason of the storage (see Store).
    bool writes_failing() const noexcept { return store_ && store_->writes_failing(); }
    // Any thread: several instances share the store (PostgreSQL), fixed when it opened; state
    // that must hold across them (rate limits, MCP sessions) lives in it rather than in this process.
    bool shared() const noexcept { return shared_; }
    bool fenced() const noexcept { return store_ && store_->fenced(); }
    // Called once, on the db thread, as soon as a job leaves the store fenced (another instance
    // took this one's lease): BEFORE the jobs of that transaction are answered, so no caller can
    // act on a write that failed for that reason (e.g. send readers events nobody stored). Set
    // it before the first job; it is expected not to return (the process exits).
    void set_fenced_handler(std::function<void()> handler) { fenced_handler_ = std::move(handler); }

private:
    struct Job {
        virtual ~Job() = default;
        virtual void run(Store* store) = 0;  // nullptr: the executor has stopped
        // Group commit: jobs queued together run in one transaction (execute), and are answered
        // only after it committed (complete; `failed` set when the commit failed).
        virtual bool batchable() const { return false; }
        virtual void execute(Store&) {}
        virtual void complete(std::exception_ptr /*failed*/) {}
        // The execution context of the caller's executor (nullptr: none that complete_on knows),
        // and the answer given on a thread of that context (dispatched, not posted).
        virtual const boost::asio::execution_context* context() const { return nullptr; }
        virtual void complete_here(std::exception_ptr failed) { complete(failed); }
        std::function<void()> before_complete;  // run() calls it between the work and the answer
    };
    static constexpr std::size_t kMaxBatch = 512;
    static constexpr std::chrono::milliseconds kCommitWindow{2};
    static constexpr std::chrono::milliseconds kIdleTick{1000};
    void run_batch(std::vector<std::unique_ptr<Job>>& batch);
    // The db thread, once `batch` ran (and committed, or `failed`): answers each job, those of
    // complete_ioc_'s callers through the drained queue.
    void answer(std::vector<std::unique_ptr<Job>>& batch, std::exception_ptr failed);
    // Shared with the posted drainer, which may run after the executor is gone.
    struct Answers {
        std::mutex mu;
        std::vector<std::pair<std::unique_ptr<Job>, std::exception_ptr>> queue;
        bool draining = false;  // a drainer is posted or running
    };
    static void drain(const std::shared_ptr<Answers>& answers);
    template <class R, class F, class Handler>
    struct AsyncJob;
    struct Unit {};

    void enqueue(std::unique_ptr<Job> job);  // runs job->run(nullptr) inline after stop()
    void enqueue_read(std::unique_ptr<Job> job);
    void reader_main(Store& store);
    void check_fenced();
    void thread_main();
    std::unique_ptr<Store> store_;
    boost::asio::io_context* complete_ioc_ = nullptr;
    std::shared_ptr<Answers> answers_ = std::make_shared<Answers>();
    bool shared_ = false;
    std::function<void()> fenced_handler_;
    bool fenced_reported_ = false;  // the db thread's
    std::chrono::milliseconds commit_delay_{};
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Job>> queue_;
    std::chrono::steady_clock::time_point front_since_;  // when the job at the front was queued (about)
    bool stopping_ = false;
    std::thread thread_;
    // The reader connections: one shared queue, a thread per connection.
    std::vector<std::unique_ptr<Store>> readers_;
    std::vector<std::thread> reader_threads_;
    std::mutex read_mu_;
    std::condition_variable read_cv_;
    std::deque<std::unique_ptr<Job>> read_queue_;
    bool read_stopping_ = false;
};

template <class R, class F, class Handler>
struct DbExecutor::AsyncJob final : DbExecutor::Job {
    using Executor = boost::asio::associated_executor_t<Handler>;
    AsyncJob(F fn, Handler h)
        : f(std::move(fn)), handler(std::move(h)),
          work(boost::asio::get_associated_executor(handler)) {}

    void run(Store* store) override {
        if (store == nullptr) {
            ep = std::make_exception_ptr(std::runtime_error("database executor stopped"));
        } else {
            execute(*store);
        }
        if (before_complete) before_complete();
        complete(nullptr);
    }
    bool batchable() const override { return true; }
    void execute(Store& store) override {
        try {
            result.emplace(f(store));
        } catch (...) {
            ep = std::current_exception();
        }
    }
    void complete(std::exception_ptr failed) override { answer(failed, false); }
    const boost::asio::execution_context* context() const override {
        return &boost::asio::query(work.get_executor(), boost::asio::execution::context);
    }
    void complete_here(std::exception_ptr failed) override { answer(failed, true); }
    // Hands the result (or the failure) to the caller's executor: posted, or dispatched when
    // called on a thread of its context (complete_here).
    void answer(std::exception_ptr failed, bool here) {
        if (failed) {
            ep = failed;
            result.reset();
        }
        auto ex = work.get_executor();
        auto fn = [h = std::move(handler), e = ep, r = std::move(result)]() mutable { std::move(h)(e, std::move(r)); };
        if (here) {
            boost::asio::dispatch(ex, std::move(fn));
        } else {
            boost::asio::post(ex, std::move(fn));
        }
        work.reset();
    }
    std::exception_ptr ep;
    std::optional<R> result;

    F f;
    Handler handler;
    boost::asio::executor_work_guard<Executor> work;  // keeps the caller's io_context running
};

template <class F>
boost::asio::awaitable<std::invoke_result_t<F, Store&>> DbExecutor::run(F f) {
    using R = std::invoke_result_t<F, Store&>;
    if constexpr (std::is_void_v<R>) {
        // Named, not a temporary in the co_await operand: see the g++ 12 note above the class.
        auto wrapped = [fn = std::move(f)](Store& s) mutable {
            fn(s);
            return Unit{};
        };
        co_await run(std::move(wrapped));
        co_return;
    } else {
        auto initiation = [this, fn = std::move(f)](auto handler) mutable {
            this->submit(std::move(fn), std::move(handler));
        };
        std::optional<R> r = co_await boost::asio::async_initiate<
            const boost::asio::use_awaitable_t<>, void(std::exception_ptr, std::optional<R>)>(
            std::move(initiation), boost::asio::use_awaitable);
        co_return std::move(*r);
    }
}

template <class F>
boost::asio::awaitable<std::invoke_result_t<F, Store&>> DbExecutor::aside(F f) {
    using R = std::invoke_result_t<F, Store&>;
    if (readers_.empty()) co_return co_await run(std::move(f));
    static_assert(!std::is_void_v<R>, "a read returns what it read");
    auto initiation = [this, fn = std::move(f)](auto handler) mutable {
        using H = decltype(handler);
        enqueue_read(std::make_unique<AsyncJob<R, F, H>>(std::move(fn), std::move(handler)));
    };
    std::optional<R> r = co_await boost::asio::async_initiate<
        const boost::asio::use_awaitable_t<>, void(std::exception_ptr, std::optional<R>)>(
        std::move(initiation), boost::asio::use_awaitable);
    co_return std::move(*r);
}

template <class F>
std::invoke_result_t<F, Store&> DbExecutor::run_blocking(F f) {
    using R = std::invoke_result_t<F, Store&>;
    struct BlockingJob final : Job {
        BlockingJob(F fn) : f(std::move(fn)) {}
        void run(Store* store) override {
            if (store == nullptr) {
                done.set_exception(
                    std::make_exception_ptr(std::runtime_error("database executor stopped")));
                return;
            }
            try {
                if constexpr (std::is_void_v<R>) {
                    f(*store);
                    if (before_complete) before_complete();
                    done.set_value();
                } else {
                    R r = f(*store);
                    if (before_complete) before_complete();
                    done.set_value(std::move(r));
                }
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        }
        F f;
        std::promise<R> done;
    };
    auto job = std::make_unique<BlockingJob>(std::move(f));
    auto fut = job->done.get_future();
    enqueue(std::move(job));
    return fut.get();
}

}  // namespace confab::server
