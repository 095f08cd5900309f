// The DbExecutor's thread: runs queued Store work in order, drains on stop(), checkpoints the WAL,
// gives the store its idle moments.
#include "db_executor.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

namespace confab::server {

DbExecutor::DbExecutor(std::unique_ptr<Store> store, std::chrono::milliseconds commit_delay)
    : store_(std::move(store)), shared_(store_ && store_->shared()), commit_delay_(commit_delay),
      thread_([this] { thread_main(); }) {}

void DbExecutor::check_fenced() {
    if (fenced_reported_ || !store_ || !store_->fenced()) return;
    fenced_reported_ = true;
    if (fenced_handler_) fenced_handler_();
}

DbExecutor::~DbExecutor() { stop(); }

void DbExecutor::enqueue(std::unique_ptr<Job> job) {
    {
        std::lock_guard lock(mu_);
        if (!stopping_) {
            if (queue_.empty()) front_since_ = std::chrono::steady_clock::now();
            queue_.push_back(std::move(job));
            // The thread waits for the first job, or for a full batch.
            if (queue_.size() == 1 || queue_.size() >= kMaxBatch) cv_.notify_one();
            return;
        }
    }
    job->run(nullptr);  // stopped: the job completes at once with "database executor stopped"
}

void DbExecutor::thread_main() {
    std::vector<std::unique_ptr<Job>> batch;
    for (;;) {
        batch.clear();
        {
            std::unique_lock lock(mu_);
            // Under load (work was waiting when the last batch ended), a commit waits until its
            // first job is kCommitWindow old or kMaxBatch jobs wait: every commit writes whole
            // pages (the journal's last one, say), so fewer, fuller commits write far less per
            // event. Idle, a job runs at once.
            const bool loaded = !queue_.empty();
            // Idle, the store gets a moment about once a second (PostgreSQL notices a lost
            // connection and reconnects there, so /readyz tells the truth without traffic).
            while (!cv_.wait_for(lock, kIdleTick, [this] { return stopping_ || !queue_.empty(); })) {
                lock.unlock();
                if (store_) store_->idle();
                lock.lock();
            }
            if (queue_.empty()) break;  // stopping and drained
            if (loaded && queue_.front()->batchable()) {
                cv_.wait_until(lock, front_since_ + kCommitWindow,
                               [this] { return stopping_ || queue_.size() >= kMaxBatch; });
            }
            // Everything already waiting goes into one transaction: under load (many streams each
            // storing an event) one commit serves hundreds of writes instead of one each.
            do {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
                front_since_ = std::chrono::steady_clock::now();
            } while (batch.front()->batchable() && !queue_.empty() && queue_.front()->batchable() &&
                     batch.size() < kMaxBatch);
        }
        if (commit_delay_.count() > 0) std::this_thread::sleep_for(commit_delay_);
        if (batch.size() == 1) {
            batch.front()->before_complete = [this] { check_fenced(); };
            batch.front()->run(store_.get());
        } else {
            run_batch(batch);
        }
    }
    if (store_) {
        if (auto st = store_->checkpoint(); !st) {
            std::fprintf(stderr, "confab-server: WAL checkpoint at shutdown failed: %s\n",
                         st.error().message.c_str());
        }
    }
}

boost::asio::awaitable<bool> StorageBackoff::wait(bool give_up) {
    if (give_up) co_return false;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, next_);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    next_ = std::min(next_ * 2, std::chrono::milliseconds(5000));
    co_return true;
}

void DbExecutor::run_batch(std::vector<std::unique_ptr<Job>>& batch) {
    if (auto st = store_->begin_batch(); !st) {
        for (auto& job : batch) {  // one transaction each, as without batching
            job->before_complete = [this] { check_fenced(); };
            job->run(store_.get());
        }
        return;
    }
    for (auto& job : batch) job->execute(*store_);
    std::exception_ptr failed;
    if (auto st = store_->commit_batch(); !st) {
        failed = std::make_exception_ptr(std::runtime_error("storing failed: " + st.error().message));
    }
    check_fenced();
    // Answered only now: nothing is acknowledged before it is committed.
    if (complete_ioc_ == nullptr) {
        for (auto& job : batch) job->complete(failed);
        return;
    }
    // The answers to callers on complete_ioc_ go in one post that dispatches them in job order
    // (one post, not one per I/O thread: jobs of one strand must not be split across threads,
    // which would reorder their answers); the others are posted one by one.
    std::vector<std::unique_ptr<Job>> here;
    here.reserve(batch.size());
    for (auto& job : batch) {
        if (job->context() == complete_ioc_) {
            here.push_back(std::move(job));
        } else {
            job->complete(failed);
        }
    }
    if (here.empty()) return;
    boost::asio::post(complete_ioc_->get_executor(), [jobs = std::move(here), failed]() mutable {
        for (auto& job : jobs) job->complete_here(failed);
    });
}

void DbExecutor::stop() {
    {
        std::lock_guard lock(read_mu_);
        read_stopping_ = true;
        read_cv_.notify_all();
    }
    for (auto& t : reader_threads_) {
        if (t.joinable()) t.join();
    }
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
}

void DbExecutor::add_readers(std::vector<std::unique_ptr<Store>> readers) {
    readers_ = std::move(readers);
    for (auto& r : readers_) reader_threads_.emplace_back([this, s = r.get()] { reader_main(*s); });
}

void DbExecutor::enqueue_read(std::unique_ptr<Job> job) {
    {
        std::lock_guard lock(read_mu_);
        if (!read_stopping_) {
            read_queue_.push_back(std::move(job));
            read_cv_.notify_one();
            return;
        }
    }
    job->run(nullptr);
}

// A reader connection's thread: one job at a time, each its own statements (no transaction).
void DbExecutor::reader_main(Store& store) {
    for (;;) {
        std::unique_ptr<Job> job;
        {
            std::unique_lock lock(read_mu_);
            while (!read_cv_.wait_for(lock, kIdleTick, [this] { return read_stopping_ || !read_queue_.empty(); })) {
                lock.unlock();
                store.idle();  // notices a lost connection and reconnects
                lock.lock();
            }
            if (read_queue_.empty()) return;  // stopping and drained
            job = std::move(read_queue_.front());
            read_queue_.pop_front();
        }
        job->run(&store);
    }
}

}  // namespace confab::server
