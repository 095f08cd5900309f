// Tests of the server config: the demo config loads, and each bad config names its field path.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

#include <unistd.h>

#include "config.hpp"

namespace {

using confab::protocol::AppType;
using confab::protocol::InputType;
using confab::protocol::Json;
using confab::server::load_config_file;
using confab::server::parse_config;
using confab::server::ServerConfig;

Json base_config() {
    return Json::parse(R"({
      "workspaces": [{
        "id": "w1",
        "secrets": ["s1", "s0"],
        "apiKeys": ["k1"],
        "allowedOrigins": ["http://127.0.0.1:8080"],
        "rateLimit": {"perSecond": 5, "burst": 10},
        "apps": [
          {"id": "t", "type": "template", "template": "Hi {{ name }}",
           "inputs": [{"name": "name", "type": "string"}]},
          {"id": "v", "type": "template", "public": true, "versions": [
             {"version": "a", "template": "one"},
             {"version": "b", "template": "two {{x}}", "inputs": [{"name": "x", "required": false}],
              "chunkChars": 2, "delayMs": 0}]},
          {"id": "ag", "type": "agent", "model": "echo"},
          {"id": "l", "type": "llm", "systemPrompt": "be brief", "prompt": "About {{topic}}",
           "inputs": [{"name": "topic"}], "model": "my-model"},
          {"id": "h", "type": "http", "url": "http://127.0.0.1:9/hook"}
        ]
      }],
      "llm": {"baseUrl": "http://127.0.0.1:9000", "apiKey": "sk", "model": "m",
              "connectTimeoutMs": 100, "idleTimeoutMs": 200},
      "trustedUserHeader": "X-Forwarded-User"
    })");
}

TEST(ConfigTest, ParsesAValidConfigWithDefaultsAndVersions) {
    auto cfg = parse_config(base_config().dump(), "cfg.json");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    ASSERT_EQ(cfg->workspaces.size(), 1u);
    const auto* ws = cfg->find_workspace("w1");
    ASSERT_NE(ws, nullptr);
    EXPECT_EQ(ws->name, "w1");  // defaults to the id
    EXPECT_EQ(ws->secrets, (std::vector<std::string>{"s1", "s0"}));
    EXPECT_EQ(ws->api_keys, (std::vector<std::string>{"k1"}));
    EXPECT_EQ(ws->rate_limit.per_second, 5);
    EXPECT_EQ(ws->rate_limit.burst, 10);
    EXPECT_EQ(cfg->find_workspace("nope"), nullptr);

    const auto* t = ws->find_app("t");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->type, AppType::template_);
    EXPECT_FALSE(t->is_public);
    ASSERT_EQ(t->versions.size(), 1u);
    EXPECT_EQ(t->versions[0].version, "1");  // inline fields make version "1"
    EXPECT_EQ(t->versions[0].template_text, "Hi {{ name }}");
    EXPECT_EQ(t->versions[0].chunk_chars, 4);
    EXPECT_EQ(t->versions[0].delay_ms, 20);
    ASSERT_EQ(t->versions[0].inputs.size(), 1u);
    EXPECT_EQ(t->versions[0].inputs[0].type, InputType::string);
    EXPECT_TRUE(t->versions[0].inputs[0].required);

    const auto* v = ws->find_app("v");
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(v->is_public);
    EXPECT_EQ(v->find_version("")->version, "b");  // latest
    EXPECT_EQ(v->find_version("a")->template_text, "one");
    EXPECT_EQ(v->find_version("zz"), nullptr);
    EXPECT_EQ(v->find_version("b")->chunk_chars, 2);
    EXPECT_EQ(v->find_version("b")->delay_ms, 0);
    const auto info = v->info();
    EXPECT_EQ(info.id, "v");
    EXPECT_EQ(info.version, "b");
    EXPECT_EQ(info.versions, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(info.inputs.size(), 1u);
    EXPECT_TRUE(info.is_public);

    EXPECT_EQ(ws->find_app("ag")->versions[0].model, "echo");
    EXPECT_EQ(ws->find_app("l")->versions[0].system_prompt, "be brief");
    EXPECT_EQ(ws->find_app("h")->versions[0].url, "http://127.0.0.1:9/hook");
    EXPECT_EQ(cfg->llm.base_url, "http://127.0.0.1:9000");
    EXPECT_EQ(cfg->llm.connect_timeout_ms, 100);
    EXPECT_EQ(cfg->llm.idle_timeout_ms, 200);
    EXPECT_TRUE(cfg->llm.configured());
    EXPECT_EQ(cfg->trusted_user_header, "X-Forwarded-User");
}

TEST(ConfigTest, TheDemoConfigLoads) {
    auto cfg = load_config_file(CONFAB_DEMO_CONFIG);
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    ASSERT_GE(cfg->workspaces.size(), 2u);  // two tenants, so isolation can be tried
    for (const auto& ws : cfg->workspaces) {
        EXPECT_FALSE(ws.secrets.empty()) << ws.id;
        EXPECT_FALSE(ws.apps.empty()) << ws.id;
        for (const auto& app : ws.apps) {
            EXPECT_FALSE(app.versions.empty()) << app.id;
            EXPECT_EQ(app.info().version, app.versions.back().version);
        }
    }
    // The demo needs no model server: at least one echo agent and one template app.
    bool echo = false, tmpl = false;
    for (const auto& app : cfg->workspaces[0].apps) {
        echo = echo || (app.type == AppType::agent && app.versions.back().model == "echo");
        tmpl = tmpl || app.type == AppType::template_;
    }
    EXPECT_TRUE(echo);
    EXPECT_TRUE(tmpl);
}

struct BadCase {
    const char* what;
    std::function<void(Json&)> mutate;
    const char* path;    // the field path the error must name
    const char* reason;  // a word of the reason
};

Json& app(Json& j, int i) { return j["workspaces"][0]["apps"][i]; }

TEST(ConfigTest, EachBadConfigNamesTheFileTheFieldAndTheReason) {
    const std::vector<BadCase> cases = {
        {"no workspaces", [](Json& j) { j.erase("workspaces"); }, "workspaces", "required"},
        {"empty workspaces", [](Json& j) { j["workspaces"] = Json::array(); }, "workspaces", "at least one"},
        {"workspace not object", [](Json& j) { j["workspaces"][0] = 3; }, "workspaces[0]", "object"},
        {"bad workspace id", [](Json& j) { j["workspaces"][0]["id"] = "has space"; }, "workspaces[0].id", "A-Z"},
        {"empty workspace id", [](Json& j) { j["workspaces"][0]["id"] = ""; }, "workspaces[0].id", "A-Z"},
        {"long workspace id", [](Json& j) { j["workspaces"][0]["id"] = std::string(65, 'a'); }, "workspaces[0].id", "1-64"},
        {"duplicate workspace", [](Json& j) { j["workspaces"].push_back(j["workspaces"][0]); }, "workspaces[1].id", "duplicate"},
        {"no secrets", [](Json& j) { j["workspaces"][0].erase("secrets"); }, "workspaces[0].secrets", "required"},
        {"empty secrets", [](Json& j) { j["workspaces"][0]["secrets"] = Json::array(); }, "workspaces[0].secrets", "at least one"},
        {"empty secret", [](Json& j) { j["workspaces"][0]["secrets"][1] = ""; }, "workspaces[0].secrets[1]", "empty"},
        {"secret not string", [](Json& j) { j["workspaces"][0]["secrets"][0] = 5; }, "workspaces[0].secrets[0]", "string"},
        {"origins not array", [](Json& j) { j["workspaces"][0]["allowedOrigins"] = "*"; }, "workspaces[0].allowedOrigins", "array"},
        {"rate limit zero", [](Json& j) { j["workspaces"][0]["rateLimit"]["perSecond"] = 0; }, "workspaces[0].rateLimit.perSecond", "greater"},
        {"rate limit typo", [](Json& j) { j["workspaces"][0]["rateLimit"]["persecond"] = 1; }, "workspaces[0].rateLimit.persecond", "not a known field"},
        {"workspace typo", [](Json& j) { j["workspaces"][0]["allowedOrigin"] = Json::array(); }, "workspaces[0].allowedOrigin", "not a known field"},
        {"bad app id", [](Json& j) { app(j, 0)["id"] = "a/b"; }, "workspaces[0].apps[0].id", "A-Z"},
        {"missing app id", [](Json& j) { app(j, 0).erase("id"); }, "workspaces[0].apps[0].id", "required"},
        {"duplicate app", [](Json& j) { app(j, 1)["id"] = "t"; }, "workspaces[0].apps[1].id", "duplicate"},
        {"bad type", [](Json& j) { app(j, 0)["type"] = "magic"; }, "workspaces[0].apps[0].type", "template, llm, http, agent, workflow"},
        {"missing type", [](Json& j) { app(j, 0).erase("type"); }, "workspaces[0].apps[0].type", "required"},
        {"public not bool", [](Json& j) { app(j, 0)["public"] = "yes"; }, "workspaces[0].apps[0].public", "boolean"},
        {"template missing", [](Json& j) { app(j, 0).erase("template"); }, "workspaces[0].apps[0].template", "required"},
        {"template unknown placeholder", [](Json& j) { app(j, 0)["template"] = "{{who}}"; }, "workspaces[0].apps[0].template", "who"},
        {"template unclosed", [](Json& j) { app(j, 0)["template"] = "Hi {{name"; }, "workspaces[0].apps[0].template", "unclosed"},
        {"empty versions", [](Json& j) { app(j, 1)["versions"] = Json::array(); }, "workspaces[0].apps[1].versions", "non-empty"},
        {"duplicate version", [](Json& j) { app(j, 1)["versions"][1]["version"] = "a"; }, "workspaces[0].apps[1].versions[1].version", "duplicate"},
        {"version label missing", [](Json& j) { app(j, 1)["versions"][0].erase("version"); }, "workspaces[0].apps[1].versions[0].version", "required"},
        {"version label empty", [](Json& j) { app(j, 1)["versions"][0]["version"] = ""; }, "workspaces[0].apps[1].versions[0].version", "empty"},
        {"version field outside versions", [](Json& j) { app(j, 1)["template"] = "x"; }, "workspaces[0].apps[1].template", "inside versions"},
        {"versioned template missing", [](Json& j) { app(j, 1)["versions"][1].erase("template"); }, "workspaces[0].apps[1].versions[1].template", "required"},
        {"chunkChars zero", [](Json& j) { app(j, 1)["versions"][1]["chunkChars"] = 0; }, "workspaces[0].apps[1].versions[1].chunkChars", "between"},
        {"delayMs negative", [](Json& j) { app(j, 0)["delayMs"] = -1; }, "workspaces[0].apps[0].delayMs", "between"},
        {"delayMs fraction", [](Json& j) { app(j, 0)["delayMs"] = 1.5; }, "workspaces[0].apps[0].delayMs", "integer"},
        {"bad input type", [](Json& j) { app(j, 0)["inputs"][0]["type"] = "text"; }, "workspaces[0].apps[0].inputs[0].type", "one of"},
        {"input without name", [](Json& j) { app(j, 0)["inputs"][0].erase("name"); }, "workspaces[0].apps[0].inputs[0].name", "required"},
        {"duplicate input", [](Json& j) { app(j, 0)["inputs"].push_back(app(j, 0)["inputs"][0]); }, "workspaces[0].apps[0].inputs[1].name", "duplicate"},
        {"agent without model", [](Json& j) { app(j, 2).erase("model"); }, "workspaces[0].apps[2].model", "echo"},
        {"agent bad model", [](Json& j) { app(j, 2)["model"] = "gpt"; }, "workspaces[0].apps[2].model", "echo"},
        {"llm prompt placeholder", [](Json& j) { app(j, 3)["prompt"] = "{{nope}}"; }, "workspaces[0].apps[3].prompt", "nope"},
        {"llm system placeholder", [](Json& j) { app(j, 3)["systemPrompt"] = "{{nope}}"; }, "workspaces[0].apps[3].systemPrompt", "nope"},
        {"http without url", [](Json& j) { app(j, 4).erase("url"); }, "workspaces[0].apps[4].url", "required"},
        {"http https url", [](Json& j) { app(j, 4)["url"] = "https://example.com/x"; }, "workspaces[0].apps[4].url", "https"},
        {"http bad port", [](Json& j) { app(j, 4)["url"] = "http://127.0.0.1:99999/"; }, "workspaces[0].apps[4].url", "port"},
        {"app typo", [](Json& j) { app(j, 0)["tempalte"] = "x"; }, "workspaces[0].apps[0].tempalte", "not a known field"},
        {"llm not object", [](Json& j) { j["llm"] = "x"; }, "llm", "object"},
        {"llm bad url", [](Json& j) { j["llm"]["baseUrl"] = "ftp://x"; }, "llm.baseUrl", "http://"},
        {"llm timeout zero", [](Json& j) { j["llm"]["idleTimeoutMs"] = 0; }, "llm.idleTimeoutMs", "between"},
        {"bad trusted header", [](Json& j) { j["trustedUserHeader"] = "X User"; }, "trustedUserHeader", "header"},
        {"top-level typo", [](Json& j) { j["workspace"] = Json::array(); }, "workspace", "not a known field"},
    };
    for (const auto& c : cases) {
        Json j = base_config();
        c.mutate(j);
        auto cfg = parse_config(j.dump(), "cfg.json");
        ASSERT_FALSE(cfg.ok()) << c.what << ": accepted";
        const std::string& msg = cfg.error().message;
        EXPECT_EQ(cfg.error().code, "invalid_config") << c.what;
        EXPECT_EQ(msg.rfind("cfg.json: ", 0), 0u) << c.what << ": " << msg;
        // "<file>: <path>: <reason>" (the core's input-spec errors read "<path> <reason>").
        const std::string needle = std::string(": ") + c.path;
        const std::size_t at = msg.find(needle);
        const std::size_t after = at == std::string::npos ? at : at + needle.size();
        const bool named = after != std::string::npos && after < msg.size() &&
                           (msg[after] == ':' || msg[after] == ' ');
        EXPECT_TRUE(named) << c.what << ": no \"" << c.path << "\" in: " << msg;
        EXPECT_NE(msg.find(c.reason), std::string::npos) << c.what << ": no \"" << c.reason << "\" in: " << msg;
    }
}

TEST(ConfigTest, CommentKeysAreAllowed) {
    Json j = base_config();
    j["$comment"] = "top";
    j["workspaces"][0]["_note"] = "x";
    EXPECT_TRUE(parse_config(j.dump(), "cfg.json").ok());
}

TEST(ConfigTest, InvalidJsonNamesTheFileAndTheOffset) {
    auto cfg = parse_config("{\"workspaces\": [", "broken.json");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.error().message.rfind("broken.json: ", 0), 0u) << cfg.error().message;
    EXPECT_NE(cfg.error().message.find("byte"), std::string::npos) << cfg.error().message;
    auto arr = parse_config("[]", "arr.json");
    ASSERT_FALSE(arr.ok());
    EXPECT_NE(arr.error().message.find("object"), std::string::npos);
}

class TempFile {
public:
    explicit TempFile(const std::string& text) {
        char tmpl[] = "/tmp/confab-config-test-XXXXXX";
        const int fd = mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        close(fd);
        path_ = tmpl;
        std::ofstream(path_) << text;
    }
    ~TempFile() { std::filesystem::remove(path_); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

TEST(ConfigTest, LoadConfigFileReportsAMissingFile) {
    auto cfg = load_config_file("/tmp/confab-no-such-dir/none.json");
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.error().message.find("/tmp/confab-no-such-dir/none.json"), std::string::npos);
}

TEST(ConfigTest, LoadConfigFileNamesThePathInErrors) {
    Json j = base_config();
    j["workspaces"][0]["id"] = "bad id";
    TempFile f(j.dump());
    auto cfg = load_config_file(f.path());
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.error().message.rfind(f.path() + ": workspaces[0].id", 0), 0u) << cfg.error().message;
}

TEST(ConfigTest, EnvironmentOverridesTheLlmSection) {
    Json j = base_config();
    j.erase("llm");
    TempFile f(j.dump());
    {
        auto cfg = load_config_file(f.path());
        ASSERT_TRUE(cfg.ok());
        EXPECT_FALSE(cfg->llm.configured());
        EXPECT_EQ(cfg->llm.model, "gpt-4o-mini");
    }
    setenv("CONFAB_LLM_BASE_URL", "http://127.0.0.1:7777", 1);
    setenv("CONFAB_LLM_API_KEY", "env-key", 1);
    setenv("CONFAB_LLM_MODEL", "env-model", 1);
    auto cfg = load_config_file(f.path());
    setenv("CONFAB_LLM_BASE_URL", "https://nope", 1);
    auto bad = load_config_file(f.path());
    unsetenv("CONFAB_LLM_BASE_URL");
    unsetenv("CONFAB_LLM_API_KEY");
    unsetenv("CONFAB_LLM_MODEL");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    EXPECT_EQ(cfg->llm.base_url, "http://127.0.0.1:7777");
    EXPECT_EQ(cfg->llm.api_key, "env-key");
    EXPECT_EQ(cfg->llm.model, "env-model");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("CONFAB_LLM_BASE_URL"), std::string::npos) << bad.error().message;
}

TEST(ConfigTest, WidgetFieldsOfAnAppAreReadAndChecked) {
    Json j = base_config();
    app(j, 2)["starters"] = Json::array({"What can you do?", "Tell me a joke"});
    app(j, 2)["imageHosts"] = Json::array({"img.example.com", "*.cdn.example.org"});
    app(j, 2)["avatarUrl"] = "https://example.com/bot.png";
    auto cfg = parse_config(j.dump(), "cfg.json");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    const auto info = cfg->workspaces[0].apps[2].info();
    EXPECT_EQ(info.starters, (std::vector<std::string>{"What can you do?", "Tell me a joke"}));
    EXPECT_EQ(info.image_hosts, (std::vector<std::string>{"img.example.com", "*.cdn.example.org"}));
    EXPECT_EQ(info.avatar_url, "https://example.com/bot.png");
    EXPECT_TRUE(cfg->workspaces[0].apps[0].info().starters.empty());  // default: none

    struct Bad {
        const char* key;
        Json value;
        const char* path;
        const char* reason;
    };
    const std::vector<Bad> cases = {
        {"starters", Json::array({"a", "b", "c", "d", "e", "f", "g"}), "starters", "at most 6"},
        {"starters", "hi", "starters", "array"},
        {"starters", Json::array({"ok", ""}), "starters[1]", "non-empty"},
        {"starters", Json::array({std::string(501, 'x')}), "starters[0]", "500 bytes"},
        {"imageHosts", "img.example.com", "imageHosts", "array"},
        {"imageHosts", Json::array({"https://img.example.com"}), "imageHosts[0]", "host name"},
        {"imageHosts", Json::array({"Img.Example.com"}), "imageHosts[0]", "lowercase"},
        {"imageHosts", Json::array({"*"}), "imageHosts[0]", "host name"},
        {"imageHosts", Json::array({"a..b"}), "imageHosts[0]", "host name"},
        {"avatarUrl", "javascript:alert(1)", "avatarUrl", "http(s) URL"},
        {"avatarUrl", "", "avatarUrl", "empty"},
    };
    for (const auto& c : cases) {
        Json bad = base_config();
        app(bad, 2)[c.key] = c.value;
        auto r = parse_config(bad.dump(), "cfg.json");
        ASSERT_FALSE(r.ok()) << c.key << " " << c.value.dump() << ": accepted";
        const std::string& msg = r.error().message;
        EXPECT_NE(msg.find(std::string("workspaces[0].apps[2].") + c.path + ":"), std::string::npos) << msg;
        EXPECT_NE(msg.find(c.reason), std::string::npos) << msg;
    }
}

}  // namespace
