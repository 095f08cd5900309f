// The DbExecutor's thread: runs queued Store work in order, drains on stop(), checkpoints the WAL.
#include "db_executor.hpp"

#include <cstdio>

namespace confab::server {

DbExecutor::DbExecutor(std::unique_ptr<Store> store)
    : store_(std::move(store)), thread_([this] { thread_main(); }) {}

DbExecutor::~DbExecutor() { stop(); }

void DbExecutor::enqueue(std::unique_ptr<Job> job) {
    {
        std::lock_guard lock(mu_);
        if (!stopping_) {
            queue_.push_back(std::move(job));
            cv_.notify_one();
            return;
        }
    }
    job->run(nullptr);  // stopped: the job completes at once with "database executor stopped"
}

void DbExecutor::thread_main() {
    for (;;) {
        std::unique_ptr<Job> job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) break;  // stopping and drained
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        job->run(store_.get());
    }
    if (store_) {
        if (auto st = store_->checkpoint(); !st) {
            std::fprintf(stderr, "confab-server: WAL checkpoint at shutdown failed: %s\n",
                         st.error().message.c_str());
        }
    }
}

void DbExecutor::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
}

}  // namespace confab::server
