// Tests of the proxy-identity config keys: trustedUserHeader, trustedProxies, proxyIdentity.
#include <gtest/gtest.h>

#include <string>

#include "config.hpp"

namespace {

using confab::protocol::Json;
using confab::server::ip_in_networks;
using confab::server::parse_config;

Json base() {
    return Json::parse(R"({
      "workspaces": [{"id": "w1", "secrets": ["s1"], "proxyIdentity": {}},
                     {"id": "w2", "secrets": ["s2"], "proxyIdentity": {"ttlSeconds": 30}},
                     {"id": "w3", "secrets": ["s3"]}],
      "trustedUserHeader": "Remote-User"
    })");
}

TEST(ProxyIdentityConfigTest, DefaultsAreLoopbackAndFiveMinutesAndEachWorkspaceOptsIn) {
    auto cfg = parse_config(base().dump(), "cfg.json");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    EXPECT_EQ(cfg->trusted_user_header, "Remote-User");
    EXPECT_EQ(cfg->find_workspace("w1")->proxy_identity_ttl_seconds, 300);
    EXPECT_EQ(cfg->find_workspace("w2")->proxy_identity_ttl_seconds, 30);
    EXPECT_EQ(cfg->find_workspace("w3")->proxy_identity_ttl_seconds, 0);
    EXPECT_TRUE(ip_in_networks("127.0.0.1", cfg->trusted_proxies));
    EXPECT_TRUE(ip_in_networks("::1", cfg->trusted_proxies));
    EXPECT_FALSE(ip_in_networks("10.0.0.2", cfg->trusted_proxies));
}

TEST(ProxyIdentityConfigTest, TrustedProxiesReplaceTheDefault) {
    Json j = base();
    j["trustedProxies"] = {"10.0.0.0/8", "fd00::1"};
    auto cfg = parse_config(j.dump(), "cfg.json");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    ASSERT_EQ(cfg->trusted_proxies.size(), 2u);
    EXPECT_TRUE(ip_in_networks("10.1.2.3", cfg->trusted_proxies));
    EXPECT_TRUE(ip_in_networks("fd00::1", cfg->trusted_proxies));
    EXPECT_FALSE(ip_in_networks("127.0.0.1", cfg->trusted_proxies));  // loopback is no longer implied
}

TEST(ProxyIdentityConfigTest, MistakesNameTheirField) {
    struct Case {
        const char* name;
        void (*mutate)(Json&);
        const char* expect;
    };
    const Case cases[] = {
        {"empty header", [](Json& j) { j["trustedUserHeader"] = ""; }, "trustedUserHeader: must not be empty"},
        {"reserved header", [](Json& j) { j["trustedUserHeader"] = "cookie"; }, "trustedUserHeader: must not be 'cookie'"},
        {"confab header", [](Json& j) { j["trustedUserHeader"] = "X-CONFAB-USER-HASH"; }, "X-Confab-*"},
        {"opt-in without header", [](Json& j) { j.erase("trustedUserHeader"); },
         "workspaces[0].proxyIdentity: needs trustedUserHeader"},
        {"proxies without header", [](Json& j) { j.erase("trustedUserHeader"); j["trustedProxies"] = {"10.0.0.1"}; },
         "trustedProxies: has no effect without trustedUserHeader"},
        {"proxies not strings", [](Json& j) { j["trustedProxies"] = {1}; }, "trustedProxies[0]: must be a string"},
        {"proxy host bits", [](Json& j) { j["trustedProxies"] = {"127.0.0.1", "192.168.1.1/24"}; },
         "trustedProxies[1]: '192.168.1.1/24' has host bits set"},
        {"ttl too long", [](Json& j) { j["workspaces"][1]["proxyIdentity"]["ttlSeconds"] = 86401; },
         "workspaces[1].proxyIdentity.ttlSeconds: must be an integer between 1 and 86400"},
        {"proxyIdentity not an object", [](Json& j) { j["workspaces"][1]["proxyIdentity"] = true; },
         "workspaces[1].proxyIdentity: must be an object"},
    };
    for (const auto& c : cases) {
        Json j = base();
        c.mutate(j);
        auto cfg = parse_config(j.dump(), "cfg.json");
        ASSERT_FALSE(cfg.ok()) << c.name;
        EXPECT_EQ(cfg.error().code, "invalid_config") << c.name;
        EXPECT_NE(cfg.error().message.find(c.expect), std::string::npos) << c.name << ": " << cfg.error().message;
    }
}

}  // namespace
