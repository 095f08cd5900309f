// The PostgreSQL store (libpq): the same Store on a database server that operators already run
// and back up. Owned by the DbExecutor thread like the SQLite store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store.hpp"
#include "store_internal.hpp"

struct pg_conn;
struct pg_result;

namespace confab::server {

struct PgParams;

// Durability: every transaction commits with synchronous_commit = on (set on each connection), so
// a commit has returned only once the server flushed its WAL: nothing a client was sent can be
// lost by a crash of this process or of the database server.
// Group commit: the jobs of one DbExecutor batch run in one transaction. Journal writes (the
// stream events of live runs, the hot path) are gathered into one multi-row INSERT per batch and
// pipelined with BEGIN and COMMIT: one round trip, its results checked at the commit; any failure
// there fails the batch.
// Connection loss: calls fail fast with "storage_unavailable" (and writes_failing() turns true)
// while the store reconnects with backoff (100 ms doubling to 5 s; a non-blocking handshake that
// advances on each call and on idle(), so a database that does not answer never holds the thread),
// logging one line when the database goes away and one when it is back. Statements are prepared
// once per connection.
// Schema: a `confab_schema_version` row, migrated at open() in one transaction under an advisory
// lock, so instances starting together migrate once.
// Several instances (store.hpp): a registered instance owns the executions it inserts and the
// workflow runs it writes, tags its journal rows and cuts only those. Every transaction of it opens
// with confab_fence() (migration 6), pipelined, so once another instance fenced it nothing of it
// commits. fail_interrupted()/fail_interrupted_runs() are not global here: they take over expired
// instances, then close only what no live instance owns (owner NULL: rows from before migration 6
// or of an unregistered store; or a fenced or forgotten owner), and delete only journal rows of no
// live instance. Fenced instance rows are kept a day for operators (take_over_expired deletes them).
class PgStore final : public Store {
public:
    // Connects (retrying until `connect_timeout_ms` has passed), then migrates.
    static Result<std::unique_ptr<PgStore>> open(const std::string& url, int connect_timeout_ms);
    ~PgStore() override;

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
    Status checkpoint() override { return Ok{}; }  // the server owns its WAL
    Status begin_batch() override;
    Status commit_batch() override;
    int schema_version() override;  // confab_schema_version.version
    void idle() override;
    Status probe_write(std::int64_t now) override;
    bool shared() const override { return true; }
    Result<bool> put_run_if(const DocRecord& d, const std::string& expected) override;
    Result<std::vector<RateTake>> take_rate_tokens(const std::vector<RateTakeRequest>& takes) override;
    Status insert_mcp_session(const McpSession& s, std::int64_t idle_ms, std::int64_t max_per_workspace) override;
    Result<std::optional<McpSession>> touch_mcp_session(const std::string& id, std::int64_t idle_ms) override;
    Result<bool> delete_mcp_session(const std::string& id) override;

    // Several instances on one database (store.hpp): leases and fencing on the database's clock.
    Status register_instance(const std::string& id, const std::string& name, std::int64_t lease_ms) override;
    Status renew_lease() override;
    Result<std::vector<std::string>> take_over_expired(std::int64_t now) override;
    std::optional<Owner> execution_owner(const std::string& id) override;
    Status request_cancel(const std::string& execution_id) override;
    Status notify(const std::string& payload) override;
    void serve_reads() override { reads_only_ = true; }
    std::vector<JournalRow> journal_range(std::int64_t first, std::int64_t last,
                                          const std::vector<std::string>& execution_ids) override;

private:
    struct ResultDeleter {
        void operator()(pg_result* r) const noexcept;
    };
    using PgResult = std::unique_ptr<pg_result, ResultDeleter>;

    PgStore(std::string url, std::string redacted);
    pg_conn* start_connection(bool blocking) const;
    Status set_up(pg_conn* c);  // session settings; owns c (closed on failure)
    Status connect_once();      // a blocking connect (at open); last_connect_error_ on failure
    Status migrate();
    bool reconnect();          // when the backoff allows; true when connected
    void lost(const std::string& why);  // the connection is gone: drop it, start reconnecting
    Status usable();           // connected (or fail fast), the pipeline settled
    Result<PgResult> run(std::string_view sql, const PgParams& params, std::string_view what);
    // A write: fails "fenced" at once once fenced; outside a transaction of ours, a registered
    // instance's statement runs in a transaction that checks the fence first (BEGIN, the check,
    // the statement and COMMIT pipelined: one round trip, as the bare statement was).
    Result<PgResult> write(std::string_view sql, const PgParams& params, std::string_view what);
    Error fenced_error() const;
    std::optional<std::string> owner() const;  // this instance's id; NULL when not registered
    // Ends the unfinished executions that `scope` (an SQL condition on executions, $1 its one
    // parameter, if any) selects as fail_interrupted() ends them, inside the open transaction.
    Result<std::vector<std::string>> close_executions(std::string_view scope, const PgParams& params, std::int64_t now);
    // QUEUED/RUNNING workflow runs that `scope` selects become FAILED (interrupted).
    Result<std::size_t> close_runs(std::string_view scope, const PgParams& params, std::int64_t now);
    Status exec(const char* sql, std::string_view what);  // simple query: transaction control, DDL
    Error failure(const pg_result* r, std::string_view what);
    static std::int64_t affected(const PgResult& r);
    // The pipelined part of a batch: BEGIN and journal inserts go out without waiting; settle()
    // sends a sync and reads their results (the first failure is kept in batch_error_).
    Status send_pipelined(std::string_view sql, const PgParams* params);
    Status settle();
    Status flush();

    Status tx_begin();
    Status tx_commit();
    void tx_rollback();
    void committed() noexcept { set_writes_failing(false); }
    void after_commit();
    void after_rollback() { journal_.rolled_back(); }
    void journalled(const pg_result* r);  // (execution_id, first id, last id, rows) of an insert

    Status insert_message(const MessageRecord&);
    Status insert_events(const std::string& execution_id, const std::vector<EventRecord>& events);
    Status delete_replies(const std::string& session_id, std::int64_t user_message_id, bool with_user);
    Status why_not_updated(const std::string& id, std::string_view what);
    std::optional<DocRecord> get_doc(const std::string& sql, const std::string& workspace_id, const std::string& id);
    DocPage doc_page(std::string_view count_sql, std::string_view sql, const PgParams& filter,
                     std::int64_t offset, std::int64_t limit, std::string_view what);

    const std::string url_, redacted_;
    pg_conn* conn_ = nullptr;
    std::uint64_t generation_ = 0;  // connections made: prepared statements belong to one
    std::string last_connect_error_;
    bool outage_logged_ = false;
    pg_conn* connecting_ = nullptr;  // a reconnection under way (non-blocking handshake)
    int connect_polling_ = 0;        // its PostgresPollingStatusType
    std::chrono::steady_clock::time_point connect_started_{};
    std::chrono::steady_clock::time_point next_attempt_{};
    std::chrono::milliseconds backoff_{100};

    bool batch_ = false;     // inside begin_batch() .. commit_batch()
    bool tx_open_ = false;   // a transaction of one method (outside a batch) is open
    bool broken_ = false;    // the connection was lost inside the open transaction
    bool pipeline_ = false;  // in pipeline mode: pending_ results are due
    struct Pending {
        enum class Kind { begin, fence, journal, commit } kind;
    };
    std::vector<Pending> pending_;
    // The journal rows of the open batch, as the array literals of one INSERT: every run's events
    // of a group commit go to the server as one statement, sent with the COMMIT (or before the
    // next statement that is not a journal write, so the order of writes stays the callers').
    struct JournalRows {
        std::string ids, seqs, types, datas, times;  // array elements, comma separated
        std::size_t rows = 0;
        void add(std::string_view execution_id, const EventRecord& e);
        void clear();
    };
    JournalRows journal_batch_;
    Status send_journal_batch();
    std::optional<Error> batch_error_;  // a pipelined statement of the open batch failed
    bool committed_batch_ = false;      // settle() saw the pipelined COMMIT succeed
    bool probe_table_ = false;
    std::string instance_id_;    // register_instance(): "" = not registered (rows carry no owner)
    std::int64_t lease_ms_ = 0;
    // A session idle inside a transaction this long is ended by the server: a frozen instance
    // (SIGSTOP, a stalled VM) must not hold its instance row's lock, which a take-over waits for.
    std::int64_t idle_tx_timeout_ms_ = 5000;
    std::string last_sqlstate_;  // of the last failure(), for callers that treat one specially
    bool reads_only_ = false;    // serve_reads(): a statement cut off by a lost connection is retried once
    std::chrono::steady_clock::time_point reader_next_try_{};
    bool reader_reconnect(bool fresh_loss = false);  // fresh_loss: lost just now, try at once
    // When the connection came back after an outage (zero: none since start). For two leases
    // after it, take_over_expired() fences nobody: after a database restart every instance's
    // lease may have run out, and each needs a moment to reconnect and renew.
    std::chrono::steady_clock::time_point recovered_at_{};
    // Reconnection backoff's ceiling: 5 s, or a quarter of the lease when registered, so that an
    // instance reconnects well within the grace the others give it after an outage.
    std::chrono::milliseconds max_backoff() const {
        return std::chrono::milliseconds(instance_id_.empty() ? 5000 : std::clamp<std::int64_t>(lease_ms_ / 4, 100, 5000));
    }
    // When expired rate buckets and MCP sessions were last purged (once a minute at most).
    std::chrono::steady_clock::time_point rate_purged_{}, mcp_purged_{};

    store_detail::JournalPins journal_;  // which journal rows live runs still need

    struct Prepared {
        std::string name;
        std::uint64_t generation = 0;
    };
    struct SqlHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view sql) const noexcept { return std::hash<std::string_view>{}(sql); }
    };
    std::unordered_map<std::string, Prepared, SqlHash, std::equal_to<>> stmts_;
    const std::string* statement(std::string_view sql, Error& err);  // prepared on this connection
};

}  // namespace confab::server
