// What the SQLite and PostgreSQL stores share beyond the interface (store_common.cpp): titles,
// the interrupted-run terminal events, status parsing. Internal to the store implementations.
#pragma once

#include <optional>
#include <string>
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

}  // namespace confab::server::store_detail
