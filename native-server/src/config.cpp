// Loads and validates the server's JSON config; every error names the file, the field path and why.
#include "config.hpp"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "runners.hpp"
#include "upstream.hpp"

namespace confab::server {

using protocol::Json;

const AppVersion* AppConfig::find_version(std::string_view label) const {
    if (versions.empty()) return nullptr;
    if (label.empty()) return &versions.back();
    for (const auto& v : versions) {
        if (v.version == label) return &v;
    }
    return nullptr;
}

protocol::AppInfo AppConfig::info() const {
    protocol::AppInfo a;
    a.id = id;
    a.name = name;
    a.type = type;
    a.is_public = is_public;
    a.starters = starters;
    a.image_hosts = image_hosts;
    a.avatar_url = avatar_url;
    for (const auto& v : versions) a.versions.push_back(v.version);
    if (!versions.empty()) {
        a.version = versions.back().version;
        a.inputs = versions.back().inputs;
    }
    return a;
}

const AppConfig* WorkspaceConfig::find_app(std::string_view app_id) const {
    for (const auto& a : apps) {
        if (a.id == app_id) return &a;
    }
    return nullptr;
}

const ApiClient* WorkspaceConfig::find_client(std::string_view client_id) const {
    for (const auto& c : clients) {
        if (c.client_id == client_id) return &c;
    }
    return nullptr;
}

const WorkspaceConfig* ServerConfig::find_workspace(std::string_view ws_id) const {
    for (const auto& w : workspaces) {
        if (w.id == ws_id) return &w;
    }
    return nullptr;
}

namespace {

bool valid_id(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

// Walks one JSON object, remembering the first error. Unknown keys are errors (a misspelt
// "allowedOrigin" must not silently leave a workspace open or closed); keys starting with '$' or
// '_' are ignored so a config can carry comments such as "$comment".
class Reader {
public:
    Reader(const Json& j, std::string path, std::string* error) : j_(j), path_(std::move(path)), error_(error) {
        if (!j.is_object()) fail_at(path_, "must be an object");
    }

    bool failed() const { return !error_->empty(); }
    std::string path(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }
    void fail_at(const std::string& p, std::string_view reason) {
        if (failed()) return;
        *error_ = p.empty() ? std::string(reason) : p + ": " + std::string(reason);
    }
    void fail(std::string_view key, std::string_view reason) { fail_at(path(key), reason); }

    const Json* get(std::string_view key) {
        used_.insert(std::string(key));
        if (failed() || !j_.is_object()) return nullptr;
        auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return nullptr;
        return &*it;
    }
    bool has(std::string_view key) const {
        if (!j_.is_object()) return false;
        auto it = j_.find(key);
        return it != j_.end() && !it->is_null();
    }

    std::optional<std::string> str(std::string_view key, bool required, bool non_empty = false) {
        const Json* v = get(key);
        if (v == nullptr) {
            if (required) fail(key, "is required");
            return std::nullopt;
        }
        const auto* s = v->get_ptr<const Json::string_t*>();
        if (s == nullptr) {
            fail(key, "must be a string");
            return std::nullopt;
        }
        if (non_empty && s->empty()) {
            fail(key, "must not be empty");
            return std::nullopt;
        }
        return *s;
    }

    std::optional<std::string> id(std::string_view key) {
        auto s = str(key, true);
        if (s && !valid_id(*s)) {
            fail(key, "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'");
            return std::nullopt;
        }
        return s;
    }

    std::optional<bool> boolean(std::string_view key) {
        const Json* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_boolean()) {
            fail(key, "must be a boolean");
            return std::nullopt;
        }
        return v->get<bool>();
    }

    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
        const Json* v = get(key);
        if (v == nullptr) return std::nullopt;
        std::optional<std::int64_t> i;
        if (v->is_number_unsigned()) {
            if (v->get<std::uint64_t>() <= static_cast<std::uint64_t>(max)) {
                i = static_cast<std::int64_t>(v->get<std::uint64_t>());
            }
        } else if (v->is_number_integer()) {
            i = v->get<std::int64_t>();
        }
        if (!i || *i < min || *i > max) {
            fail(key, "must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
            return std::nullopt;
        }
        return i;
    }

    std::optional<double> number(std::string_view key, double min_exclusive, double max) {
        const Json* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number() || !(v->get<double>() > min_exclusive) || v->get<double>() > max) {
            std::ostringstream os;
            os << "must be a number greater than " << min_exclusive << " and at most " << max;
            fail(key, os.str());
            return std::nullopt;
        }
        return v->get<double>();
    }

    // Array of strings; each must be non-empty.
    std::optional<std::vector<std::string>> strings(std::string_view key, bool required) {
        const Json* v = get(key);
        if (v == nullptr) {
            if (required) fail(key, "is required");
            return std::nullopt;
        }
        if (!v->is_array()) {
            fail(key, "must be an array of strings");
            return std::nullopt;
        }
        std::vector<std::string> out;
        for (std::size_t i = 0; i < v->size(); ++i) {
            const auto* s = (*v)[i].get_ptr<const Json::string_t*>();
            const std::string p = path(key) + "[" + std::to_string(i) + "]";
            if (s == nullptr) {
                fail_at(p, "must be a string");
                return std::nullopt;
            }
            if (s->empty()) {
                fail_at(p, "must not be empty");
                return std::nullopt;
            }
            out.push_back(*s);
        }
        return out;
    }

    const Json* array(std::string_view key, bool required) {
        const Json* v = get(key);
        if (v == nullptr) {
            if (required) fail(key, "is required");
            return nullptr;
        }
        if (!v->is_array()) {
            fail(key, "must be an array");
            return nullptr;
        }
        return v;
    }

    // Call after reading every known key.
    void reject_unknown() {
        if (failed() || !j_.is_object()) return;
        for (const auto& item : j_.items()) {
            const std::string& k = item.key();
            if (!k.empty() && (k[0] == '$' || k[0] == '_')) continue;
            if (used_.count(k) == 0) {
                fail(k, "is not a known field");
                return;
            }
        }
    }

private:
    const Json& j_;
    std::string path_;
    std::string* error_;
    std::set<std::string> used_;
};

// Version fields, read from either an element of `versions` or the app object itself.
void read_version_fields(Reader& r, protocol::AppType type, AppVersion& v, std::string* error) {
    if (auto s = r.str("version", false, true)) v.version = *s;
    if (const Json* inputs = r.array("inputs", false)) {
        std::set<std::string> names;
        for (std::size_t i = 0; i < inputs->size() && !r.failed(); ++i) {
            const std::string p = r.path("inputs") + "[" + std::to_string(i) + "]";
            auto spec = protocol::decode_input_spec((*inputs)[i], p);
            if (!spec) {
                *error = spec.error().message;
                return;
            }
            if (!names.insert(spec->name).second) {
                r.fail_at(p + ".name", "duplicate input name \"" + spec->name + "\"");
                return;
            }
            v.inputs.push_back(std::move(*spec));
        }
    }
    if (auto s = r.str("template", false)) v.template_text = *s;
    if (auto s = r.str("systemPrompt", false)) v.system_prompt = *s;
    if (auto s = r.str("prompt", false)) v.prompt = *s;
    if (auto s = r.str("model", false, true)) v.model = *s;
    if (auto s = r.str("url", false, true)) v.url = *s;
    if (auto s = r.str("workflowId", false, true)) v.workflow_id = *s;
    if (auto n = r.integer("chunkChars", 1, 1 << 20)) v.chunk_chars = static_cast<int>(*n);
    if (auto n = r.integer("delayMs", 0, 60000)) v.delay_ms = static_cast<int>(*n);
    if (r.failed()) return;

    using protocol::AppType;
    switch (type) {
        case AppType::template_:
            if (!r.has("template")) r.fail("template", "is required for template apps");
            break;
        case AppType::http: {
            if (v.url.empty()) {
                r.fail("url", "is required for http apps");
                break;
            }
            auto u = parse_http_url(v.url);
            if (!u) r.fail("url", u.error().message);
            break;
        }
        case AppType::agent:
            if (v.model.empty()) {
                r.fail("model", "is required for agent apps: \"echo\", \"llm\" or \"clock\"");
            } else if (v.model != "echo" && v.model != "llm" && v.model != "clock") {
                r.fail("model", "must be \"echo\", \"llm\" or \"clock\" for agent apps");
            }
            break;
        case AppType::llm:
            break;
        case AppType::workflow:
            if (v.workflow_id.empty()) r.fail("workflowId", "is required for workflow apps: the id of a workflow of this workspace");
            break;
    }
    if (r.failed()) return;

    // Every {{placeholder}} must name a declared input, or every run would fail.
    auto check_placeholders = [&](std::string_view key, const std::string& text) {
        if (r.failed() || text.empty()) return;
        auto names = template_placeholders(text);
        if (!names) {
            r.fail(key, names.error().message);
            return;
        }
        for (const auto& n : *names) {
            bool declared = false;
            for (const auto& in : v.inputs) declared = declared || in.name == n;
            if (!declared) {
                r.fail(key, "uses {{" + n + "}} but the app declares no input \"" + n + "\"");
                return;
            }
        }
    };
    check_placeholders("template", v.template_text);
    check_placeholders("systemPrompt", v.system_prompt);
    check_placeholders("prompt", v.prompt);
}

// A host name pattern of `imageHosts`: a DNS name (letters, digits, '-', '.'; an optional port
// is not part of it) or "*." followed by one, meaning any subdomain of it.
bool valid_host_pattern(std::string_view h) {
    if (h.substr(0, 2) == "*.") h.remove_prefix(2);
    if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '.' || h.front() == '-') return false;
    char prev = 0;
    for (char c : h) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok || (c == '.' && prev == '.')) return false;
        prev = c;
    }
    return true;
}

void read_widget_fields(Reader& r, AppConfig& app) {
    constexpr std::size_t kMaxStarters = 6, kMaxStarterBytes = 500;
    if (const Json* list = r.get("starters")) {
        if (!list->is_array() || list->size() > kMaxStarters) {
            r.fail("starters", "must be an array of at most 6 strings");
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const auto* s = (*list)[i].get_ptr<const Json::string_t*>();
            const std::string key = "starters[" + std::to_string(i) + "]";
            if (s == nullptr || s->empty() || s->size() > kMaxStarterBytes) {
                r.fail(key, "must be a non-empty string of at most 500 bytes");
                return;
            }
            app.starters.push_back(*s);
        }
    }
    if (const Json* list = r.get("imageHosts")) {
        if (!list->is_array()) {
            r.fail("imageHosts", "must be an array of host names");
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const auto* s = (*list)[i].get_ptr<const Json::string_t*>();
            if (s == nullptr || !valid_host_pattern(*s)) {
                r.fail("imageHosts[" + std::to_string(i) + "]",
                       "must be a lowercase host name (\"img.example.com\") or \"*.\" and one (\"*.example.com\")");
                return;
            }
            app.image_hosts.push_back(*s);
        }
    }
    if (auto s = r.str("avatarUrl", false, true)) {
        if (s->rfind("https://", 0) != 0 && s->rfind("http://", 0) != 0 && s->rfind("/", 0) != 0) {
            r.fail("avatarUrl", "must be an http(s) URL or a path starting with /");
            return;
        }
        app.avatar_url = *s;
    }
}

void read_app(const Json& j, const std::string& path, AppConfig& app, std::string* error) {
    Reader r(j, path, error);
    if (auto s = r.id("id")) app.id = *s;
    if (auto s = r.str("name", false, true)) app.name = *s;
    if (r.failed()) return;
    if (app.name.empty()) app.name = app.id;
    if (auto t = r.str("type", true)) {
        auto parsed = protocol::parse_app_type(*t);
        if (!parsed) {
            r.fail("type", "must be one of template, llm, http, agent, workflow");
        } else {
            app.type = *parsed;
        }
    }
    if (auto b = r.boolean("public")) app.is_public = *b;
    read_widget_fields(r, app);
    if (r.failed()) return;

    if (const Json* versions = r.get("versions")) {
        if (!versions->is_array() || versions->empty()) {
            r.fail("versions", "must be a non-empty array");
            return;
        }
        static const char* const kVersionKeys[] = {"version", "inputs", "template", "systemPrompt",
                                                   "prompt", "model", "url", "chunkChars", "delayMs", "workflowId"};
        for (const char* k : kVersionKeys) {
            if (k != std::string_view("version") && r.has(k)) {
                r.fail(k, "must be inside versions[] when the app lists versions");
                return;
            }
        }
        std::set<std::string> labels;
        for (std::size_t i = 0; i < versions->size(); ++i) {
            const std::string p = r.path("versions") + "[" + std::to_string(i) + "]";
            Reader vr((*versions)[i], p, error);
            if (vr.failed()) return;
            AppVersion v;
            v.version.clear();
            if (!vr.has("version")) {
                vr.fail("version", "is required");
                return;
            }
            read_version_fields(vr, app.type, v, error);
            vr.reject_unknown();
            if (vr.failed()) return;
            if (!labels.insert(v.version).second) {
                vr.fail("version", "duplicate version label \"" + v.version + "\"");
                return;
            }
            app.versions.push_back(std::move(v));
        }
        if (r.has("version")) {
            r.fail("version", "must be inside versions[] when the app lists versions");
            return;
        }
    } else {
        AppVersion v;
        read_version_fields(r, app.type, v, error);
        if (r.failed()) return;
        app.versions.push_back(std::move(v));
    }
    r.reject_unknown();
}

void read_workspace(const Json& j, const std::string& path, WorkspaceConfig& ws, std::string* error) {
    Reader r(j, path, error);
    if (auto s = r.id("id")) ws.id = *s;
    if (auto s = r.str("name", false, true)) ws.name = *s;
    if (ws.name.empty()) ws.name = ws.id;
    if (auto s = r.strings("secrets", true)) {
        if (s->empty()) r.fail("secrets", "needs at least one secret (the first one signs)");
        ws.secrets = std::move(*s);
    }
    if (auto s = r.strings("apiKeys", false)) ws.api_keys = std::move(*s);
    if (auto s = r.strings("allowedOrigins", false)) ws.allowed_origins = std::move(*s);
    if (const Json* rl = r.get("rateLimit")) {
        Reader rr(*rl, r.path("rateLimit"), error);
        if (auto n = rr.number("perSecond", 0, 1e9)) ws.rate_limit.per_second = *n;
        if (auto n = rr.number("burst", 0, 1e9)) {
            if (*n < 1) {
                rr.fail("burst", "must be at least 1");
            }
            ws.rate_limit.burst = *n;
        }
        rr.reject_unknown();
    }
    if (r.failed()) return;
    if (const Json* apps = r.array("apps", false)) {
        std::set<std::string> ids;
        for (std::size_t i = 0; i < apps->size(); ++i) {
            const std::string p = r.path("apps") + "[" + std::to_string(i) + "]";
            AppConfig app;
            read_app((*apps)[i], p, app, error);
            if (!error->empty()) return;
            if (!ids.insert(app.id).second) {
                r.fail_at(p + ".id", "duplicate app id \"" + app.id + "\" in workspace \"" + ws.id + "\"");
                return;
            }
            ws.apps.push_back(std::move(app));
        }
    }
    if (r.failed() || !error->empty()) return;
    if (const Json* clients = r.array("clients", false)) {
        for (std::size_t i = 0; i < clients->size() && !r.failed(); ++i) {
            Reader cr((*clients)[i], r.path("clients") + "[" + std::to_string(i) + "]", error);
            ApiClient c;
            if (auto s = cr.id("clientId")) c.client_id = *s;
            if (auto s = cr.str("clientSecret", true, true)) c.client_secret = *s;
            if (auto b = cr.boolean("revoked")) c.revoked = *b;
            if (auto n = cr.integer("tokenTtlSeconds", 1, 86400)) c.token_ttl_seconds = static_cast<int>(*n);
            cr.reject_unknown();
            if (cr.failed()) return;
            if (ws.find_client(c.client_id)) {
                cr.fail("clientId", "duplicate client id \"" + c.client_id + "\"");
                return;
            }
            ws.clients.push_back(std::move(c));
        }
    }
    if (const Json* wfs = r.array("workflows", false)) {
        std::set<std::string> ids;
        for (std::size_t i = 0; i < wfs->size() && !r.failed(); ++i) {
            Reader wr((*wfs)[i], r.path("workflows") + "[" + std::to_string(i) + "]", error);
            WorkflowSeed w;
            if (auto s = wr.id("id")) w.id = *s;
            if (auto s = wr.str("name", true, true)) w.name = *s;
            if (auto s = wr.str("description", false)) w.description = *s;
            if (const Json* steps = wr.array("steps", true)) {
                for (std::size_t k = 0; k < steps->size() && !wr.failed(); ++k) {
                    Reader sr((*steps)[k], wr.path("steps") + "[" + std::to_string(k) + "]", error);
                    auto agent = sr.str("agentId", true, true);
                    auto action = sr.str("action", true);
                    auto order = sr.integer("stepOrder", 0, 1000000);
                    if (!sr.failed() && !order) sr.fail("stepOrder", "is required");
                    if (agent && *agent != "human_approval") {
                        const AppConfig* a = ws.find_app(*agent);
                        if (!a || a->type != protocol::AppType::agent) {
                            sr.fail("agentId", "must name an agent app of this workspace or \"human_approval\"");
                        }
                    }
                    sr.reject_unknown();
                    if (sr.failed()) return;
                    w.steps.push_back(Json{{"agentId", *agent}, {"action", *action}, {"stepOrder", *order}});
                }
            }
            wr.reject_unknown();
            if (wr.failed()) return;
            if (!ids.insert(w.id).second) {
                wr.fail("id", "duplicate workflow id \"" + w.id + "\"");
                return;
            }
            ws.workflows.push_back(std::move(w));
        }
    }
    // A workflow app runs a workflow of its own workspace, declared here (so a typo fails now).
    for (std::size_t i = 0; i < ws.apps.size() && !r.failed(); ++i) {
        for (const AppVersion& v : ws.apps[i].versions) {
            if (ws.apps[i].type != protocol::AppType::workflow) break;
            bool found = false;
            for (const WorkflowSeed& w : ws.workflows) found = found || w.id == v.workflow_id;
            if (!found) {
                r.fail_at(r.path("apps") + "[" + std::to_string(i) + "].workflowId",
                          "names no workflow of this workspace: \"" + v.workflow_id + "\" is not in its workflows");
                return;
            }
        }
    }
    if (const Json* pi = r.get("proxyIdentity")) {
        Reader pr(*pi, r.path("proxyIdentity"), error);
        ws.proxy_identity_ttl_seconds = 300;
        if (auto n = pr.integer("ttlSeconds", 1, 86400)) ws.proxy_identity_ttl_seconds = static_cast<int>(*n);
        pr.reject_unknown();
    }
    if (const Json* pu = r.get("pusher")) {
        Reader pr(*pu, r.path("pusher"), error);
        if (auto s = pr.str("key", false, true)) ws.pusher_key = *s;
        if (auto s = pr.str("secret", false, true)) ws.pusher_secret = *s;
        pr.reject_unknown();
    }
    r.reject_unknown();
}

void read_llm(const Json& j, LlmUpstream& llm, std::string* error) {
    Reader r(j, "llm", error);
    if (auto s = r.str("baseUrl", false)) llm.base_url = *s;
    if (auto s = r.str("apiKey", false)) llm.api_key = *s;
    if (auto s = r.str("model", false, true)) llm.model = *s;
    if (auto n = r.integer("connectTimeoutMs", 1, 600000)) llm.connect_timeout_ms = static_cast<int>(*n);
    if (auto n = r.integer("idleTimeoutMs", 1, 3600000)) llm.idle_timeout_ms = static_cast<int>(*n);
    if (auto n = r.integer("maxEventBytes", 1, std::int64_t{1} << 30)) llm.max_event_bytes = static_cast<std::size_t>(*n);
    r.reject_unknown();
}

// Top-level trustedUserHeader / trustedProxies, and that workspaces opting in have a header.
void read_proxy_identity(Reader& r, ServerConfig& cfg) {
    if (auto s = r.str("trustedUserHeader", false, true)) {
        std::string lower;
        for (char c : *s) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_';
            if (!ok) {
                r.fail("trustedUserHeader", "must be an HTTP header name (letters, digits, '-')");
                return;
            }
            lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        // Headers that mean something else to this server or to every proxy in between: taking
        // the user from one of them would trust whatever the browser put there.
        static const char* const kReserved[] = {"host", "authorization", "cookie", "origin", "referer",
                                                "content-type", "content-length", "transfer-encoding",
                                                "connection", "forwarded", "x-forwarded-for"};
        for (const char* h : kReserved) {
            if (lower == h) {
                r.fail("trustedUserHeader", "must not be '" + *s + "': that header is not for identity");
                return;
            }
        }
        if (lower.rfind("x-confab-", 0) == 0) {
            r.fail("trustedUserHeader", "must not be an X-Confab-* header: browsers send those");
            return;
        }
        cfg.trusted_user_header = *s;
    }
    if (auto b = r.boolean("trustForwardedFor")) cfg.trust_forwarded_for = *b;
    if (auto list = r.strings("trustedProxies", false)) {
        if (list->empty()) {
            r.fail("trustedProxies", "must list at least one address (leave it out for loopback only)");
            return;
        }
        cfg.trusted_proxies.clear();
        for (std::size_t i = 0; i < list->size(); ++i) {
            std::string why;
            auto net = parse_ip_network((*list)[i], &why);
            if (!net) {
                r.fail_at("trustedProxies[" + std::to_string(i) + "]", why);
                return;
            }
            cfg.trusted_proxies.push_back(std::move(*net));
        }
        if (cfg.trusted_user_header.empty() && !cfg.trust_forwarded_for) {
            r.fail("trustedProxies", "has no effect without trustedUserHeader or trustForwardedFor");
            return;
        }
    }
    if (r.failed() || !cfg.trusted_user_header.empty()) return;
    for (std::size_t i = 0; i < cfg.workspaces.size(); ++i) {
        if (cfg.workspaces[i].proxy_identity_ttl_seconds > 0) {
            r.fail_at("workspaces[" + std::to_string(i) + "].proxyIdentity",
                      "needs trustedUserHeader at the top level (the header your proxy sets)");
            return;
        }
    }
}

Error config_error(std::string_view source, const std::string& message) {
    return make_error("invalid_config", std::string(source) + ": " + message);
}

Status check_llm_url(const LlmUpstream& llm, std::string_view source, std::string_view where) {
    if (llm.base_url.empty()) return Ok{};
    auto u = parse_http_url(llm.base_url);
    if (!u) return config_error(source, std::string(where) + ": " + u.error().message);
    return Ok{};
}

}  // namespace

Result<ServerConfig> parse_config(std::string_view json_text, std::string_view source_name) {
    protocol::ParseLimits limits;
    limits.max_bytes = 64u << 20;
    auto parsed = protocol::parse_json(json_text, limits);
    if (!parsed) return config_error(source_name, parsed.error().message);

    ServerConfig cfg;
    std::string error;
    Reader r(*parsed, "", &error);
    if (r.failed()) return config_error(source_name, "the config must be a JSON object");
    if (const Json* ws = r.array("workspaces", true)) {
        if (ws->empty()) r.fail("workspaces", "needs at least one workspace");
        std::set<std::string> ids;
        for (std::size_t i = 0; i < ws->size() && error.empty(); ++i) {
            const std::string p = "workspaces[" + std::to_string(i) + "]";
            WorkspaceConfig w;
            read_workspace((*ws)[i], p, w, &error);
            if (!error.empty()) break;
            if (!ids.insert(w.id).second) {
                r.fail_at(p + ".id", "duplicate workspace id \"" + w.id + "\"");
                break;
            }
            cfg.workspaces.push_back(std::move(w));
        }
    }
    if (const Json* llm = r.get("llm")) read_llm(*llm, cfg.llm, &error);
    read_proxy_identity(r, cfg);
    r.reject_unknown();
    if (!error.empty()) return config_error(source_name, error);
    if (auto st = check_llm_url(cfg.llm, source_name, "llm.baseUrl"); !st) return st.error();
    return cfg;
}

Result<ServerConfig> load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error("invalid_config", path + ": cannot open the config file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error("invalid_config", path + ": cannot read the config file");
    auto cfg = parse_config(ss.str(), path);
    if (!cfg) return cfg;
    // Environment overrides, so a provider key need not live in the config file.
    if (const char* v = std::getenv("CONFAB_LLM_BASE_URL"); v != nullptr && *v != '\0') {
        cfg->llm.base_url = v;
        if (auto st = check_llm_url(cfg->llm, "CONFAB_LLM_BASE_URL", "value"); !st) return st.error();
    }
    if (const char* v = std::getenv("CONFAB_LLM_API_KEY"); v != nullptr && *v != '\0') cfg->llm.api_key = v;
    if (const char* v = std::getenv("CONFAB_LLM_MODEL"); v != nullptr && *v != '\0') cfg->llm.model = v;
    return cfg;
}

}  // namespace confab::server
