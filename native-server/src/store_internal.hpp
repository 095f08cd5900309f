// What the SQLite and PostgreSQL stores share beyond the interface (store_common.cpp): titles,
// the interrupted-run terminal events, status parsing. Internal to the store implementations.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <string_view>
#include <utility>
#include <vector>

#include "store.hpp"

namespace confab::server::store_detail {

inline constexpr const char* kInterrupted = "interrupted: the server restarted before this run finished";

// Title of a session: its first user message, cut to at most 80 bytes on a UTF-8 boundary.
std::string make_title(std::string_view message);

protocol::ExecutionStatus status_from(const std::string& s);  // unknown: error
protocol::Role role_from(const std::string& s);               // unknown: user

// The reply text of a chat run's events so far, from (type, data JSON text) pairs.
void append_reply_text(std::string& partial, const std::string& type, std::string_view data);

// The (type, data) of the terminal events that close an interrupted run (clause 3 of the
// contract): "error" {code: "interrupted"} then "completed" (chat: with the partial reply).
std::vector<std::pair<std::string, std::string>> interrupted_events(const std::string& kind,
                                                                    const std::optional<std::string>& session_id,
                                                                    const std::string& partial);

// The assistant message that keeps an interrupted chat turn's partial reply in its session.
MessageRecord interrupted_message(const std::string& session_id, const std::string& execution_id,
                                  const std::string& partial, std::int64_t now);

// The journal's bookkeeping, the same on both stores (memory only: a restart empties the journal).
// Each execution that has journal rows and is not completed pins its first row; a compaction or a
// completion moves or drops its pin once the transaction commits (staged until then). Every
// `cut_rows` rows written, the journal may be cut below the oldest pin.
class JournalPins {
public:
    void set_cut_rows(std::int64_t rows) { cut_rows_ = rows > 0 ? rows : 1; }
    // `n` rows were written, the newest of them row `last_id`.
    void written(std::int64_t n, std::int64_t last_id) {
        written_ += n;
        last_id_ = std::max(last_id_, last_id);
    }
    // Pinned from its first row on (a rolled-back row only keeps a few rows longer than needed).
    void pin(const std::string& execution_id, std::int64_t first) {
        // try_emplace: a run already pinned (every round after its first) costs a lookup, not a
        // node and a copy of its id made and thrown away.
        if (first > 0 && first_.try_emplace(execution_id, first).second) pins_.insert(first);
    }
    // When the open transaction commits, the execution's pin becomes `first` (0: none).
    void stage(const std::string& execution_id, std::int64_t first) { staged_.emplace_back(execution_id, first); }
    void rolled_back() { staged_.clear(); }
    // The transaction committed: applies what was staged. Returns the row below which the journal
    // may be cut now (`may_cut` false: not inside a group commit), or nullopt.
    std::optional<std::int64_t> committed(bool may_cut);
    void clear() {
        first_.clear();
        pins_.clear();
    }

private:
    std::unordered_map<std::string, std::int64_t> first_;
    std::multiset<std::int64_t> pins_;
    std::vector<std::pair<std::string, std::int64_t>> staged_;  // (id, new first row or 0)
    std::int64_t written_ = 0;
    std::int64_t cut_rows_ = 4096;
    std::int64_t last_id_ = 0;
};

}  // namespace confab::server::store_detail
