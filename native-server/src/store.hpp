// The store interface: durable executions, their stream events, chat sessions and messages, on
// SQLite (embedded, the default) or PostgreSQL (shared); open_store picks one.
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "confab/protocol.hpp"
#include "confab/result.hpp"

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

// What every store keeps (docs/STREAMING.md's contract): every method commits before it returns
// (or, inside begin_batch()..commit_batch(), with the batch), so nothing a caller was told is
// stored can be lost by a crash of this process. The schema is versioned and migrated when the
// store opens; a store refuses to open a schema newer than it knows.
// Thread-safety: one Store is used by ONE thread at a time (the DbExecutor's thread), except
// writes_failing(), which any thread may call.
// Read methods that cannot report errors return empty/nullopt on a database error and log it to
// stderr (a failing disk is not "not found" for writes: writes return Status).
// Error codes of writes: "conflict" and "not_found" as each method says; "storage_unavailable"
// when the storage itself refuses (disk full, I/O error, the database server gone or
// unreachable: 503, retry later); "storage_error" for anything else.
class Store {
public:
    virtual ~Store() = default;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Code "conflict" if the id exists.
    virtual Status insert_execution(const ExecutionRecord&) = 0;
    // Appends an event in one statement; fails (code "conflict") if seq is not the execution's
    // highest stored seq + 1, code "not_found" if the execution does not exist.
    virtual Status append_event(const std::string& execution_id, const EventRecord&) = 0;
    // Sets status/output/error/updated_at (terminal transition). Returns code "conflict" if the
    // execution is already terminal (so cancel vs finish races resolve once), "not_found" if absent.
    virtual Status finish_execution(const std::string& id, protocol::ExecutionStatus,
                                    const protocol::Json& output, const std::optional<std::string>& error,
                                    std::int64_t now) = 0;
    // The journal of live runs: appends events of a running execution in commit order (no check
    // of the sequence: the run that owns the execution hands them out). Cheap by design: the rows
    // land on the journal's last page, whatever run they belong to.
    // `compact`: the execution's events journalled before (all of them since the last compaction),
    // written to its events rows in the same transaction, so that a long run does not hold the
    // journal's rows forever.
    virtual Status journal_events(const std::string& execution_id, const std::vector<EventRecord>& events,
                                  const std::vector<EventRecord>& compact = {}) = 0;
    // Ends a live run (see RunCompletion): "conflict" if it is terminal already or one of its
    // events is stored already (nothing written then), "not_found" if it does not exist. A chat
    // message whose session is gone is skipped. Its journal rows are garbage once this commits.
    virtual Status complete_run(const RunCompletion&) = 0;
    // The journal is cut after every `rows` rows written (default 4,096).
    virtual void set_journal_cut_rows(std::int64_t rows) = 0;
    // Journal rows stored, for tests.
    virtual std::int64_t journal_rows() = 0;
    // Non-terminal transition (e.g. running). "conflict" if already terminal.
    virtual Status set_status(const std::string& id, protocol::ExecutionStatus, std::int64_t now) = 0;
    // Scoped lookups: a row of another workspace/user is "not found" (std::nullopt).
    virtual std::optional<ExecutionRecord> get_execution(const std::string& workspace_id,
                                                         const std::string& user_id, const std::string& id) = 0;
    // Unscoped lookup by id, for the server's own bookkeeping (never for a client's request).
    virtual std::optional<ExecutionRecord> get_execution_by_id(const std::string& id) = 0;
    virtual std::vector<EventRecord> events_after(const std::string& execution_id, std::uint64_t after_seq,
                                                  std::size_t limit) = 0;
    // At startup: what the journal holds of unfinished executions moves into their events and the
    // journal is emptied; then every queued/running execution becomes error "interrupted: the server restarted
    // before this run finished", with terminal events appended so streams end ("error"
    // {error, code:"interrupted"} then "completed" {status:"error", output:null, error} for
    // executions; for chat "completed" {result: the partial reply, sessionId, status:"error"}, and
    // the partial reply (possibly "") is stored as the session's assistant message with status
    // "interrupted"). Returns how many. On a shared store (PostgreSQL) only what no live instance
    // owns: the runs of instances whose lease ran out (take_over_expired) and of no owner (rows
    // from before schema 6); the journal rows of live instances stay.
    virtual Result<std::size_t> fail_interrupted(std::int64_t now) = 0;

    virtual Status insert_session(const SessionRecord&) = 0;  // "conflict" if the id exists
    virtual std::optional<SessionRecord> get_session(const std::string& workspace_id,
                                                     const std::string& user_id, const std::string& id) = 0;
    // Newest first (updated_at desc).
    virtual std::vector<SessionRecord> list_sessions(const std::string& workspace_id,
                                                     const std::string& user_id,
                                                     const std::string& app_id /* "" = all */,
                                                     std::size_t limit) = 0;
    // false = not found; deletes messages too.
    virtual Result<bool> delete_session(const std::string& workspace_id, const std::string& user_id,
                                        const std::string& id) = 0;
    // Bumps session updated_at (to the message's created_at) and message_count; sets the title
    // from the first user message (truncated to 80 bytes on a UTF-8 boundary) when it is empty.
    // "not_found" if the session does not exist.
    virtual Status append_message(const MessageRecord&) = 0;
    virtual std::vector<MessageRecord> messages(const std::string& session_id) = 0;  // oldest first
    // The turn whose user message is row `user_message_id` runs again as `execution_id`: its
    // replies are deleted, the user message points at the new execution (and gets `turn_id` if it
    // had none). "not_found" if that user message is not in the session.
    virtual Status replace_reply(const std::string& session_id, std::int64_t user_message_id,
                                 const std::string& execution_id, const std::string& turn_id) = 0;
    // Deletes a turn: the user message `user_message_id` and its replies (message_count and an
    // emptied session's title follow).
    virtual Status delete_turn(const std::string& session_id, std::int64_t user_message_id) = 0;
    // Idempotency keys of chat turns, scoped by workspace and user. put: "conflict" if taken.
    virtual std::optional<IdempotencyRecord> get_idempotency(const std::string& workspace_id,
                                                             const std::string& user_id,
                                                             const std::string& key) = 0;
    virtual Status put_idempotency(const IdempotencyRecord&) = 0;
    // Idempotency-Key of POST .../executions: the first claim stores key -> `execution_id` and
    // returns it with known = false; a later one returns the claimed execution (known = true, even
    // while that execution is still being started), or its other fingerprint (the caller's 409).
    // A start that fails gives its key back with release_execution_key.
    struct ExecutionKeyClaim {
        bool known = false;
        std::string fingerprint, execution_id;
    };
    virtual Result<ExecutionKeyClaim> claim_execution_key(const std::string& workspace_id,
                                                          const std::string& user_id, const std::string& key,
                                                          const std::string& fingerprint,
                                                          const std::string& execution_id, std::int64_t now) = 0;
    virtual Status release_execution_key(const std::string& workspace_id, const std::string& user_id,
                                         const std::string& key, const std::string& execution_id) = 0;
    // Forgets the Idempotency-Keys (chat turns and executions) created before `before` (Unix ms):
    // a key answers retries for a while, not forever. Returns how many went.
    virtual Result<std::size_t> purge_idempotency_keys(std::int64_t before) = 0;
    // Feedback: put inserts or replaces the (execution, user) rating, keeping created_at, and
    // returns the stored row; delete says whether there was one; list is newest (updated_at) first.
    virtual Result<FeedbackRecord> put_feedback(const FeedbackRecord&) = 0;
    virtual Result<bool> delete_feedback(const std::string& execution_id, const std::string& user_id) = 0;
    virtual FeedbackPage list_feedback(const FeedbackQuery&, std::int64_t offset, std::int64_t limit) = 0;
    virtual std::map<std::string, std::int64_t> count_executions_by_status() = 0;  // for /metrics
    // Newest first, every user of the workspace (server-to-server job listing).
    virtual std::vector<ExecutionRecord> list_executions(const std::string& workspace_id, std::size_t limit) = 0;

    // Workflows. put_workflow inserts or replaces; with only_if_absent an existing id is kept
    // (config seeds must not overwrite edits made through the API).
    virtual Status put_workflow(const DocRecord&, bool only_if_absent = false) = 0;
    virtual std::optional<DocRecord> get_workflow(const std::string& workspace_id, const std::string& id) = 0;
    // order_by: "created_at" | "updated_at" | "name" (anything else: created_at).
    virtual DocPage list_workflows(const std::string& workspace_id, const std::string& order_by, bool desc,
                                   std::int64_t offset, std::int64_t limit) = 0;
    virtual Result<bool> delete_workflow(const std::string& workspace_id, const std::string& id) = 0;  // false: not found
    // Workflow runs (upsert by id).
    virtual Status put_run(const DocRecord&) = 0;
    // put_run() only if the stored run's status is still `expected` (compare and set): of two
    // instances resuming one PAUSED run at once, exactly one wins. false: it was not (or no run).
    // This default is atomic for a store that one thread of one process uses (SQLite); a
    // shared store makes it one conditional statement.
    virtual Result<bool> put_run_if(const DocRecord& d, const std::string& expected) {
        auto current = get_run(d.workspace_id, d.id);
        if (!current || current->label != expected) return false;
        if (auto st = put_run(d); !st) return st.error();
        return true;
    }
    virtual std::optional<DocRecord> get_run(const std::string& workspace_id, const std::string& id) = 0;
    // Newest first; workflow_id/status "" = any.
    virtual DocPage list_runs(const std::string& workspace_id, const std::string& workflow_id,
                              const std::string& status, std::int64_t offset, std::int64_t limit) = 0;
    // At startup: QUEUED/RUNNING runs become FAILED with doc.error = "interrupted: ..." (PAUSED
    // runs stay PAUSED: they wait for a human, not for this process). Returns how many.
    virtual Result<std::size_t> fail_interrupted_runs(std::int64_t now) = 0;
    // On shutdown, after the last write: SQLite checkpoints its WAL; PostgreSQL has nothing to do.
    virtual Status checkpoint() = 0;

    // Group commit (used by DbExecutor): everything between begin_batch() and commit_batch() is one
    // transaction; each function's own transaction becomes a savepoint in it. A failed commit_batch()
    // has rolled everything back.
    virtual Status begin_batch() = 0;
    virtual Status commit_batch() = 0;

    virtual int schema_version() = 0;  // the migrations applied, for tests

    // Idle housekeeping on the db thread (DbExecutor calls it about once a second when no work
    // waits): PostgreSQL notices a lost connection and reconnects here. SQLite: nothing.
    virtual void idle() {}

    // Storage health (issue 12, defect 4). True from a write that failed for a reason of the
    // storage itself (disk full, I/O error, read-only, the database server gone ...) until a
    // transaction commits again; /readyz says 503 meanwhile. Such errors carry the code
    // "storage_unavailable" (503), others "storage_error".
    bool writes_failing() const noexcept { return writes_failing_.load(std::memory_order_relaxed); }
    // A tiny committed write, to learn whether storage accepts writes again (/readyz while failing).
    virtual Status probe_write(std::int64_t now) = 0;

    // ---- Several instances on one database (PostgreSQL; README "Operating several instances") ----
    // On SQLite the store belongs to one process: shared() is false, and the rest are trivial
    // (register/renew Ok, nothing expires, nothing to follow, nobody else to cancel for).
    //
    // An instance registers with a lease measured on the DATABASE's clock (no clock of an
    // instance is trusted). It owns what it inserts: executions (and workflow runs it writes)
    // carry its id. Every transaction it opens first checks that it is not fenced, so once
    // another instance has fenced it (its lease ran out), nothing of it commits: its writes
    // fail with code "fenced" and fenced() turns true for good.
    //
    // Notifications (PostgreSQL LISTEN/NOTIFY on channel kNotifyChannel, sent by the committing
    // transaction, so delivered only after commit, in commit order):
    //   "j <first> <last>"  a commit added journal rows with row ids in [first, last]
    //   "d <execution_id>"  the execution ended: its events are all stored, its status terminal
    //   "c <execution_id>"  a client asked to cancel the execution (its owner should stop it)
    //   "p <execution_id> <0|1> <channel> [<client_session>]"  the AirOps edge of some instance
    //                       relays the execution (1: a chat turn) to Pusher channel <channel>:
    //                       instances with WebSocket subscribers on that channel relay it too
    static constexpr const char* kNotifyChannel = "confab";

    virtual bool shared() const { return false; }
    // This store serves DbExecutor::aside() only (a reader connection): reads, and statements
    // that commit on their own. A statement that fails because the connection was lost (the
    // database restarted while this connection idled) is tried once more on a new connection,
    // so a read after an outage answers what is stored, not "not found". Reads are idempotent;
    // the rate limiter's take may then count once more than it granted (a token lost, never one
    // given twice).
    virtual void serve_reads() {}
    // Registers this process as instance `id` (unique per start), named `name` for operators
    // (host:port), holding a lease of `lease_ms` from now. Call once, before any other write.
    virtual Status register_instance(const std::string& id, const std::string& name, std::int64_t lease_ms) {
        (void)id, (void)name, (void)lease_ms;
        return Ok{};
    }
    // Extends the lease to lease_ms from now. Code "fenced" when another instance fenced this one.
    virtual Status renew_lease() { return Ok{}; }
    // Every instance whose lease ran out is fenced and what it owned is closed, one transaction
    // per instance: its unfinished executions end as fail_interrupted() ends them (terminal
    // events, the chat reply "interrupted", a "d" notification each), its QUEUED/RUNNING workflow
    // runs become FAILED, its journal rows become events rows. Returns the executions closed.
    virtual Result<std::vector<std::string>> take_over_expired(std::int64_t now) {
        (void)now;
        return std::vector<std::string>{};
    }
    // The instance that owns unfinished execution `id` and whether its lease is current
    // (nullopt: no owner recorded, or the execution is terminal or unknown).
    struct Owner {
        std::string instance_id;
        bool alive = false;
    };
    virtual std::optional<Owner> execution_owner(const std::string& id) {
        (void)id;
        return std::nullopt;
    }
    // Sends "c <execution_id>" to the instances (committed with the current transaction).
    virtual Status request_cancel(const std::string& execution_id) {
        (void)execution_id;
        return Ok{};
    }
    // Sends `payload` (one of the notifications above) to the instances, committed with the
    // current transaction. SQLite: nobody else to tell.
    virtual Status notify(const std::string& payload) {
        (void)payload;
        return Ok{};
    }
    // The journal rows with row ids in [first, last] that belong to one of `execution_ids` (what a
    // "j" notification names, for the runs this instance follows), ordered by execution, then seq.
    struct JournalRow {
        std::string execution_id;
        EventRecord event;
    };
    virtual std::vector<JournalRow> journal_range(std::int64_t first, std::int64_t last,
                                                  const std::vector<std::string>& execution_ids) {
        (void)first, (void)last, (void)execution_ids;
        return {};
    }
    // Note for shared stores: events_after() answers the events of a run live on ANOTHER instance
    // too (its events rows, then its journal rows), so a reader anywhere can catch up.

    // ---- Per-request state every instance must see alike (shared stores; SQLite keeps it in
    // memory, so these are never called there: their defaults refuse). Times are the DATABASE's
    // clock, the only one all instances share.
    //
    // Takes up to `count` tokens from each bucket `key` (refilled at `per_second`, holding at most
    // `burst`, created full), all in one atomic statement: a process gathers the takes of many
    // requests into one round trip. Keys must be distinct. The answer, in the order asked:
    // `granted` tokens were taken (<= count), `tokens` are left (below 1 when some were refused,
    // for Retry-After). Buckets that are full again are purged now and then.
    struct RateTakeRequest {
        std::string key;
        double per_second = 0, burst = 0;
        std::int64_t count = 1;
    };
    struct RateTake {
        std::int64_t granted = 0;
        double tokens = 0;
    };
    virtual Result<std::vector<RateTake>> take_rate_tokens(const std::vector<RateTakeRequest>& takes) {
        (void)takes;
        return make_error("storage_error", "this store keeps no rate limits");
    }
    // MCP sessions (POST /v1/mcp initialize): a row per session, so any instance answers it.
    struct McpSession {
        std::string id, workspace_id, version;
    };
    // Past `max_per_workspace` live sessions of its workspace, the least recently used ones end.
    // Also purges, now and then, the rows of sessions unused for `idle_ms`.
    virtual Status insert_mcp_session(const McpSession& s, std::int64_t idle_ms, std::int64_t max_per_workspace) {
        (void)s, (void)idle_ms, (void)max_per_workspace;
        return make_error("storage_error", "this store keeps no MCP sessions");
    }
    // The session `id`, marked used now, unless it was deleted or unused for `idle_ms` (then
    // nullopt, for good: an expired session is not revived). Expired rows are purged now and then.
    virtual Result<std::optional<McpSession>> touch_mcp_session(const std::string& id, std::int64_t idle_ms) {
        (void)id, (void)idle_ms;
        return make_error("storage_error", "this store keeps no MCP sessions");
    }
    virtual Result<bool> delete_mcp_session(const std::string& id) {  // false: there was none
        (void)id;
        return make_error("storage_error", "this store keeps no MCP sessions");
    }

    bool fenced() const noexcept { return fenced_.load(std::memory_order_relaxed); }

protected:
    Store() = default;
    void set_writes_failing(bool failing) const noexcept {
        writes_failing_.store(failing, std::memory_order_relaxed);
    }
    void set_fenced() const noexcept { fenced_.store(true, std::memory_order_relaxed); }

private:
    mutable std::atomic<bool> writes_failing_{false};
    mutable std::atomic<bool> fenced_{false};
};

// Where the store lives: PostgreSQL when `database_url` is set (postgresql:// or postgres://),
// otherwise SQLite in `data_dir`.
struct StoreConfig {
    std::string data_dir = "confab-data";
    std::string database_url;
    // PostgreSQL at start: how long to keep trying to reach the database before giving up.
    int connect_timeout_ms = 10000;
};

// Opens (creating and migrating as needed) the store `config` names. Errors name the place
// (directory, or the URL with its password redacted), never a password.
Result<std::unique_ptr<Store>> open_store(const StoreConfig& config);

// True for postgresql:// and postgres:// URLs.
bool is_postgres_url(std::string_view url);

// `url` with the password (user:PASSWORD@ and password=... parameters) replaced by "***", for logs
// and error messages.
std::string redact_database_url(std::string_view url);

}  // namespace confab::server
