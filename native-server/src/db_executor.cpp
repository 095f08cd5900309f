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
        if (batch.size() == 1 && (complete_ioc_ == nullptr || !store_ || !batch.front()->batchable())) {
            batch.front()->before_complete = [this] { check_fenced(); };
            batch.front()->run(store_.get());
        } else if (batch.size() == 1) {
            // Its own statements commit as they run; answered through the queue all the same, so
            // it cannot overtake the answers of the commit before.
            batch.front()->execute(*store_);
            check_fenced();
            answer(batch, nullptr);
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
        // One transaction each, as without batching (a group holds only batchable jobs).
        for (auto& job : batch) {
            job->execute(*store_);
            check_fenced();
        }
        answer(batch, nullptr);
        return;
    }
    for (auto& job : batch) job->execute(*store_);
    std::exception_ptr failed;
    if (auto st = store_->commit_batch(); !st) {
        failed = std::make_exception_ptr(std::runtime_error("storing failed: " + st.error().message));
    }
    check_fenced();
    // Answered only now: nothing is acknowledged before it is committed.
    answer(batch, failed);
}

void DbExecutor::answer(std::vector<std::unique_ptr<Job>>& batch, std::exception_ptr failed) {
    if (complete_ioc_ == nullptr) {
        for (auto& job : batch) job->complete(failed);
        return;
    }
    // The answers to callers on complete_ioc_ join one queue, drained by one handler at a time in
    // job order: neither one post per job nor one per commit (two commits' posts could run on two
    // I/O threads at once, and the later one's answers reach a strand first). The others are
    // posted one by one.
    bool post = false;
    {
        std::lock_guard lock(answers_->mu);
        for (auto& job : batch) {
            if (job->context() == complete_ioc_) {
                answers_->queue.emplace_back(std::move(job), failed);
            } else {
                job->complete(failed);
            }
        }
        if (!answers_->queue.empty() && !answers_->draining) post = answers_->draining = true;
    }
    if (post) boost::asio::post(complete_ioc_->get_executor(), [a = answers_] { drain(a); });
}

// An I/O thread of complete_ioc_; at most one at a time. Takes what is queued, answers it in
// order, and again until the queue is empty; a commit answered meanwhile joins the same loop.
void DbExecutor::drain(const std::shared_ptr<Answers>& answers) {
    std::vector<std::pair<std::unique_ptr<Job>, std::exception_ptr>> taken;
    for (;;) {
        {
            std::lock_guard lock(answers->mu);
            if (answers->queue.empty()) {
                answers->draining = false;
                return;
            }
            taken.swap(answers->queue);
        }
        for (auto& [job, failed] : taken) job->complete_here(failed);
        taken.clear();
    }
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
