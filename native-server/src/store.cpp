// SQLite implementation of Store: WAL, cached prepared statements, PRAGMA user_version migrations.
#include "store_sqlite.hpp"

#include "store_internal.hpp"

#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

namespace confab::server {

using protocol::ExecutionStatus;
using protocol::Json;
using store_detail::kInterrupted;
using store_detail::make_title;
using store_detail::role_from;
using store_detail::status_from;

namespace {

// Schema migrations, applied in order; migration i brings user_version from i to i+1.
// Never edit a shipped entry: append a new one.
const char* const kMigrations[] = {
    // 1: executions with their events; chat sessions with their messages.
    R"sql(
    CREATE TABLE executions (
        id           TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        user_id      TEXT NOT NULL,
        app_id       TEXT NOT NULL,
        version      TEXT NOT NULL,
        kind         TEXT NOT NULL,
        session_id   TEXT,
        status       TEXT NOT NULL,
        inputs       TEXT NOT NULL,
        output       TEXT NOT NULL DEFAULT 'null',
        error        TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX executions_scope ON executions (workspace_id, user_id, id);
    CREATE INDEX executions_status ON executions (status);
    CREATE TABLE events (
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        type         TEXT NOT NULL,
        data         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE sessions (
        id            TEXT PRIMARY KEY,
        workspace_id  TEXT NOT NULL,
        user_id       TEXT NOT NULL,
        app_id        TEXT NOT NULL,
        title         TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_scope ON sessions (workspace_id, user_id, updated_at);
    CREATE TABLE messages (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        role         TEXT NOT NULL,
        content      TEXT NOT NULL,
        execution_id TEXT,
        created_at   INTEGER NOT NULL
    );
    CREATE INDEX messages_session ON messages (session_id, id);
    )sql",
    // 2: workflow definitions and runs of the server-to-server API (JSON documents).
    R"sql(
    CREATE TABLE workflows (
        id           TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        name         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        doc          TEXT NOT NULL
    );
    CREATE INDEX workflows_scope ON workflows (workspace_id, created_at);
    CREATE TABLE workflow_runs (
        id           TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        workflow_id  TEXT NOT NULL,
        status       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        doc          TEXT NOT NULL
    );
    CREATE INDEX workflow_runs_scope ON workflow_runs (workspace_id, workflow_id, created_at);
    CREATE INDEX workflow_runs_status ON workflow_runs (status);
    )sql",
    // 3: chat turns a widget can retry and replace (issue 15). Messages say how a reply ended
    // (NULL on rows of before: a stored reply was a success) and which turn they belong to;
    // Idempotency-Key values map to the turn they created; per-user feedback on executions.
    R"sql(
    ALTER TABLE messages ADD COLUMN status TEXT;
    ALTER TABLE messages ADD COLUMN error_code TEXT;
    ALTER TABLE messages ADD COLUMN error_message TEXT;
    ALTER TABLE messages ADD COLUMN turn_id TEXT;
    CREATE TABLE idempotency_keys (
        workspace_id TEXT NOT NULL,
        user_id      TEXT NOT NULL,
        key          TEXT NOT NULL,
        app_id       TEXT NOT NULL,
        session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        fingerprint  TEXT NOT NULL,
        turn_id      TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, user_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_session ON idempotency_keys (session_id);
    CREATE TABLE feedback (
        execution_id TEXT NOT NULL,
        user_id      TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        app_id       TEXT NOT NULL,
        rating       TEXT NOT NULL,
        comment      TEXT NOT NULL DEFAULT '',
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (execution_id, user_id)
    );
    CREATE INDEX feedback_scope ON feedback (workspace_id, updated_at);
    )sql",
    // 4: Idempotency-Key values of POST .../executions, mapped to the execution they started.
    R"sql(
    CREATE TABLE execution_keys (
        workspace_id TEXT NOT NULL,
        user_id      TEXT NOT NULL,
        key          TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, user_id, key)
    ) WITHOUT ROWID;
    )sql",
    // 5: the journal of live runs (docs/STREAMING.md). While a run streams, its events are
    // appended here, in commit order, on the table's last page (a rowid table without any other
    // index); its events rows are written once, together with its final state. A restart moves
    // what the journal holds of unfinished runs into events before closing them.
    R"sql(
    CREATE TABLE journal (
        id           INTEGER PRIMARY KEY,
        execution_id TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        type         TEXT NOT NULL,
        data         TEXT NOT NULL,
        created_at   INTEGER NOT NULL
    );
    )sql",
    // 6: several instances on one database (PostgreSQL: leases, owners, fencing). A SQLite file
    // belongs to one process, so nothing uses these columns here (always NULL); they exist so that
    // a schema version means the same tables on both stores.
    R"sql(
    ALTER TABLE executions ADD COLUMN owner TEXT;
    ALTER TABLE workflow_runs ADD COLUMN owner TEXT;
    ALTER TABLE journal ADD COLUMN instance TEXT;
    )sql",
    // 7: PostgreSQL's tables of state that several instances share (rate buckets, MCP sessions).
    // One SQLite process keeps that state in memory, so these stay empty here; they exist so that
    // a schema version means the same on both stores.
    R"sql(
    CREATE TABLE rate_buckets (
        key        TEXT PRIMARY KEY,
        tokens     REAL NOT NULL,
        at_ms      INTEGER NOT NULL,
        per_second REAL NOT NULL,
        burst      REAL NOT NULL,
        granted    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE mcp_sessions (
        id           TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        version      TEXT NOT NULL,
        created_us   INTEGER NOT NULL,
        used_us      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX mcp_sessions_lru ON mcp_sessions (workspace_id, used_us);
    )sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));



Json load_json(const unsigned char* text, int len) {
    if (text == nullptr) return Json();
    const char* p = reinterpret_cast<const char*>(text);
    Json j = Json::parse(p, p + len, nullptr, false);
    return j.is_discarded() ? Json() : j;
}

std::string column_text(sqlite3_stmt* st, int col) {
    const unsigned char* t = sqlite3_column_text(st, col);
    if (t == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(st, col)));
}

std::optional<std::string> column_opt_text(sqlite3_stmt* st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
    return column_text(st, col);
}

void bind(sqlite3_stmt* st, int i, std::string_view s) {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}
void bind(sqlite3_stmt* st, int i, const std::optional<std::string>& s) {
    if (s) {
        bind(st, i, std::string_view(*s));
    } else {
        sqlite3_bind_null(st, i);
    }
}
void bind(sqlite3_stmt* st, int i, std::int64_t v) { sqlite3_bind_int64(st, i, v); }

// The statements that write an event row (events or journal) take the same five parameters.
constexpr const char* kInsertEventSql =
    "INSERT INTO events (execution_id, seq, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kInsertJournalSql =
    "INSERT INTO journal (execution_id, seq, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";

// Binds (?1 execution id, ?2 seq, ?3 type, ?4 data, ?5 created_at) and runs the statement once,
// leaving it reset for the next row; returns sqlite3_step's code.
// The texts are bound SQLITE_STATIC (not copied): they outlive the step, and the bindings are
// cleared before this returns, so the statement keeps no pointer into them.
int insert_event_row(sqlite3_stmt* st, std::string_view execution_id, std::uint64_t seq, std::string_view type,
                     std::string_view data, std::int64_t created_at) {
    auto text = [st](int i, std::string_view s) {
        sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    };
    text(1, execution_id);
    bind(st, 2, static_cast<std::int64_t>(seq));
    text(3, type);
    text(4, data);
    bind(st, 5, created_at);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

// Resets a cached statement when the scope ends, so it can be reused and holds no read lock.
class Use {
public:
    explicit Use(sqlite3_stmt* st) : st_(st) {}
    ~Use() {
        if (st_ != nullptr) {
            sqlite3_reset(st_);
            sqlite3_clear_bindings(st_);
        }
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    sqlite3_stmt* get() const { return st_; }
    explicit operator bool() const { return st_ != nullptr; }

private:
    sqlite3_stmt* st_;
};

// The highest stored seq of an execution, from its events (the primary key's last entry: one
// B-tree descent). The executions.last_seq column is no longer kept per event: bumping it
// rewrote the execution's row, inputs and all, and dirtied its page for every token.
#define CONFAB_LAST_SEQ_OF(execution_id) \
    "(SELECT COALESCE(MAX(seq), 0) FROM events WHERE execution_id = " execution_id ")"

constexpr const char* kExecutionColumns =
    "id, workspace_id, user_id, app_id, version, kind, session_id, status, inputs, output, error, "
    "created_at, updated_at, " CONFAB_LAST_SEQ_OF("executions.id");

ExecutionRecord read_execution(sqlite3_stmt* st) {
    ExecutionRecord r;
    r.id = column_text(st, 0);
    r.workspace_id = column_text(st, 1);
    r.user_id = column_text(st, 2);
    r.app_id = column_text(st, 3);
    r.version = column_text(st, 4);
    r.kind = column_text(st, 5);
    r.session_id = column_opt_text(st, 6);
    r.status = status_from(column_text(st, 7));
    r.inputs = load_json(sqlite3_column_text(st, 8), sqlite3_column_bytes(st, 8));
    r.output = load_json(sqlite3_column_text(st, 9), sqlite3_column_bytes(st, 9));
    r.error = column_opt_text(st, 10);
    r.created_at = sqlite3_column_int64(st, 11);
    r.updated_at = sqlite3_column_int64(st, 12);
    r.last_seq = static_cast<std::uint64_t>(sqlite3_column_int64(st, 13));
    return r;
}

SessionRecord read_session(sqlite3_stmt* st) {
    SessionRecord s;
    s.id = column_text(st, 0);
    s.workspace_id = column_text(st, 1);
    s.user_id = column_text(st, 2);
    s.app_id = column_text(st, 3);
    s.title = column_text(st, 4);
    s.created_at = sqlite3_column_int64(st, 5);
    s.updated_at = sqlite3_column_int64(st, 6);
    s.message_count = sqlite3_column_int64(st, 7);
    return s;
}

constexpr const char* kSessionColumns =
    "id, workspace_id, user_id, app_id, title, created_at, updated_at, message_count";

}  // namespace

const char* const kAppendEventSql =
    "INSERT INTO events (execution_id, seq, type, data, created_at) SELECT ?1, ?2, ?3, ?4, ?5 "
    "WHERE EXISTS (SELECT 1 FROM executions WHERE id = ?1) AND " CONFAB_LAST_SEQ_OF("?1") " = ?2 - 1";

SqliteStore::SqliteStore(sqlite3* db) : db_(db) {}

SqliteStore::~SqliteStore() {
    for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
    stmts_.clear();
    if (db_ != nullptr) sqlite3_close_v2(db_);
}

Error SqliteStore::classify(std::string message) const {
    switch (db_ != nullptr ? sqlite3_errcode(db_) & 0xff : SQLITE_CANTOPEN) {
        // The storage itself refuses (full, failing, read-only, damaged): /readyz says so until a
        // commit succeeds again.
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            set_writes_failing(true);
            return make_error("storage_unavailable", std::move(message));
        // Passing contention or memory pressure: this request fails (503, retry), readiness stays.
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_NOMEM:
        case SQLITE_PROTOCOL:
            return make_error("storage_unavailable", std::move(message));
        default:
            return make_error("storage_error", std::move(message));
    }
}

Error SqliteStore::db_error(std::string_view what) const {
    std::string msg = "database error: " + std::string(what);
    if (db_ != nullptr) {
        msg += ": ";
        msg += sqlite3_errmsg(db_);
    }
    return classify(std::move(msg));
}

Status SqliteStore::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err != nullptr ? err : "unknown error";
        sqlite3_free(err);
        return classify("database error: " + msg);
    }
    return Ok{};
}

Status SqliteStore::probe_write(std::int64_t now) {
    // Created on the first probe (not a migration: it holds nothing), not on every one.
    if (!probe_table_) {
        if (auto st = exec("CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)"); !st) {
            return st;
        }
        probe_table_ = true;
    }
    Use q(prepare("INSERT OR REPLACE INTO health_probe (id, at) VALUES (1, ?1)"));
    if (!q) return db_error("probe_write");
    bind(q.get(), 1, now);
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("probe_write");
    if (!batch_) committed();  // autocommit: the row is on disk (inside a batch, commit_batch says so)
    return Ok{};
}

sqlite3_stmt* SqliteStore::prepare(std::string_view sql) {
    if (auto it = stmts_.find(sql); it != stmts_.end()) return it->second;
    std::string key(sql);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db_, key.c_str(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT,
                           &st, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "confab-server: cannot prepare statement: %s\n", sqlite3_errmsg(db_));
        return nullptr;
    }
    stmts_.emplace(std::move(key), st);
    return st;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
        return make_error("storage_error", "cannot create the data directory " + data_dir + ": " + ec.message());
    }
    const std::string path = (std::filesystem::path(data_dir) / "confab.db").string();
    sqlite3* db = nullptr;
    // NOMUTEX: one thread uses the Store at a time (the DbExecutor's), so SQLite's locks are waste.
    const int rc = sqlite3_open_v2(path.c_str(), &db,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<SqliteStore> store(new SqliteStore(db));  // owns db even if open failed (close_v2 frees it)
    if (rc != SQLITE_OK) {
        return make_error("storage_error", "cannot open " + path + ": " +
                                               (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
    }
    sqlite3_extended_result_codes(db, 1);
    // busy_timeout: another process (a backup tool, the sqlite3 shell) may briefly hold the lock.
    // wal_autocheckpoint: the writer copies the WAL into the database (and fsyncs) every 250
    // frames instead of SQLite's 1,000. Every commit waits while it does; smaller, more frequent
    // checkpoints took the p99 of 1k streams x 20/s from 16-23 ms to 8-12 ms, and less CPU per
    // event, not more (a small WAL is read from cache). A checkpointer thread of its own was
    // tried and rejected (docs/STREAMING.md).
    for (const char* pragma : {"PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL",
                               "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON",
                               "PRAGMA wal_autocheckpoint = 250"}) {
        if (auto st = store->exec(pragma); !st) {
            return make_error("storage_error", path + ": " + st.error().message);
        }
    }
    if (auto st = store->migrate(); !st) return make_error("storage_error", path + ": " + st.error().message);
    return store;
}

int SqliteStore::schema_version() {
    Use q(prepare("PRAGMA user_version"));
    if (!q || sqlite3_step(q.get()) != SQLITE_ROW) return -1;
    return sqlite3_column_int(q.get(), 0);
}

Status SqliteStore::migrate() {
    const int current = schema_version();
    if (current < 0) return db_error("reading the schema version");
    if (current > kSchemaVersion) {
        return make_error("storage_error", "the database schema version " + std::to_string(current) +
                                               " is newer than this server knows (" +
                                               std::to_string(kSchemaVersion) + ")");
    }
    for (int v = current; v < kSchemaVersion; ++v) {
        if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
        auto st = exec(kMigrations[v]);
        if (st) {
            // user_version lives in the database header, so it commits with the migration.
            const std::string set = "PRAGMA user_version = " + std::to_string(v + 1);
            st = exec(set.c_str());
        }
        if (st) st = exec("COMMIT");
        if (!st) {
            exec("ROLLBACK");
            return make_error("storage_error", "migration " + std::to_string(v + 1) + " failed: " + st.error().message);
        }
    }
    return Ok{};
}

// A Store function's own transaction: BEGIN IMMEDIATE/COMMIT alone, a savepoint inside a group
// commit (the DbExecutor runs queued jobs in one transaction, committed before any is answered).
Status SqliteStore::tx_begin() { return exec(batch_ ? "SAVEPOINT tx" : "BEGIN IMMEDIATE"); }

Status SqliteStore::tx_commit() {
    if (batch_) return exec("RELEASE tx");
    auto st = exec("COMMIT");
    if (st) {
        committed();
        after_commit();
    }
    return st;
}

void SqliteStore::tx_rollback() {
    if (batch_) {
        exec("ROLLBACK TO tx");
        exec("RELEASE tx");
    } else {
        exec("ROLLBACK");
        after_rollback();
    }
}

Status SqliteStore::begin_batch() {
    if (batch_) return make_error("storage_error", "a group commit is already open");
    if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
    batch_ = true;
    return Ok{};
}

Status SqliteStore::commit_batch() {
    batch_ = false;
    if (sqlite3_get_autocommit(db_) != 0) {
        // SQLite rolled the whole transaction back on its own (I/O error, disk full ...).
        set_writes_failing(true);
        after_rollback();
        return make_error("storage_unavailable", "the group commit's transaction was rolled back");
    }
    if (auto st = exec("COMMIT"); !st) {
        exec("ROLLBACK");
        after_rollback();
        return st;
    }
    committed();
    after_commit();
    return Ok{};
}

Status SqliteStore::insert_execution(const ExecutionRecord& r) {
    Use q(prepare(
        "INSERT INTO executions (id, workspace_id, user_id, app_id, version, kind, session_id, "
        "status, inputs, output, error, created_at, updated_at, last_seq) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"));
    if (!q) return db_error("insert_execution");
    auto* st = q.get();
    bind(st, 1, std::string_view(r.id));
    bind(st, 2, std::string_view(r.workspace_id));
    bind(st, 3, std::string_view(r.user_id));
    bind(st, 4, std::string_view(r.app_id));
    bind(st, 5, std::string_view(r.version));
    bind(st, 6, std::string_view(r.kind));
    bind(st, 7, r.session_id);
    bind(st, 8, std::string_view(protocol::to_string(r.status)));
    bind(st, 9, std::string_view(protocol::dump(r.inputs)));
    bind(st, 10, std::string_view(protocol::dump(r.output)));
    bind(st, 11, r.error);
    bind(st, 12, r.created_at);
    bind(st, 13, r.updated_at);
    bind(st, 14, static_cast<std::int64_t>(r.last_seq));
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return Ok{};
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        return make_error("conflict", "execution " + r.id + " already exists");
    }
    return db_error("insert_execution");
}

Status SqliteStore::append_event(const std::string& execution_id, const EventRecord& e) {
    // One statement, so atomic on its own: no savepoint, no second write. It inserts only when
    // the execution exists and seq is the next in sequence (the dense-sequence check).
    {
        Use ins(prepare(kAppendEventSql));
        if (!ins) return db_error("append_event");
        if (insert_event_row(ins.get(), execution_id, e.seq, e.type, e.data, e.created_at) != SQLITE_DONE) {
            return db_error("append_event");
        }
    }
    if (sqlite3_changes(db_) == 1) return Ok{};
    Use sel(prepare("SELECT " CONFAB_LAST_SEQ_OF("?1") " FROM executions WHERE id = ?1"));
    if (!sel) return db_error("append_event");
    bind(sel.get(), 1, std::string_view(execution_id));
    const int rc = sqlite3_step(sel.get());
    if (rc == SQLITE_ROW) {
        const auto last = sqlite3_column_int64(sel.get(), 0);
        return make_error("conflict", "event seq " + std::to_string(e.seq) + " of execution " + execution_id +
                                          " is not " + std::to_string(last + 1) + " (the next in sequence)");
    }
    if (rc == SQLITE_DONE) return make_error("not_found", "no execution " + execution_id);
    return db_error("append_event");
}

Status SqliteStore::journal_events(const std::string& execution_id, const std::vector<EventRecord>& events,
                             const std::vector<EventRecord>& compact) {
    if (events.empty() && compact.empty()) return Ok{};
    // One row alone needs no transaction of its own; more are all or none.
    const bool own_tx = events.size() + compact.size() > 1;
    if (own_tx) {
        if (auto st = tx_begin(); !st) return st;
    }
    auto fail = [&](Error err) -> Status {
        if (own_tx) tx_rollback();
        return err;
    };
    if (auto st = insert_events(execution_id, compact); !st) return fail(st.error());
    std::int64_t first = 0;
    if (!events.empty()) {
        Use ins(prepare(kInsertJournalSql));
        if (!ins) return fail(db_error("journal_events"));
        for (const EventRecord& e : events) {
            if (insert_event_row(ins.get(), execution_id, e.seq, e.type, e.data, e.created_at) != SQLITE_DONE) {
                return fail(db_error("journal_events"));
            }
            if (first == 0) first = sqlite3_last_insert_rowid(db_);
        }
    }
    if (own_tx) {
        if (auto st = tx_commit(); !st) return fail(st.error());
    } else if (!batch_) {
        committed();
    }
    if (first > 0) journal_.written(static_cast<std::int64_t>(events.size()), sqlite3_last_insert_rowid(db_));
    if (!compact.empty()) {
        // Its journal rows before these are garbage once this commits; until then the old pin holds.
        journal_.stage(execution_id, first);
        if (!batch_) after_commit();
    } else {
        journal_.pin(execution_id, first);
    }
    return Ok{};
}

// Writes the events rows of `events` (consecutive seqs) that follow the execution's stored ones,
// inside the caller's transaction; the ones stored already (compacted earlier) are skipped, a gap
// is a "conflict".
Status SqliteStore::insert_events(const std::string& execution_id, const std::vector<EventRecord>& events) {
    if (events.empty()) return Ok{};  // journal_events without a compaction: no read either
    std::uint64_t stored = 0;
    {
        Use q(prepare("SELECT " CONFAB_LAST_SEQ_OF("?1")));
        if (!q) return db_error("storing events");
        bind(q.get(), 1, std::string_view(execution_id));
        if (sqlite3_step(q.get()) != SQLITE_ROW) return db_error("storing events");
        stored = static_cast<std::uint64_t>(sqlite3_column_int64(q.get(), 0));
    }
    if (events.back().seq <= stored) return Ok{};
    Use ins(prepare(kInsertEventSql));
    if (!ins) return db_error("storing events");
    for (const EventRecord& e : events) {
        if (e.seq <= stored) continue;
        if (e.seq != stored + 1) {
            return make_error("conflict", "event " + std::to_string(e.seq) + " of execution " + execution_id +
                                              " does not follow the stored " + std::to_string(stored));
        }
        ++stored;
        const int rc = insert_event_row(ins.get(), execution_id, e.seq, e.type, e.data, e.created_at);
        if (rc == SQLITE_DONE) continue;
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
            return make_error("conflict", "event " + std::to_string(e.seq) + " of execution " + execution_id +
                                              " is stored already");
        }
        return db_error("storing events");
    }
    return Ok{};
}

Status SqliteStore::complete_run(const RunCompletion& c) {
    if (auto st = tx_begin(); !st) return st;
    auto fail = [&](Error err) -> Status {
        tx_rollback();
        return err;
    };
    // The status first: a run finished already (or missing) writes nothing at all.
    if (auto st = finish_execution(c.execution_id, c.status, c.output, c.error, c.now); !st) return fail(st.error());
    if (c.message) {
        // A deleted session keeps no message; anything else that fails undoes the lot.
        if (auto st = insert_message(*c.message); !st && st.error().code != "not_found") return fail(st.error());
    }
    if (auto st = insert_events(c.execution_id, c.events); !st) return fail(st.error());
    if (auto st = tx_commit(); !st) return fail(st.error());
    journal_.stage(c.execution_id, 0);
    if (!batch_) after_commit();
    return Ok{};
}

void SqliteStore::after_commit() {
    const auto below = journal_.committed(!batch_);
    if (!below) return;
    Use del(prepare("DELETE FROM journal WHERE id < ?1"));
    if (!del) return;
    bind(del.get(), 1, *below);
    // Best effort: what is not cut now is cut next time (or emptied at the next start).
    if (sqlite3_step(del.get()) != SQLITE_DONE) {
        std::fprintf(stderr, "confab-server: cutting the journal: %s\n", sqlite3_errmsg(db_));
    }
}

std::int64_t SqliteStore::journal_rows() {
    Use q(prepare("SELECT COUNT(*) FROM journal"));
    if (!q || sqlite3_step(q.get()) != SQLITE_ROW) return -1;
    return sqlite3_column_int64(q.get(), 0);
}

// After a guarded status UPDATE changed no row: says whether the execution is missing or finished.
Status SqliteStore::why_not_updated(const std::string& id, std::string_view what) {
    Use sel(prepare("SELECT status FROM executions WHERE id = ?1"));
    if (!sel) return db_error(what);
    bind(sel.get(), 1, std::string_view(id));
    if (sqlite3_step(sel.get()) != SQLITE_ROW) return make_error("not_found", "no execution " + id);
    return make_error("conflict", "execution " + id + " already finished (" + column_text(sel.get(), 0) + ")");
}

Status SqliteStore::finish_execution(const std::string& id, ExecutionStatus status, const Json& output,
                               const std::optional<std::string>& error, std::int64_t now) {
    if (!protocol::is_terminal(status)) {
        return make_error("invalid_argument", std::string("finish_execution needs a terminal status, not ") +
                                                  protocol::to_string(status));
    }
    {
        Use q(prepare(
            "UPDATE executions SET status = ?1, output = ?2, error = ?3, updated_at = ?4 "
            "WHERE id = ?5 AND status IN ('queued', 'running')"));
        if (!q) return db_error("finish_execution");
        bind(q.get(), 1, std::string_view(protocol::to_string(status)));
        bind(q.get(), 2, std::string_view(protocol::dump(output)));
        bind(q.get(), 3, error);
        bind(q.get(), 4, now);
        bind(q.get(), 5, std::string_view(id));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("finish_execution");
    }
    if (sqlite3_changes(db_) == 1) return Ok{};
    return why_not_updated(id, "finish_execution");
}

Status SqliteStore::set_status(const std::string& id, ExecutionStatus status, std::int64_t now) {
    if (protocol::is_terminal(status)) {
        return make_error("invalid_argument", "set_status is for non-terminal states; use finish_execution");
    }
    {
        Use q(prepare(
            "UPDATE executions SET status = ?1, updated_at = ?2 "
            "WHERE id = ?3 AND status IN ('queued', 'running')"));
        if (!q) return db_error("set_status");
        bind(q.get(), 1, std::string_view(protocol::to_string(status)));
        bind(q.get(), 2, now);
        bind(q.get(), 3, std::string_view(id));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("set_status");
    }
    if (sqlite3_changes(db_) == 1) return Ok{};
    return why_not_updated(id, "set_status");
}

std::optional<ExecutionRecord> SqliteStore::get_execution(const std::string& workspace_id,
                                                    const std::string& user_id, const std::string& id) {
    // Built once: this runs per request.
    static const std::string sql = std::string("SELECT ") + kExecutionColumns +
        " FROM executions WHERE workspace_id = ?1 AND user_id = ?2 AND id = ?3";
    Use q(prepare(sql));
    if (!q) return std::nullopt;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(user_id));
    bind(q.get(), 3, std::string_view(id));
    if (sqlite3_step(q.get()) != SQLITE_ROW) return std::nullopt;
    return read_execution(q.get());
}

std::optional<ExecutionRecord> SqliteStore::get_execution_by_id(const std::string& id) {
    // Built once: this runs per request.
    static const std::string sql = std::string("SELECT ") + kExecutionColumns + " FROM executions WHERE id = ?1";
    Use q(prepare(sql));
    if (!q) return std::nullopt;
    bind(q.get(), 1, std::string_view(id));
    if (sqlite3_step(q.get()) != SQLITE_ROW) return std::nullopt;
    return read_execution(q.get());
}

std::vector<EventRecord> SqliteStore::events_after(const std::string& execution_id, std::uint64_t after_seq,
                                             std::size_t limit) {
    std::vector<EventRecord> out;
    // Stored seqs are SQLite integers (int64): nothing comes after a larger value, and binding it
    // as int64 would make it negative and match every event.
    if (after_seq > static_cast<std::uint64_t>(INT64_MAX)) return out;
    Use q(prepare(
        "SELECT seq, type, data, created_at FROM events WHERE execution_id = ?1 AND seq > ?2 "
        "ORDER BY seq LIMIT ?3"));
    if (!q) return out;
    bind(q.get(), 1, std::string_view(execution_id));
    bind(q.get(), 2, static_cast<std::int64_t>(after_seq));
    bind(q.get(), 3, static_cast<std::int64_t>(limit > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : limit));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
        EventRecord e;
        e.seq = static_cast<std::uint64_t>(sqlite3_column_int64(q.get(), 0));
        e.type = column_text(q.get(), 1);
        e.data = column_text(q.get(), 2);
        e.created_at = sqlite3_column_int64(q.get(), 3);
        out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) std::fprintf(stderr, "confab-server: events_after: %s\n", sqlite3_errmsg(db_));
    return out;
}

Result<std::size_t> SqliteStore::fail_interrupted(std::int64_t now) {
    struct Pending {
        std::string id, kind;
        std::optional<std::string> session_id;
        std::uint64_t last_seq;
    };
    if (auto st = tx_begin(); !st) return st.error();
    auto fail = [&](Error err) -> Result<std::size_t> {
        tx_rollback();
        return err;
    };
    // The journal's rows of unfinished runs become their events (rows of completed runs are
    // there already: OR IGNORE), then the journal is empty: no run is live at startup.
    if (auto st = exec("INSERT OR IGNORE INTO events (execution_id, seq, type, data, created_at) "
                       "SELECT j.execution_id, j.seq, j.type, j.data, j.created_at FROM journal j "
                       "WHERE j.execution_id IN (SELECT id FROM executions WHERE status IN ('queued', 'running')) "
                       "ORDER BY j.id");
        !st) {
        return fail(st.error());
    }
    if (auto st = exec("DELETE FROM journal"); !st) return fail(st.error());
    journal_.clear();
    std::vector<Pending> pending;
    {
        Use q(prepare("SELECT id, kind, session_id, " CONFAB_LAST_SEQ_OF("executions.id")
                      " FROM executions WHERE status IN ('queued', 'running')"));
        if (!q) return fail(db_error("fail_interrupted"));
        int rc;
        while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
            pending.push_back(Pending{column_text(q.get(), 0), column_text(q.get(), 1),
                                      column_opt_text(q.get(), 2),
                                      static_cast<std::uint64_t>(sqlite3_column_int64(q.get(), 3))});
        }
        if (rc != SQLITE_DONE) return fail(db_error("fail_interrupted"));
    }
    for (const auto& p : pending) {
        // The reply streamed so far is what the visitor saw: it becomes the turn's assistant
        // message, marked interrupted, so the session's history keeps it (issue 12).
        std::string partial;
        if (p.kind == "chat") {
            Use ev(prepare("SELECT type, data FROM events WHERE execution_id = ?1 AND "
                           "type IN ('delta', 'agent-response') ORDER BY seq"));
            if (!ev) return fail(db_error("fail_interrupted"));
            bind(ev.get(), 1, std::string_view(p.id));
            int rc;
            while ((rc = sqlite3_step(ev.get())) == SQLITE_ROW) {
                store_detail::append_reply_text(partial, column_text(ev.get(), 0), column_text(ev.get(), 1));
            }
            if (rc != SQLITE_DONE) return fail(db_error("fail_interrupted"));
            if (p.session_id) {
                // The session may be gone (deleted mid-run): then there is no history to keep.
                auto m = store_detail::interrupted_message(*p.session_id, p.id, partial, now);
                if (auto st = insert_message(m); !st && st.error().code != "not_found") return fail(st.error());
            }
        }
        const auto events = store_detail::interrupted_events(p.kind, p.session_id, partial);
        std::uint64_t seq = p.last_seq;
        Use ins(prepare(kInsertEventSql));
        if (!ins) return fail(db_error("fail_interrupted"));
        for (const auto& [type, data] : events) {
            if (insert_event_row(ins.get(), p.id, ++seq, type, data, now) != SQLITE_DONE) {
                return fail(db_error("fail_interrupted"));
            }
        }
        Use up(prepare(
            "UPDATE executions SET status = 'error', error = ?1, updated_at = ?2 WHERE id = ?3"));
        if (!up) return fail(db_error("fail_interrupted"));
        bind(up.get(), 1, std::string_view(kInterrupted));
        bind(up.get(), 2, now);
        bind(up.get(), 3, std::string_view(p.id));
        if (sqlite3_step(up.get()) != SQLITE_DONE) return fail(db_error("fail_interrupted"));
    }
    if (auto st = tx_commit(); !st) return fail(st.error());
    return pending.size();
}

Status SqliteStore::insert_session(const SessionRecord& s) {
    Use q(prepare(
        "INSERT INTO sessions (id, workspace_id, user_id, app_id, title, created_at, updated_at, message_count) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    if (!q) return db_error("insert_session");
    bind(q.get(), 1, std::string_view(s.id));
    bind(q.get(), 2, std::string_view(s.workspace_id));
    bind(q.get(), 3, std::string_view(s.user_id));
    bind(q.get(), 4, std::string_view(s.app_id));
    bind(q.get(), 5, std::string_view(s.title));
    bind(q.get(), 6, s.created_at);
    bind(q.get(), 7, s.updated_at);
    bind(q.get(), 8, s.message_count);
    const int rc = sqlite3_step(q.get());
    if (rc == SQLITE_DONE) return Ok{};
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return make_error("conflict", "session " + s.id + " already exists");
    return db_error("insert_session");
}

std::optional<SessionRecord> SqliteStore::get_session(const std::string& workspace_id, const std::string& user_id,
                                                const std::string& id) {
    // Built once: this runs per request.
    static const std::string sql = std::string("SELECT ") + kSessionColumns +
        " FROM sessions WHERE workspace_id = ?1 AND user_id = ?2 AND id = ?3";
    Use q(prepare(sql));
    if (!q) return std::nullopt;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(user_id));
    bind(q.get(), 3, std::string_view(id));
    if (sqlite3_step(q.get()) != SQLITE_ROW) return std::nullopt;
    return read_session(q.get());
}

std::vector<SessionRecord> SqliteStore::list_sessions(const std::string& workspace_id, const std::string& user_id,
                                                const std::string& app_id, std::size_t limit) {
    std::vector<SessionRecord> out;
    // Built once: this runs per request.
    static const std::string sql = std::string("SELECT ") + kSessionColumns +
        " FROM sessions WHERE workspace_id = ?1 AND user_id = ?2 AND (?3 = '' OR app_id = ?3) "
        "ORDER BY updated_at DESC, id LIMIT ?4";
    Use q(prepare(sql));
    if (!q) return out;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(user_id));
    bind(q.get(), 3, std::string_view(app_id));
    bind(q.get(), 4, static_cast<std::int64_t>(limit > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : limit));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) out.push_back(read_session(q.get()));
    if (rc != SQLITE_DONE) std::fprintf(stderr, "confab-server: list_sessions: %s\n", sqlite3_errmsg(db_));
    return out;
}

Result<bool> SqliteStore::delete_session(const std::string& workspace_id, const std::string& user_id,
                                   const std::string& id) {
    if (auto st = tx_begin(); !st) return st.error();
    auto fail = [&](Error err) -> Result<bool> {
        tx_rollback();
        return err;
    };
    {
        Use q(prepare("DELETE FROM sessions WHERE workspace_id = ?1 AND user_id = ?2 AND id = ?3"));
        if (!q) return fail(db_error("delete_session"));
        bind(q.get(), 1, std::string_view(workspace_id));
        bind(q.get(), 2, std::string_view(user_id));
        bind(q.get(), 3, std::string_view(id));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return fail(db_error("delete_session"));
    }
    const bool found = sqlite3_changes(db_) == 1;
    if (found) {
        // ON DELETE CASCADE does this too; explicit so it holds even with foreign keys off.
        Use q(prepare("DELETE FROM messages WHERE session_id = ?1"));
        if (!q) return fail(db_error("delete_session"));
        bind(q.get(), 1, std::string_view(id));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return fail(db_error("delete_session"));
    }
    if (auto st = tx_commit(); !st) return fail(st.error());
    return found;
}

Status SqliteStore::append_message(const MessageRecord& m) {
    if (auto st = tx_begin(); !st) return st;
    if (auto st = insert_message(m); !st) {
        tx_rollback();
        return st;
    }
    if (auto st = tx_commit(); !st) {
        tx_rollback();
        return st;
    }
    return Ok{};
}

// append_message's work inside the caller's transaction (fail_interrupted has one open).
Status SqliteStore::insert_message(const MessageRecord& m) {
    {
        Use q(prepare(
            "UPDATE sessions SET updated_at = MAX(updated_at, ?1), message_count = message_count + 1, "
            "title = CASE WHEN title = '' AND ?2 = 'user' THEN ?3 ELSE title END WHERE id = ?4"));
        if (!q) return db_error("append_message");
        bind(q.get(), 1, m.created_at);
        bind(q.get(), 2, std::string_view(protocol::to_string(m.role)));
        bind(q.get(), 3, std::string_view(make_title(m.content)));
        bind(q.get(), 4, std::string_view(m.session_id));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("append_message");
    }
    if (sqlite3_changes(db_) != 1) return make_error("not_found", "no session " + m.session_id);
    Use q(prepare(
        "INSERT INTO messages (session_id, role, content, execution_id, created_at, status, error_code, "
        "error_message, turn_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    if (!q) return db_error("append_message");
    bind(q.get(), 1, std::string_view(m.session_id));
    bind(q.get(), 2, std::string_view(protocol::to_string(m.role)));
    bind(q.get(), 3, std::string_view(m.content));
    bind(q.get(), 4, m.execution_id);
    bind(q.get(), 5, m.created_at);
    bind(q.get(), 6, m.status);
    bind(q.get(), 7, m.error_code);
    bind(q.get(), 8, m.error_message);
    bind(q.get(), 9, m.turn_id);
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("append_message");
    return Ok{};
}

std::vector<MessageRecord> SqliteStore::messages(const std::string& session_id) {
    std::vector<MessageRecord> out;
    Use q(prepare(
        "SELECT session_id, role, content, execution_id, created_at, id, status, error_code, error_message, "
        "turn_id FROM messages WHERE session_id = ?1 ORDER BY id"));
    if (!q) return out;
    bind(q.get(), 1, std::string_view(session_id));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
        MessageRecord m;
        m.session_id = column_text(q.get(), 0);
        m.role = role_from(column_text(q.get(), 1));
        m.content = column_text(q.get(), 2);
        m.execution_id = column_opt_text(q.get(), 3);
        m.created_at = sqlite3_column_int64(q.get(), 4);
        m.id = sqlite3_column_int64(q.get(), 5);
        m.status = column_opt_text(q.get(), 6);
        m.error_code = column_opt_text(q.get(), 7);
        m.error_message = column_opt_text(q.get(), 8);
        m.turn_id = column_opt_text(q.get(), 9);
        // A reply stored before schema 3 was stored only when it succeeded.
        if (m.role == protocol::Role::assistant && !m.status) m.status = "success";
        out.push_back(std::move(m));
    }
    if (rc != SQLITE_DONE) std::fprintf(stderr, "confab-server: messages: %s\n", sqlite3_errmsg(db_));
    return out;
}

// The turn of user message `user_message_id` runs again as `execution_id`: its replies (the
// assistant messages after it, up to the next user message) go, the user message stays.
Status SqliteStore::replace_reply(const std::string& session_id, std::int64_t user_message_id,
                            const std::string& execution_id, const std::string& turn_id) {
    if (auto st = tx_begin(); !st) return st;
    auto fail = [&](Error err) -> Status {
        tx_rollback();
        return err;
    };
    {
        Use q(prepare(
            "UPDATE messages SET execution_id = ?1, turn_id = COALESCE(turn_id, ?2) "
            "WHERE id = ?3 AND session_id = ?4 AND role = 'user'"));
        if (!q) return fail(db_error("replace_reply"));
        bind(q.get(), 1, std::string_view(execution_id));
        bind(q.get(), 2, std::string_view(turn_id));
        bind(q.get(), 3, user_message_id);
        bind(q.get(), 4, std::string_view(session_id));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return fail(db_error("replace_reply"));
        if (sqlite3_changes(db_) != 1) return fail(make_error("not_found", "no such user message"));
    }
    if (auto st = delete_replies(session_id, user_message_id, false); !st) return fail(st.error());
    if (auto st = tx_commit(); !st) return fail(st.error());
    return Ok{};
}

Status SqliteStore::delete_turn(const std::string& session_id, std::int64_t user_message_id) {
    if (auto st = tx_begin(); !st) return st;
    if (auto st = delete_replies(session_id, user_message_id, true); !st) {
        tx_rollback();
        return st;
    }
    if (auto st = tx_commit(); !st) {
        tx_rollback();
        return st;
    }
    return Ok{};
}

// Deletes the replies of a turn (and its user message too with `with_user`), then recounts the
// session's messages; a session left with no user message gets its title from the next one.
Status SqliteStore::delete_replies(const std::string& session_id, std::int64_t user_message_id, bool with_user) {
    {
        Use q(prepare(
            "DELETE FROM messages WHERE session_id = ?1 AND ((id > ?2 AND role <> 'user' AND id < "
            "COALESCE((SELECT MIN(id) FROM messages WHERE session_id = ?1 AND id > ?2 AND role = 'user'), "
            "9223372036854775807)) OR (?3 AND id = ?2))"));
        if (!q) return db_error("delete_turn");
        bind(q.get(), 1, std::string_view(session_id));
        bind(q.get(), 2, user_message_id);
        bind(q.get(), 3, static_cast<std::int64_t>(with_user ? 1 : 0));
        if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("delete_turn");
    }
    Use q(prepare(
        "UPDATE sessions SET message_count = (SELECT COUNT(*) FROM messages WHERE session_id = ?1), "
        "title = CASE WHEN EXISTS (SELECT 1 FROM messages WHERE session_id = ?1 AND role = 'user') "
        "THEN title ELSE '' END WHERE id = ?1"));
    if (!q) return db_error("delete_turn");
    bind(q.get(), 1, std::string_view(session_id));
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("delete_turn");
    return Ok{};
}

std::optional<IdempotencyRecord> SqliteStore::get_idempotency(const std::string& workspace_id, const std::string& user_id,
                                                        const std::string& key) {
    Use q(prepare(
        "SELECT app_id, session_id, fingerprint, turn_id, created_at FROM idempotency_keys "
        "WHERE workspace_id = ?1 AND user_id = ?2 AND key = ?3"));
    if (!q) return std::nullopt;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(user_id));
    bind(q.get(), 3, std::string_view(key));
    if (sqlite3_step(q.get()) != SQLITE_ROW) return std::nullopt;
    IdempotencyRecord r;
    r.workspace_id = workspace_id;
    r.user_id = user_id;
    r.key = key;
    r.app_id = column_text(q.get(), 0);
    r.session_id = column_text(q.get(), 1);
    r.fingerprint = column_text(q.get(), 2);
    r.turn_id = column_text(q.get(), 3);
    r.created_at = sqlite3_column_int64(q.get(), 4);
    return r;
}

Status SqliteStore::put_idempotency(const IdempotencyRecord& r) {
    Use q(prepare(
        "INSERT INTO idempotency_keys (workspace_id, user_id, key, app_id, session_id, fingerprint, turn_id, "
        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    if (!q) return db_error("put_idempotency");
    bind(q.get(), 1, std::string_view(r.workspace_id));
    bind(q.get(), 2, std::string_view(r.user_id));
    bind(q.get(), 3, std::string_view(r.key));
    bind(q.get(), 4, std::string_view(r.app_id));
    bind(q.get(), 5, std::string_view(r.session_id));
    bind(q.get(), 6, std::string_view(r.fingerprint));
    bind(q.get(), 7, std::string_view(r.turn_id));
    bind(q.get(), 8, r.created_at);
    const int rc = sqlite3_step(q.get());
    if (rc == SQLITE_DONE) return Ok{};
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return make_error("conflict", "the idempotency key is taken");
    return db_error("put_idempotency");
}

Result<Store::ExecutionKeyClaim> SqliteStore::claim_execution_key(const std::string& workspace_id,
                                                           const std::string& user_id, const std::string& key,
                                                           const std::string& fingerprint,
                                                           const std::string& execution_id, std::int64_t now) {
    ExecutionKeyClaim claim;
    {
        Use q(prepare("SELECT fingerprint, execution_id FROM execution_keys "
                      "WHERE workspace_id = ?1 AND user_id = ?2 AND key = ?3"));
        if (!q) return db_error("claim_execution_key");
        bind(q.get(), 1, std::string_view(workspace_id));
        bind(q.get(), 2, std::string_view(user_id));
        bind(q.get(), 3, std::string_view(key));
        if (sqlite3_step(q.get()) == SQLITE_ROW) {
            claim.known = true;
            claim.fingerprint = column_text(q.get(), 0);
            claim.execution_id = column_text(q.get(), 1);
        }
    }
    // Known: the same execution, also while its first request is still starting it (re-claiming a
    // key whose execution is not stored yet would start a second run for one key).
    if (claim.known) return claim;
    Use q(prepare("INSERT INTO execution_keys (workspace_id, user_id, key, fingerprint, execution_id, created_at) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    if (!q) return db_error("claim_execution_key");
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(user_id));
    bind(q.get(), 3, std::string_view(key));
    bind(q.get(), 4, std::string_view(fingerprint));
    bind(q.get(), 5, std::string_view(execution_id));
    bind(q.get(), 6, now);
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("claim_execution_key");
    claim.known = false;
    claim.fingerprint = fingerprint;
    claim.execution_id = execution_id;
    return claim;
}

Status SqliteStore::release_execution_key(const std::string& workspace_id, const std::string& user_id,
                                   const std::string& key, const std::string& execution_id) {
    Use q(prepare("DELETE FROM execution_keys WHERE workspace_id = ?1 AND user_id = ?2 AND key = ?3 "
                  "AND execution_id = ?4"));
    if (!q) return db_error("release_execution_key");
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(user_id));
    bind(q.get(), 3, std::string_view(key));
    bind(q.get(), 4, std::string_view(execution_id));
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("release_execution_key");
    return Ok{};
}

Result<std::size_t> SqliteStore::purge_idempotency_keys(std::int64_t before) {
    if (auto st = tx_begin(); !st) return st.error();
    std::size_t gone = 0;
    for (const char* sql : {"DELETE FROM idempotency_keys WHERE created_at < ?1",
                            "DELETE FROM execution_keys WHERE created_at < ?1"}) {
        Use q(prepare(sql));
        if (!q) {
            Error e = db_error("purge_idempotency_keys");
            tx_rollback();
            return e;
        }
        bind(q.get(), 1, before);
        if (sqlite3_step(q.get()) != SQLITE_DONE) {
            Error e = db_error("purge_idempotency_keys");
            tx_rollback();
            return e;
        }
        gone += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    if (auto st = tx_commit(); !st) {
        tx_rollback();
        return st.error();
    }
    return gone;
}

namespace {
constexpr const char* kFeedbackColumns =
    "execution_id, user_id, workspace_id, app_id, rating, comment, created_at, updated_at";

FeedbackRecord read_feedback(sqlite3_stmt* st) {
    FeedbackRecord f;
    f.execution_id = column_text(st, 0);
    f.user_id = column_text(st, 1);
    f.workspace_id = column_text(st, 2);
    f.app_id = column_text(st, 3);
    f.rating = column_text(st, 4);
    f.comment = column_text(st, 5);
    f.created_at = sqlite3_column_int64(st, 6);
    f.updated_at = sqlite3_column_int64(st, 7);
    return f;
}
}  // namespace

Result<FeedbackRecord> SqliteStore::put_feedback(const FeedbackRecord& f) {
    {
        Use q(prepare(
            "INSERT INTO feedback (execution_id, user_id, workspace_id, app_id, rating, comment, created_at, "
            "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (execution_id, user_id) DO UPDATE SET "
            "rating = excluded.rating, comment = excluded.comment, updated_at = excluded.updated_at"));
        if (!q) return db_error("put_feedback");
        bind(q.get(), 1, std::string_view(f.execution_id));
        bind(q.get(), 2, std::string_view(f.user_id));
        bind(q.get(), 3, std::string_view(f.workspace_id));
        bind(q.get(), 4, std::string_view(f.app_id));
        bind(q.get(), 5, std::string_view(f.rating));
        bind(q.get(), 6, std::string_view(f.comment));
        bind(q.get(), 7, f.updated_at);
        if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("put_feedback");
    }
    static const std::string sql = std::string("SELECT ") + kFeedbackColumns +
        " FROM feedback WHERE execution_id = ?1 AND user_id = ?2";
    Use q(prepare(sql));
    if (!q) return db_error("put_feedback");
    bind(q.get(), 1, std::string_view(f.execution_id));
    bind(q.get(), 2, std::string_view(f.user_id));
    if (sqlite3_step(q.get()) != SQLITE_ROW) return db_error("put_feedback");
    return read_feedback(q.get());
}

Result<bool> SqliteStore::delete_feedback(const std::string& execution_id, const std::string& user_id) {
    Use q(prepare("DELETE FROM feedback WHERE execution_id = ?1 AND user_id = ?2"));
    if (!q) return db_error("delete_feedback");
    bind(q.get(), 1, std::string_view(execution_id));
    bind(q.get(), 2, std::string_view(user_id));
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("delete_feedback");
    return sqlite3_changes(db_) > 0;
}

FeedbackPage SqliteStore::list_feedback(const FeedbackQuery& f, std::int64_t offset, std::int64_t limit) {
    FeedbackPage page;
    // One filter for both queries: "" / 0 means no condition.
    static const std::string where =
        " FROM feedback WHERE workspace_id = ?1 AND (?2 = '' OR app_id = ?2) AND (?3 = '' OR rating = ?3) "
        "AND (?4 = 0 OR updated_at >= ?4) AND (?5 = 0 OR updated_at <= ?5)";
    auto bind_filter = [&](sqlite3_stmt* st) {
        bind(st, 1, std::string_view(f.workspace_id));
        bind(st, 2, std::string_view(f.app_id));
        bind(st, 3, std::string_view(f.rating));
        bind(st, 4, f.from);
        bind(st, 5, f.to);
    };
    {
        static const std::string sql = "SELECT COUNT(*)" + where;
        Use c(prepare(sql));
        if (!c) return page;
        bind_filter(c.get());
        if (sqlite3_step(c.get()) == SQLITE_ROW) page.total = sqlite3_column_int64(c.get(), 0);
    }
    static const std::string sql = std::string("SELECT ") + kFeedbackColumns + where +
        " ORDER BY updated_at DESC, rowid DESC LIMIT ?6 OFFSET ?7";
    Use q(prepare(sql));
    if (!q) return page;
    bind_filter(q.get());
    bind(q.get(), 6, limit);
    bind(q.get(), 7, offset);
    while (sqlite3_step(q.get()) == SQLITE_ROW) page.items.push_back(read_feedback(q.get()));
    return page;
}

std::map<std::string, std::int64_t> SqliteStore::count_executions_by_status() {
    std::map<std::string, std::int64_t> out;
    for (auto s : {ExecutionStatus::queued, ExecutionStatus::running, ExecutionStatus::success,
                   ExecutionStatus::error, ExecutionStatus::cancelled}) {
        out[protocol::to_string(s)] = 0;
    }
    Use q(prepare("SELECT status, COUNT(*) FROM executions GROUP BY status"));
    if (!q) return out;
    while (sqlite3_step(q.get()) == SQLITE_ROW) out[column_text(q.get(), 0)] = sqlite3_column_int64(q.get(), 1);
    return out;
}

Status SqliteStore::checkpoint() {
    return exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

// ---------------------------------------------------------------- server-to-server documents

namespace {

DocRecord read_doc(sqlite3_stmt* st) {
    DocRecord d;
    d.id = column_text(st, 0);
    d.workspace_id = column_text(st, 1);
    d.parent_id = column_text(st, 2);
    d.label = column_text(st, 3);
    d.created_at = sqlite3_column_int64(st, 4);
    d.updated_at = sqlite3_column_int64(st, 5);
    d.doc = load_json(sqlite3_column_text(st, 6), sqlite3_column_bytes(st, 6));
    if (!d.doc.is_object()) d.doc = Json::object();
    return d;
}

constexpr const char* kWorkflowColumns = "id, workspace_id, '', name, created_at, updated_at, doc";
constexpr const char* kRunColumns = "id, workspace_id, workflow_id, status, created_at, updated_at, doc";

}  // namespace

std::vector<ExecutionRecord> SqliteStore::list_executions(const std::string& workspace_id, std::size_t limit) {
    std::vector<ExecutionRecord> out;
    static const std::string sql = std::string("SELECT ") + kExecutionColumns +
        " FROM executions WHERE workspace_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2";
    Use q(prepare(sql));
    if (!q) return out;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, static_cast<std::int64_t>(limit > 1000000 ? 1000000 : limit));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) out.push_back(read_execution(q.get()));
    if (rc != SQLITE_DONE) std::fprintf(stderr, "confab-server: list_executions: %s\n", sqlite3_errmsg(db_));
    return out;
}

Status SqliteStore::put_workflow(const DocRecord& d, bool only_if_absent) {
    Use q(prepare(only_if_absent
                      ? "INSERT OR IGNORE INTO workflows (id, workspace_id, name, created_at, updated_at, doc) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                      // An upsert, not INSERT OR REPLACE: the row keeps its rowid, the tiebreak of
                      // rows created in the same millisecond, so an edit never reorders a list.
                      : "INSERT INTO workflows (id, workspace_id, name, created_at, updated_at, doc) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
                        "workspace_id = excluded.workspace_id, name = excluded.name, "
                        "created_at = excluded.created_at, updated_at = excluded.updated_at, doc = excluded.doc"));
    if (!q) return db_error("put_workflow");
    bind(q.get(), 1, std::string_view(d.id));
    bind(q.get(), 2, std::string_view(d.workspace_id));
    bind(q.get(), 3, std::string_view(d.label));
    bind(q.get(), 4, d.created_at);
    bind(q.get(), 5, d.updated_at);
    bind(q.get(), 6, std::string_view(protocol::dump(d.doc)));
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("put_workflow");
    return Ok{};
}

// One workflow or run by id, within its workspace (sql binds ?1 = workspace, ?2 = id).
std::optional<DocRecord> SqliteStore::get_doc(const std::string& sql, const std::string& workspace_id, const std::string& id) {
    Use q(prepare(sql));
    if (!q) return std::nullopt;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(id));
    if (sqlite3_step(q.get()) != SQLITE_ROW) return std::nullopt;
    return read_doc(q.get());
}

std::optional<DocRecord> SqliteStore::get_workflow(const std::string& workspace_id, const std::string& id) {
    static const std::string sql = std::string("SELECT ") + kWorkflowColumns +
        " FROM workflows WHERE workspace_id = ?1 AND id = ?2";
    return get_doc(sql, workspace_id, id);
}

DocPage SqliteStore::list_workflows(const std::string& workspace_id, const std::string& order_by, bool desc,
                              std::int64_t offset, std::int64_t limit) {
    DocPage page;
    {
        Use c(prepare("SELECT COUNT(*) FROM workflows WHERE workspace_id = ?1"));
        if (!c) return page;
        bind(c.get(), 1, std::string_view(workspace_id));
        if (sqlite3_step(c.get()) == SQLITE_ROW) page.total = sqlite3_column_int64(c.get(), 0);
    }
    // The column comes from a fixed list, never from the request text.
    const char* col = order_by == "name" ? "name" : order_by == "updated_at" ? "updated_at" : "created_at";
    const std::string sql = std::string("SELECT ") + kWorkflowColumns + " FROM workflows WHERE workspace_id = ?1 ORDER BY " +
                            col + (desc ? " DESC" : " ASC") + ", rowid" + (desc ? " DESC" : " ASC") +
                            " LIMIT ?2 OFFSET ?3";
    Use q(prepare(sql));
    if (!q) return page;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, limit);
    bind(q.get(), 3, offset);
    while (sqlite3_step(q.get()) == SQLITE_ROW) page.items.push_back(read_doc(q.get()));
    return page;
}

Result<bool> SqliteStore::delete_workflow(const std::string& workspace_id, const std::string& id) {
    Use q(prepare("DELETE FROM workflows WHERE workspace_id = ?1 AND id = ?2"));
    if (!q) return db_error("delete_workflow");
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(id));
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("delete_workflow");
    return sqlite3_changes(db_) > 0;
}

Status SqliteStore::put_run(const DocRecord& d) {
    // Upsert (keeps the rowid: creation order among runs of the same millisecond).
    Use q(prepare("INSERT INTO workflow_runs (id, workspace_id, workflow_id, status, created_at, "
                  "updated_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
                  "workspace_id = excluded.workspace_id, workflow_id = excluded.workflow_id, "
                  "status = excluded.status, created_at = excluded.created_at, "
                  "updated_at = excluded.updated_at, doc = excluded.doc"));
    if (!q) return db_error("put_run");
    bind(q.get(), 1, std::string_view(d.id));
    bind(q.get(), 2, std::string_view(d.workspace_id));
    bind(q.get(), 3, std::string_view(d.parent_id));
    bind(q.get(), 4, std::string_view(d.label));
    bind(q.get(), 5, d.created_at);
    bind(q.get(), 6, d.updated_at);
    bind(q.get(), 7, std::string_view(protocol::dump(d.doc)));
    if (sqlite3_step(q.get()) != SQLITE_DONE) return db_error("put_run");
    return Ok{};
}

std::optional<DocRecord> SqliteStore::get_run(const std::string& workspace_id, const std::string& id) {
    static const std::string sql = std::string("SELECT ") + kRunColumns +
        " FROM workflow_runs WHERE workspace_id = ?1 AND id = ?2";
    return get_doc(sql, workspace_id, id);
}

DocPage SqliteStore::list_runs(const std::string& workspace_id, const std::string& workflow_id, const std::string& status,
                         std::int64_t offset, std::int64_t limit) {
    DocPage page;
    {
        Use c(prepare("SELECT COUNT(*) FROM workflow_runs WHERE workspace_id = ?1 AND (?2 = '' OR workflow_id = ?2) "
                      "AND (?3 = '' OR status = ?3)"));
        if (!c) return page;
        bind(c.get(), 1, std::string_view(workspace_id));
        bind(c.get(), 2, std::string_view(workflow_id));
        bind(c.get(), 3, std::string_view(status));
        if (sqlite3_step(c.get()) == SQLITE_ROW) page.total = sqlite3_column_int64(c.get(), 0);
    }
    static const std::string sql = std::string("SELECT ") + kRunColumns +
        " FROM workflow_runs WHERE workspace_id = ?1 AND (?2 = '' OR workflow_id = ?2) AND (?3 = '' OR status = ?3) "
        "ORDER BY created_at DESC, rowid DESC LIMIT ?4 OFFSET ?5";
    Use q(prepare(sql));
    if (!q) return page;
    bind(q.get(), 1, std::string_view(workspace_id));
    bind(q.get(), 2, std::string_view(workflow_id));
    bind(q.get(), 3, std::string_view(status));
    bind(q.get(), 4, limit);
    bind(q.get(), 5, offset);
    while (sqlite3_step(q.get()) == SQLITE_ROW) page.items.push_back(read_doc(q.get()));
    return page;
}

Result<std::size_t> SqliteStore::fail_interrupted_runs(std::int64_t now) {
    std::vector<DocRecord> open;
    {
        static const std::string sql = std::string("SELECT ") + kRunColumns +
            " FROM workflow_runs WHERE status IN ('QUEUED', 'RUNNING')";
        Use q(prepare(sql));
        if (!q) return db_error("fail_interrupted_runs");
        int rc;
        while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) open.push_back(read_doc(q.get()));
        if (rc != SQLITE_DONE) return db_error("fail_interrupted_runs");
    }
    for (auto& d : open) {
        d.label = "FAILED";
        d.updated_at = now;
        d.doc["error"] = kInterrupted;
        d.doc["errorCode"] = "interrupted";
        if (auto st = put_run(d); !st) return st.error();
    }
    return open.size();
}

}  // namespace confab::server
