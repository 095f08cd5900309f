// The response bodies of finished executions, in memory: GET /v1/executions/{id} of a finished one
// answers from here without a trip to the database thread (a transaction, the inputs and output
// parsed from their JSON text, the hand-off there and back).
//
// Only terminal executions (protocol::is_terminal) are kept: storage never changes one again
// (every UPDATE of executions is guarded by status IN ('queued', 'running'), or closes runs still
// in those states) and never deletes one, so a kept body stays true, also with several instances on
// one PostgreSQL database. A queued or running one is refused: its state is only in the store.
//
// Bounded by bytes (the bodies, the ids and a fixed per-entry overhead), least recently used first
// out. One mutex: a hit finds the entry, moves it to the front and copies its body (what the
// response carries) under it. Any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "metrics.hpp"
#include "store.hpp"

namespace confab::server {

class ExecutionCache {
public:
    // max_bytes 0: off (find() never finds, put() keeps nothing, nothing is locked).
    explicit ExecutionCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}
    ExecutionCache(const ExecutionCache&) = delete;
    ExecutionCache& operator=(const ExecutionCache&) = delete;

    bool enabled() const noexcept { return max_bytes_ > 0; }
    std::size_t max_bytes() const noexcept { return max_bytes_; }

    // The body of execution `id` when it is kept and is `workspace_id`/`user_id`'s. Another
    // caller's is not found (a miss): the caller asks the store, which answers exactly as it would
    // without the cache (404), in the same time.
    std::optional<std::string> find(std::string_view id, std::string_view workspace_id, std::string_view user_id);

    // Keeps `body` (execution_json(rec)) when `rec` is terminal and the entry fits in the bound at
    // all, evicting the least recently used entries to make room. False when nothing was kept:
    // not terminal, the cache is off, or the entry alone is over the bound. An id kept already
    // stays as it is (a terminal execution's body does not change).
    bool put(const ExecutionRecord& rec, std::string_view body);

    // The bytes an entry is charged: its body, its id, workspace and user ids, and the list node,
    // hash node and bucket it takes (approximate: allocator rounding is not counted).
    static std::size_t charge(std::string_view id, std::string_view workspace_id, std::string_view user_id,
                              std::string_view body) noexcept;

    ExecutionCacheStats stats() const;

private:
    struct Entry {
        std::string id, workspace_id, user_id, body;
        std::size_t charge = 0;
    };
    using List = std::list<Entry>;  // front: most recently used
    // With mu_ held: moves least recently used entries to `evicted` until `incoming` bytes fit.
    void evict_for(std::size_t incoming, List& evicted);

    const std::size_t max_bytes_;
    mutable std::mutex mu_;
    List lru_;
    std::unordered_map<std::string_view, List::iterator> index_;  // keys view the entries' ids
    std::size_t bytes_ = 0;
    std::uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace confab::server
