// Server configuration: workspaces, their secrets, origins, rate limits and apps (loaded from JSON).
//
// JSON format (server-data, config.cpp): camelCase keys — top level {workspaces: [...], llm: {baseUrl,
// apiKey, model, connectTimeoutMs, idleTimeoutMs}, trustedUserHeader, trustedProxies, trustForwardedFor}; a workspace {id, name?,
// secrets (>= 1), apiKeys?, allowedOrigins?, rateLimit?: {perSecond, burst}, apps?, clients?:
// [{clientId, clientSecret, revoked?, tokenTtlSeconds?}], workflows?: [{id, name, description?, steps}],
// proxyIdentity?: {ttlSeconds?}, pusher?: {key?, secret?}}; an app {id,
// name?, type, public?} plus either `versions: [{version, ...fields}]` or the version fields inline
// (= one version "1"): inputs [{name, type, required, description}], template, systemPrompt,
// prompt, model, url, chunkChars, delayMs. Unknown keys are errors (typos must not pass silently);
// keys starting with '$' or '_' are comments. Every {{placeholder}} must name a declared input.
// Errors have code "invalid_config".
#pragma once

#include "confab/sse.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "confab/protocol.hpp"
#include "confab/result.hpp"
#include "ip_network.hpp"

namespace confab::server {

// One version of an app. Type-specific fields are used by the matching runner only.
struct AppVersion {
    std::string version = "1";                       // label; versions are listed oldest first
    std::vector<protocol::InputSpec> inputs;         // declared inputs (validated per request)
    // template: text with {{name}} placeholders replaced by the inputs (missing -> error)
    std::string template_text;
    // llm / agent(model "llm"): the prompt; {{name}} placeholders as for template
    std::string system_prompt;
    std::string prompt;            // llm: user prompt template; empty -> inputs as JSON
    std::string model;             // agent: "echo" or "llm"; llm: model name override
    // http: inputs are POSTed as JSON to this URL; the response body is the output
    std::string url;
    // streaming granularity for template/echo output
    int chunk_chars = 4;
    int delay_ms = 20;             // between chunks (template, echo)
    // workflow: the id of a workflow declared in the same workspace's `workflows`; the stored
    // definition (as edited through the API since) is what runs
    std::string workflow_id;
};

struct AppConfig {
    std::string id;
    std::string name;
    protocol::AppType type = protocol::AppType::template_;
    bool is_public = false;                // anonymous calls allowed
    std::vector<AppVersion> versions;      // non-empty; the last is the latest
    // For the chat widget, served by GET /v1/apps/{appId}: up to 6 suggested first prompts, the
    // hosts whose images replies may show ("img.example.com" or "*.example.com"), the bot's avatar.
    std::vector<std::string> starters;
    std::vector<std::string> image_hosts;
    std::string avatar_url;

    const AppVersion* find_version(std::string_view label) const;  // empty label: latest
    protocol::AppInfo info() const;
};

struct RateLimit {
    double per_second = 20;  // token refill rate per (workspace, user)
    double burst = 40;       // bucket size
};

// A server-to-server client (config `clients`): trades its secret for short-lived access tokens
// at POST /v1/applications/token. Revoking it (revoked: true + restart) voids its tokens at once,
// because every token check looks the client up here.
struct ApiClient {
    std::string client_id;       // [A-Za-z0-9_-]{1,64}: no '.', the token's separator
    std::string client_secret;
    bool revoked = false;
    int token_ttl_seconds = 3600;  // the longest token this client gets (a request may ask less)
};

// A workflow definition seeded into the store at startup when its id is not stored yet
// (config `workflows`: {id, name, description?, steps: [{agentId, action, stepOrder}]}).
struct WorkflowSeed {
    std::string id, name, description;
    protocol::Json steps = protocol::Json::array();  // validated shape: [{agentId, action, stepOrder}]
};

struct WorkspaceConfig {
    std::string id;
    std::string name;
    std::vector<std::string> secrets;          // user-hash / token secrets; first signs
    std::vector<std::string> api_keys;         // server-to-server bearer keys
    std::vector<std::string> allowed_origins;  // exact origins, or "*"
    RateLimit rate_limit;
    std::vector<AppConfig> apps;
    std::vector<ApiClient> clients;
    std::vector<WorkflowSeed> workflows;
    // Config `proxyIdentity: {ttlSeconds?}`: > 0 lets GET /v1/identity/proxy vouch for this
    // workspace's users with tokens that live this long; 0 = not served (each tenant opts in).
    int proxy_identity_ttl_seconds = 0;
    // Config `pusher: {key?, secret?}`: the AirOps SDK edge's Pusher app key and channel-auth
    // secret. The key defaults to the one the unmodified SDK hard-codes; without a secret the
    // server makes a random one per process (set one when several instances share a channel).
    std::string pusher_key = "af9e46318302fccfc6db";
    std::string pusher_secret;

    const AppConfig* find_app(std::string_view id) const;
    const ApiClient* find_client(std::string_view client_id) const;
};

// The OpenAI-compatible upstream used by `llm` apps and `agent` apps with model "llm".
// Config section "llm"; env CONFAB_LLM_BASE_URL / CONFAB_LLM_API_KEY / CONFAB_LLM_MODEL override.
struct LlmUpstream {
    std::string base_url;   // e.g. http://127.0.0.1:9000 (".../v1/chat/completions" is appended)
    std::string api_key;
    std::string model = "gpt-4o-mini";
    int connect_timeout_ms = 5000;
    int idle_timeout_ms = 30000;  // no upstream bytes for this long -> failed execution
    // Config `llm.maxEventBytes`: the most one upstream SSE event may hold (the SDK's default too).
    std::size_t max_event_bytes = sse::default_max_event_bytes;
    bool configured() const { return !base_url.empty(); }
};

struct ServerConfig {
    std::vector<WorkspaceConfig> workspaces;
    LlmUpstream llm;
    // Trusted reverse-proxy identity mode (GET /v1/identity/proxy): the header the proxy sets to
    // the authenticated user (empty = the route does not exist), and the peers allowed to set it
    // (config `trustedProxies`, default loopback), so a client reaching the server directly
    // cannot mint a token by sending the header itself.
    std::string trusted_user_header;
    std::vector<IpNetwork> trusted_proxies = loopback_networks();
    // Config `trustForwardedFor` (default false): behind a load balancer, a request from one of
    // `trusted_proxies` is the client's named in its X-Forwarded-For (ip_network.hpp says which
    // hop), so per-address limits (anonymous callers, token requests) see clients, not the proxy.
    bool trust_forwarded_for = false;

    const WorkspaceConfig* find_workspace(std::string_view id) const;
};

// Errors name the file, the field path and the reason, e.g.
// "demo.json: workspaces[1].apps[0].type: must be one of template, llm, http, agent, workflow".
Result<ServerConfig> parse_config(std::string_view json_text, std::string_view source_name);
Result<ServerConfig> load_config_file(const std::string& path);

}  // namespace confab::server
