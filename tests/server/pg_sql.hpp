// Plain libpq helpers of the PostgreSQL tests and benches: a URL naming another database, and one
// statement on a connection of its own (no store, no pipeline: what a test checks the store with).
#pragma once

#include <libpq-fe.h>

#include <stdexcept>
#include <string>

namespace confab::pgtest {

// `url` naming database `name` instead of its own (query parameters kept).
inline std::string with_database(const std::string& url, const std::string& name) {
    const auto slash = url.find('/', url.find("://") + 3);
    const auto query = url.find('?', slash == std::string::npos ? 0 : slash);
    std::string out = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
    out += "/" + name;
    if (query != std::string::npos) out += url.substr(query);
    return out;
}

// Runs `statement` on a connection of its own: the first column of the first row, or "".
// Throws std::runtime_error (connecting, or the statement's error).
inline std::string first_value(const std::string& url, const std::string& statement) {
    PGconn* c = PQconnectdb(url.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        std::string why = std::string("connecting: ") + PQerrorMessage(c);
        PQfinish(c);
        throw std::runtime_error(why);
    }
    PGresult* r = PQexec(c, statement.c_str());
    const auto st = PQresultStatus(r);
    std::string out, error;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        error = statement + ": " + PQresultErrorMessage(r);
    } else if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    PQfinish(c);
    if (!error.empty()) throw std::runtime_error(error);
    return out;
}

}  // namespace confab::pgtest
