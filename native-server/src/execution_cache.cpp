// See execution_cache.hpp.
#include "execution_cache.hpp"

#include <iterator>

#include "confab/protocol.hpp"

namespace confab::server {

std::size_t ExecutionCache::charge(std::string_view id, std::string_view workspace_id, std::string_view user_id,
                                   std::string_view body) noexcept {
    // List node (two links and the Entry), hash node (next, key, iterator, cached hash), bucket.
    constexpr std::size_t kOverhead = 2 * sizeof(void*) + sizeof(Entry) + 4 * sizeof(void*) + sizeof(void*);
    return kOverhead + id.size() + workspace_id.size() + user_id.size() + body.size();
}

std::optional<std::string> ExecutionCache::find(std::string_view id, std::string_view workspace_id,
                                                std::string_view user_id) {
    if (!enabled()) return std::nullopt;
    std::lock_guard lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end() || it->second->workspace_id != workspace_id || it->second->user_id != user_id) {
        ++misses_;
        return std::nullopt;
    }
    ++hits_;
    if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->body;
}

bool ExecutionCache::put(const ExecutionRecord& rec, std::string_view body) {
    if (!enabled() || !protocol::is_terminal(rec.status)) return false;
    const std::size_t c = charge(rec.id, rec.workspace_id, rec.user_id, body);
    if (c > max_bytes_) return false;
    // The copies are made before the lock is taken and the evicted entries freed after it is
    // released (both lists outlive the lock): only links change under it.
    List node, evicted;
    node.push_front(Entry{rec.id, rec.workspace_id, rec.user_id, std::string(body), c});
    std::lock_guard lock(mu_);
    if (auto it = index_.find(rec.id); it != index_.end()) {
        if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
        return true;
    }
    evict_for(c, evicted);
    lru_.splice(lru_.begin(), node);
    index_.emplace(lru_.front().id, lru_.begin());
    bytes_ += c;
    return true;
}

void ExecutionCache::evict_for(std::size_t incoming, List& evicted) {
    while (!lru_.empty() && bytes_ + incoming > max_bytes_) {
        auto last = std::prev(lru_.end());
        index_.erase(std::string_view(last->id));
        bytes_ -= last->charge;
        evicted.splice(evicted.end(), lru_, last);
        ++evictions_;
    }
}

ExecutionCacheStats ExecutionCache::stats() const {
    std::lock_guard lock(mu_);
    return ExecutionCacheStats{hits_, misses_, evictions_, index_.size(), bytes_, max_bytes_};
}

}  // namespace confab::server
