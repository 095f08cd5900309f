// The SQLite store: the embedded default, one file in --data-dir (WAL, synchronous=NORMAL).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store.hpp"
#include "store_internal.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace confab::server {

// SqliteStore::append_event's statement (?1 execution id, ?2 seq, ?3 type, ?4 data, ?5 created_at):
// inserts only if the execution exists and seq is its highest stored seq + 1. Exposed for
// bench/core/store_bench.cpp, which measures it against the shape it replaced.
extern const char* const kAppendEventSql;

// Durability: journal_mode=WAL with synchronous=NORMAL. Every method commits before it returns,
// and a committed WAL frame survives a crash (kill -9) of the process; only an OS crash or power
// loss can lose the last commits (synchronous=FULL would be needed for that).
// The schema is versioned with PRAGMA user_version and migrated in open().
class SqliteStore final : public Store {
public:
    // Creates `data_dir` (one level) and `<data_dir>/confab.db` if missing, then migrates.
    static Result<std::unique_ptr<SqliteStore>> open(const std::string& data_dir);
    ~SqliteStore() override;

    Status insert_execution(const ExecutionRecord&) override;
    Status append_event(const std::string& execution_id, const EventRecord&) override;
    Status finish_execution(const std::string& id, protocol::ExecutionStatus, const protocol::Json& output,
                            const std::optional<std::string>& error, std::int64_t now) override;
    Status journal_events(const std::string& execution_id, const std::vector<EventRecord>& events,
                          const std::vector<EventRecord>& compact = {}) override;
    Status complete_run(const RunCompletion&) override;
    void set_journal_cut_rows(std::int64_t rows) override { journal_.set_cut_rows(rows); }
    std::int64_t journal_rows() override;
    Status set_status(const std::string& id, protocol::ExecutionStatus, std::int64_t now) override;
    std::optional<ExecutionRecord> get_execution(const std::string& workspace_id, const std::string& user_id,
                                                 const std::string& id) override;
    std::optional<ExecutionRecord> get_execution_by_id(const std::string& id) override;
    std::vector<EventRecord> events_after(const std::string& execution_id, std::uint64_t after_seq,
                                          std::size_t limit) override;
    Result<std::size_t> fail_interrupted(std::int64_t now) override;
    Status insert_session(const SessionRecord&) override;
    std::optional<SessionRecord> get_session(const std::string& workspace_id, const std::string& user_id,
                                             const std::string& id) override;
    std::vector<SessionRecord> list_sessions(const std::string& workspace_id, const std::string& user_id,
                                             const std::string& app_id, std::size_t limit) override;
    Result<bool> delete_session(const std::string& workspace_id, const std::string& user_id,
                                const std::string& id) override;
    Status append_message(const MessageRecord&) override;
    std::vector<MessageRecord> messages(const std::string& session_id) override;
    Status replace_reply(const std::string& session_id, std::int64_t user_message_id,
                         const std::string& execution_id, const std::string& turn_id) override;
    Status delete_turn(const std::string& session_id, std::int64_t user_message_id) override;
    std::optional<IdempotencyRecord> get_idempotency(const std::string& workspace_id, const std::string& user_id,
                                                     const std::string& key) override;
    Status put_idempotency(const IdempotencyRecord&) override;
    Result<ExecutionKeyClaim> claim_execution_key(const std::string& workspace_id, const std::string& user_id,
                                                  const std::string& key, const std::string& fingerprint,
                                                  const std::string& execution_id, std::int64_t now) override;
    Status release_execution_key(const std::string& workspace_id, const std::string& user_id,
                                 const std::string& key, const std::string& execution_id) override;
    Result<std::size_t> purge_idempotency_keys(std::int64_t before) override;
    Result<FeedbackRecord> put_feedback(const FeedbackRecord&) override;
    Result<bool> delete_feedback(const std::string& execution_id, const std::string& user_id) override;
    FeedbackPage list_feedback(const FeedbackQuery&, std::int64_t offset, std::int64_t limit) override;
    std::map<std::string, std::int64_t> count_executions_by_status() override;
    std::vector<ExecutionRecord> list_executions(const std::string& workspace_id, std::size_t limit) override;
    Status put_workflow(const DocRecord&, bool only_if_absent = false) override;
    std::optional<DocRecord> get_workflow(const std::string& workspace_id, const std::string& id) override;
    DocPage list_workflows(const std::string& workspace_id, const std::string& order_by, bool desc,
                           std::int64_t offset, std::int64_t limit) override;
    Result<bool> delete_workflow(const std::string& workspace_id, const std::string& id) override;
    Status put_run(const DocRecord&) override;
    std::optional<DocRecord> get_run(const std::string& workspace_id, const std::string& id) override;
    DocPage list_runs(const std::string& workspace_id, const std::string& workflow_id, const std::string& status,
                      std::int64_t offset, std::int64_t limit) override;
    Result<std::size_t> fail_interrupted_runs(std::int64_t now) override;
    Status checkpoint() override;  // WAL checkpoint (TRUNCATE)
    Status begin_batch() override;
    Status commit_batch() override;
    int schema_version() override;  // PRAGMA user_version
    Status probe_write(std::int64_t now) override;

private:
    explicit SqliteStore(sqlite3* db);
    Status migrate();
    sqlite3_stmt* prepare(std::string_view sql);  // cached; nullptr on error (logged)
    Status exec(const char* sql);
    Status insert_message(const MessageRecord&);  // inside the caller's transaction
    Status delete_replies(const std::string& session_id, std::int64_t user_message_id, bool with_user);
    std::optional<DocRecord> get_doc(const std::string& sql, const std::string& workspace_id, const std::string& id);
    Status tx_begin();
    Status tx_commit();
    void tx_rollback();
    Error db_error(std::string_view what) const;
    Status why_not_updated(const std::string& id, std::string_view what);

    Error classify(std::string message) const;  // storage_unavailable or storage_error, by the last SQLite error
    void committed() noexcept { set_writes_failing(false); }
    // After a transaction committed: completed runs give their journal rows up, and every few
    // thousand rows the journal is cut below the oldest row a live run still needs.
    void after_commit();
    void after_rollback() { journal_.rolled_back(); }
    Status insert_events(const std::string& execution_id, const std::vector<EventRecord>& events);

    sqlite3* db_ = nullptr;
    bool batch_ = false;  // inside begin_batch() .. commit_batch()
    bool probe_table_ = false;  // probe_write() created its table
    store_detail::JournalPins journal_;  // which journal rows live runs still need
    // Transparent hash: prepare() looks a statement up by string_view without allocating a key.
    struct SqlHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view sql) const noexcept { return std::hash<std::string_view>{}(sql); }
    };
    std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> stmts_;
};

}  // namespace confab::server
