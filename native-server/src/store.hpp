// Durable storage of executions, their stream events, chat sessions and messages on SQLite.
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "confab/protocol.hpp"
#include "confab/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace confab::server {

struct ExecutionRecord {
    std::string id;                      // random 128-bit hex with prefix "ex_"
    std::string workspace_id, user_id;   // user_id "" for anonymous (public apps)
    std::string app_id, version;
    std::string kind = "execution";      // "execution" | "chat"
    std::optional<std::string> session_id;
    protocol::ExecutionStatus status = protocol::ExecutionStatus::queued;
    protocol::Json inputs = protocol::Json::object();  // stored as JSON text
    protocol::Json output;                // null until done
    std::optional<std::string> error;
    std::int64_t created_at = 0, updated_at = 0;  // Unix ms
    std::uint64_t last_seq = 0;           // highest event seq stored (read from its events)
};

// Store::append_event's statement (?1 execution id, ?2 seq, ?3 type, ?4 data, ?5 created_at):
// inserts only if the execution exists and seq is its highest stored seq + 1. Exposed for
// bench/core/store_bench.cpp, which measures it against the shape it replaced.
extern const char* const kAppendEventSql;

struct EventRecord {
    std::uint64_t seq = 0;
    std::string type;
    std::string data;  // JSON text
    std::int64_t created_at = 0;
};

struct SessionRecord {
    std::string id, workspace_id, user_id, app_id, title;
    std::int64_t created_at = 0, updated_at = 0, message_count = 0;
};

struct MessageRecord {
    std::string session_id;
    protocol::Role role = protocol::Role::user;
    std::string content;
    std::optional<std::string> execution_id;  // user: the turn's current execution; assistant: its own
    std::int64_t created_at = 0;
    std::int64_t id = 0;                      // row id, set when read (orders the session)
    std::optional<std::string> turn_id{};     // the turn's id, on its user and assistant messages
    // Assistant messages: "success" | "error" | "cancelled" | "interrupted" (read as "success" on
    // rows stored before schema 3), with a visitor-safe error when it is not a success.
    std::optional<std::string> status{};
    std::optional<std::string> error_code{}, error_message{};
};

// What ends a live run, committed in one transaction (docs/STREAMING.md, clause 2): the run's
// events rows (every one: while it ran they were only in the journal), the assistant message of a
// chat turn, and the terminal status.
struct RunCompletion {
    std::string execution_id;
    std::vector<EventRecord> events;        // 1..N, dense, the terminal events last
    std::optional<MessageRecord> message;   // chat: the reply, for the session's history
    protocol::ExecutionStatus status = protocol::ExecutionStatus::error;
    protocol::Json output;
    std::optional<std::string> error;
    std::int64_t now = 0;
};

// An Idempotency-Key of a chat turn: the same key from the same user names the same turn.
struct IdempotencyRecord {
    std::string workspace_id, user_id, key;
    std::string app_id, session_id;
    std::string fingerprint;  // what the request asked (mode + message): another ask is a conflict
    std::string turn_id;
    std::int64_t created_at = 0;
};

// One user's rating of one execution ("up" | "down"), changeable.
struct FeedbackRecord {
    std::string execution_id, user_id, workspace_id, app_id, rating, comment;
    std::int64_t created_at = 0, updated_at = 0;
};
struct FeedbackQuery {
    std::string workspace_id;
    std::string app_id, rating;     // "" = any
    std::int64_t from = 0, to = 0;  // updated_at bounds (Unix ms, inclusive); 0 = open
};
struct FeedbackPage {
    std::vector<FeedbackRecord> items;
    std::int64_t total = 0;
};

// A JSON document row of the server-to-server API: a workflow definition (label = name, its steps
// inside `doc`, so deleting the row deletes its steps) or a workflow run (parent_id = workflow id,
// label = status QUEUED|RUNNING|PAUSED|COMPLETED|FAILED|CANCELLED, progress and trace in `doc`).
struct DocRecord {
    std::string id, workspace_id, parent_id, label;
    std::int64_t created_at = 0, updated_at = 0;
    protocol::Json doc = protocol::Json::object();
};

struct DocPage {
    std::vector<DocRecord> items;
    std::int64_t total = 0;
};

// Durability: journal_mode=WAL with synchronous=NORMAL. Every method commits before it returns,
// and a committed WAL frame survives a crash (kill -9) of the process; only an OS crash or power
// loss can lose the last commits (synchronous=FULL would be needed for that).
// The schema is versioned with PRAGMA user_version and migrated in open().
// Thread-safety: one Store is used by ONE thread at a time (the DbExecutor's thread).
// Read methods that cannot report errors return empty/nullopt on a database error and log it to
// stderr (a failing disk is not "not found" for writes: writes return Status).
class Store {
public:
    // Creates `data_dir` (one level) and `<data_dir>/confab.db` if missing, then migrates.
    static Result<std::unique_ptr<Store>> open(const std::string& data_dir);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Code "conflict" if the id exists.
    Status insert_execution(const ExecutionRecord&);
    // Appends an event in one statement; fails (code "conflict") if seq is not the execution's
    // highest stored seq + 1, code "not_found" if the execution does not exist.
    Status append_event(const std::string& execution_id, const EventRecord&);
    // Sets status/output/error/updated_at (terminal transition). Returns code "conflict" if the
    // execution is already terminal (so cancel vs finish races resolve once), "not_found" if absent.
    Status finish_execution(const std::string& id, protocol::ExecutionStatus,
                            const protocol::Json& output, const std::optional<std::string>& error,
                            std::int64_t now);
    // The journal of live runs: appends events of a running execution in commit order (no check
    // of the sequence: the run that owns the execution hands them out). Cheap by design: the rows
    // land on the journal's last page, whatever run they belong to.
    // `compact`: the execution's events journalled before (all of them since the last compaction),
    // written to its events rows in the same transaction, so that a long run does not hold the
    // journal's rows forever.
    Status journal_events(const std::string& execution_id, const std::vector<EventRecord>& events,
                          const std::vector<EventRecord>& compact = {});
    // Ends a live run (see RunCompletion): "conflict" if it is terminal already or one of its
    // events is stored already (nothing written then), "not_found" if it does not exist. A chat
    // message whose session is gone is skipped. Its journal rows are garbage once this commits.
    Status complete_run(const RunCompletion&);
    // The journal is cut after every `rows` rows written (default 4,096).
    void set_journal_cut_rows(std::int64_t rows) { journal_cut_rows_ = rows > 0 ? rows : 1; }
    // Journal rows stored, for tests.
    std::int64_t journal_rows();
    // Non-terminal transition (e.g. running). "conflict" if already terminal.
    Status set_status(const std::string& id, protocol::ExecutionStatus, std::int64_t now);
    // Scoped lookups: a row of another workspace/user is "not found" (std::nullopt).
    std::optional<ExecutionRecord> get_execution(const std::string& workspace_id,
                                                 const std::string& user_id, const std::string& id);
    // Unscoped lookup by id, for the server's own bookkeeping (never for a client's request).
    std::optional<ExecutionRecord> get_execution_by_id(const std::string& id);
    std::vector<EventRecord> events_after(const std::string& execution_id, std::uint64_t after_seq,
                                          std::size_t limit);
    // At startup: what the journal holds of unfinished executions moves into their events and the
    // journal is emptied; then every queued/running execution becomes error "interrupted: the server restarted
    // before this run finished", with terminal events appended so streams end ("error"
    // {error, code:"interrupted"} then "completed" {status:"error", output:null, error} for
    // executions; for chat "completed" {result: the partial reply, sessionId, status:"error"}, and
    // the partial reply (possibly "") is stored as the session's assistant message with status
    // "interrupted"). Returns how many.
    Result<std::size_t> fail_interrupted(std::int64_t now);

    Status insert_session(const SessionRecord&);  // "conflict" if the id exists
    std::optional<SessionRecord> get_session(const std::string& workspace_id,
                                             const std::string& user_id, const std::string& id);
    // Newest first (updated_at desc).
    std::vector<SessionRecord> list_sessions(const std::string& workspace_id,
                                             const std::string& user_id,
                                             const std::string& app_id /* "" = all */,
                                             std::size_t limit);
    // false = not found; deletes messages too.
    Result<bool> delete_session(const std::string& workspace_id, const std::string& user_id,
                                const std::string& id);
    // Bumps session updated_at (to the message's created_at) and message_count; sets the title
    // from the first user message (truncated to 80 bytes on a UTF-8 boundary) when it is empty.
    // "not_found" if the session does not exist.
    Status append_message(const MessageRecord&);
    std::vector<MessageRecord> messages(const std::string& session_id);  // oldest first
    // The turn whose user message is row `user_message_id` runs again as `execution_id`: its
    // replies are deleted, the user message points at the new execution (and gets `turn_id` if it
    // had none). "not_found" if that user message is not in the session.
    Status replace_reply(const std::string& session_id, std::int64_t user_message_id,
                         const std::string& execution_id, const std::string& turn_id);
    // Deletes a turn: the user message `user_message_id` and its replies (message_count and an
    // emptied session's title follow).
    Status delete_turn(const std::string& session_id, std::int64_t user_message_id);
    // Idempotency keys of chat turns, scoped by workspace and user. put: "conflict" if taken.
    std::optional<IdempotencyRecord> get_idempotency(const std::string& workspace_id,
                                                     const std::string& user_id, const std::string& key);
    Status put_idempotency(const IdempotencyRecord&);
    // Idempotency-Key of POST .../executions: the first claim stores key -> `execution_id` and
    // returns it with known = false; a later one returns the claimed execution (known = true, even
    // while that execution is still being started), or its other fingerprint (the caller's 409).
    // A start that fails gives its key back with release_execution_key.
    struct ExecutionKeyClaim {
        bool known = false;
        std::string fingerprint, execution_id;
    };
    Result<ExecutionKeyClaim> claim_execution_key(const std::string& workspace_id, const std::string& user_id,
                                                  const std::string& key, const std::string& fingerprint,
                                                  const std::string& execution_id, std::int64_t now);
    Status release_execution_key(const std::string& workspace_id, const std::string& user_id,
                                 const std::string& key, const std::string& execution_id);
    // Forgets the Idempotency-Keys (chat turns and executions) created before `before` (Unix ms):
    // a key answers retries for a while, not forever. Returns how many went.
    Result<std::size_t> purge_idempotency_keys(std::int64_t before);
    // Feedback: put inserts or replaces the (execution, user) rating, keeping created_at, and
    // returns the stored row; delete says whether there was one; list is newest (updated_at) first.
    Result<FeedbackRecord> put_feedback(const FeedbackRecord&);
    Result<bool> delete_feedback(const std::string& execution_id, const std::string& user_id);
    FeedbackPage list_feedback(const FeedbackQuery&, std::int64_t offset, std::int64_t limit);
    std::map<std::string, std::int64_t> count_executions_by_status();    // for /metrics
    // Newest first, every user of the workspace (server-to-server job listing).
    std::vector<ExecutionRecord> list_executions(const std::string& workspace_id, std::size_t limit);

    // Workflows. put_workflow inserts or replaces; with only_if_absent an existing id is kept
    // (config seeds must not overwrite edits made through the API).
    Status put_workflow(const DocRecord&, bool only_if_absent = false);
    std::optional<DocRecord> get_workflow(const std::string& workspace_id, const std::string& id);
    // order_by: "created_at" | "updated_at" | "name" (anything else: created_at).
    DocPage list_workflows(const std::string& workspace_id, const std::string& order_by, bool desc,
                           std::int64_t offset, std::int64_t limit);
    Result<bool> delete_workflow(const std::string& workspace_id, const std::string& id);  // false: not found
    // Workflow runs (upsert by id).
    Status put_run(const DocRecord&);
    std::optional<DocRecord> get_run(const std::string& workspace_id, const std::string& id);
    // Newest first; workflow_id/status "" = any.
    DocPage list_runs(const std::string& workspace_id, const std::string& workflow_id, const std::string& status,
                      std::int64_t offset, std::int64_t limit);
    // At startup: QUEUED/RUNNING runs become FAILED with doc.error = "interrupted: ..." (PAUSED
    // runs stay PAUSED: they wait for a human, not for this process). Returns how many.
    Result<std::size_t> fail_interrupted_runs(std::int64_t now);
    Status checkpoint();  // WAL checkpoint (TRUNCATE) on shutdown

    // Group commit (used by DbExecutor): everything between begin_batch() and commit_batch() is one
    // transaction; each function's own transaction becomes a savepoint in it. A failed commit_batch()
    // has rolled everything back.
    Status begin_batch();
    Status commit_batch();

    int schema_version();  // PRAGMA user_version, for tests

    // Storage health (issue 12, defect 4). True from a write that failed for a reason of the
    // storage itself (disk full, I/O error, read-only, locked ...) until a transaction commits
    // again. Read from any thread (/readyz); errors of that kind carry the code
    // "storage_unavailable" (503), others "storage_error".
    bool writes_failing() const noexcept { return writes_failing_.load(std::memory_order_relaxed); }
    // A tiny committed write, to learn whether storage accepts writes again (/readyz while failing).
    Status probe_write(std::int64_t now);

private:
    explicit Store(sqlite3* db);
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
    void committed() noexcept { writes_failing_.store(false, std::memory_order_relaxed); }
    // After a transaction committed: completed runs give their journal rows up, and every few
    // thousand rows the journal is cut below the oldest row a live run still needs.
    void after_commit();
    void after_rollback() { repin_staged_.clear(); }
    Status insert_events(const std::string& execution_id, const std::vector<EventRecord>& events);

    sqlite3* db_ = nullptr;
    bool batch_ = false;  // inside begin_batch() .. commit_batch()
    bool probe_table_ = false;  // probe_write() created its table
    mutable std::atomic<bool> writes_failing_{false};
    // Journal bookkeeping (memory only; a restart empties the journal): the first journal row of
    // each execution that has rows there and is not completed, its change in the open transaction
    // (compacted: its new first row; completed: none), and how many rows were written since the
    // last cut.
    std::unordered_map<std::string, std::int64_t> journal_first_;
    std::multiset<std::int64_t> journal_pins_;
    std::vector<std::pair<std::string, std::int64_t>> repin_staged_;  // (id, new first row or 0)
    std::int64_t journal_written_ = 0;
    std::int64_t journal_cut_rows_ = 4096;
    std::int64_t journal_last_id_ = 0;
    // Transparent hash: prepare() looks a statement up by string_view without allocating a key.
    struct SqlHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view sql) const noexcept { return std::hash<std::string_view>{}(sql); }
    };
    std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> stmts_;
};

}  // namespace confab::server
