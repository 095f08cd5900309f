// The store factory (SQLite or PostgreSQL by configuration) and what both stores share.
#include "store.hpp"

#include "store_internal.hpp"
#include "store_pg.hpp"
#include "store_sqlite.hpp"

namespace confab::server {

bool is_postgres_url(std::string_view url) {
    return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

std::string redact_database_url(std::string_view url) {
    std::string out(url);
    // user:password@host — the password is between the first ':' after the scheme and the last
    // '@' of the authority.
    if (const auto scheme = out.find("://"); scheme != std::string::npos) {
        const std::size_t start = scheme + 3;
        std::size_t end = out.find_first_of("/?#", start);
        if (end == std::string::npos) end = out.size();
        const std::size_t at = out.rfind('@', end);
        if (at != std::string::npos && at >= start) {
            const std::size_t colon = out.find(':', start);
            if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
        }
    }
    // ...?password=secret&... (libpq takes connection parameters in the query too).
    for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
        const bool param_start = pos == 0 || out[pos - 1] == '?' || out[pos - 1] == '&' || out[pos - 1] == ' ';
        pos += 9;
        if (!param_start) continue;
        std::size_t end = out.find_first_of("& ", pos);
        if (end == std::string::npos) end = out.size();
        out.replace(pos, end - pos, "***");
    }
    return out;
}

Result<std::unique_ptr<Store>> open_store(const StoreConfig& config) {
    if (!config.database_url.empty()) {
        if (!is_postgres_url(config.database_url)) {
            return make_error("storage_error", "the database URL must start with postgresql:// or postgres://, got '" +
                                                   redact_database_url(config.database_url) + "'");
        }
        auto pg = PgStore::open(config.database_url, config.connect_timeout_ms);
        if (!pg) return pg.error();
        return std::unique_ptr<Store>(std::move(*pg));
    }
    auto lite = SqliteStore::open(config.data_dir);
    if (!lite) return lite.error();
    return std::unique_ptr<Store>(std::move(*lite));
}

namespace store_detail {

std::string make_title(std::string_view message) {
    constexpr std::size_t kMax = 80;
    if (message.size() <= kMax) return std::string(message);
    std::size_t end = kMax;
    while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
    return std::string(message.substr(0, end)) + "…";
}

protocol::ExecutionStatus status_from(const std::string& s) {
    auto r = protocol::parse_execution_status(s);
    return r ? *r : protocol::ExecutionStatus::error;
}

protocol::Role role_from(const std::string& s) {
    auto r = protocol::parse_role(s);
    return r ? *r : protocol::Role::user;
}

void append_reply_text(std::string& partial, const std::string& type, std::string_view data) {
    protocol::Json j = protocol::Json::parse(data.begin(), data.end(), nullptr, false);
    if (j.is_discarded()) return;
    if (const std::string* text = protocol::reply_text_of(type, j)) partial += *text;
}

std::vector<std::pair<std::string, std::string>> interrupted_events(const std::string& kind,
                                                                    const std::optional<std::string>& session_id,
                                                                    const std::string& partial) {
    std::vector<std::pair<std::string, std::string>> events;
    events.emplace_back("error", protocol::dump(protocol::encode(protocol::ApiError{kInterrupted, "interrupted"})));
    if (kind == "chat") {
        protocol::ChatCompleted c;
        c.result = partial;
        c.session_id = session_id.value_or("");
        c.status = protocol::ExecutionStatus::error;
        events.emplace_back("completed", protocol::dump(protocol::encode(c)));
    } else {
        protocol::ExecutionCompleted c;
        c.status = protocol::ExecutionStatus::error;
        c.error = kInterrupted;
        events.emplace_back("completed", protocol::dump(protocol::encode(c)));
    }
    return events;
}

MessageRecord interrupted_message(const std::string& session_id, const std::string& execution_id,
                                  const std::string& partial, std::int64_t now) {
    MessageRecord m;
    m.session_id = session_id;
    m.role = protocol::Role::assistant;
    m.content = partial;
    m.execution_id = execution_id;
    m.created_at = now;
    m.status = "interrupted";
    m.error_code = "interrupted";
    m.error_message = kInterrupted;
    return m;
}

std::optional<std::int64_t> JournalPins::committed(bool may_cut) {
    for (const auto& [id, first] : staged_) {
        if (auto it = first_.find(id); it != first_.end()) {
            if (auto pin = pins_.find(it->second); pin != pins_.end()) pins_.erase(pin);
            first_.erase(it);
        }
        if (first > 0) {
            first_.emplace(id, first);
            pins_.insert(first);
        }
    }
    staged_.clear();
    // Live runs move their events into events rows every so often, so the oldest pin is never old.
    if (written_ < cut_rows_ || !may_cut) return std::nullopt;
    written_ = 0;
    return pins_.empty() ? last_id_ + 1 : *pins_.begin();
}

}  // namespace store_detail
}  // namespace confab::server
