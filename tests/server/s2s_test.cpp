// Tests of the server-to-server pieces below HTTP: config clients/workflows, access tokens, and the
// store's workflow and run documents (including the restart rule for runs in flight).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <unistd.h>

#include "access_token.hpp"
#include "config.hpp"
#include "store_sqlite.hpp"

namespace {

using confab::protocol::Json;
using namespace confab::server;

Json s2s_config() {
    return Json::parse(R"({
      "workspaces": [{
        "id": "w1", "secrets": ["s1", "s0"],
        "apps": [{"id": "ag", "type": "agent", "model": "echo"}, {"id": "t", "type": "template", "template": "x"}],
        "clients": [{"clientId": "c1", "clientSecret": "cs1"},
                    {"clientId": "old", "clientSecret": "cs2", "revoked": true, "tokenTtlSeconds": 60}],
        "workflows": [{"id": "wf1", "name": "Flow", "steps": [
          {"agentId": "ag", "action": "go", "stepOrder": 1},
          {"agentId": "human_approval", "action": "ok?", "stepOrder": 2}]}]
      }, {"id": "w2", "secrets": ["t1"]}]
    })");
}

TEST(S2sConfigTest, ParsesClientsAndWorkflows) {
    auto cfg = parse_config(s2s_config().dump(), "c.json");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    const auto& ws = cfg->workspaces[0];
    ASSERT_EQ(ws.clients.size(), 2u);
    EXPECT_EQ(ws.clients[0].token_ttl_seconds, 3600);
    EXPECT_FALSE(ws.clients[0].revoked);
    EXPECT_TRUE(ws.find_client("old")->revoked);
    EXPECT_EQ(ws.find_client("old")->token_ttl_seconds, 60);
    ASSERT_EQ(ws.workflows.size(), 1u);
    EXPECT_EQ(ws.workflows[0].steps.size(), 2u);
    EXPECT_EQ(ws.workflows[0].steps[1]["agentId"], "human_approval");
}

TEST(S2sConfigTest, BadClientsAndWorkflowsNameTheField) {
    struct Case {
        const char* pointer;
        Json value;
        const char* expect;
    };
    const Case cases[] = {
        {"/workspaces/0/clients/0/clientId", "has.dot", "clients[0].clientId"},
        {"/workspaces/0/clients/0/clientSecret", "", "clients[0].clientSecret"},
        {"/workspaces/0/clients/0/colour", "red", "clients[0].colour: is not a known field"},
        {"/workspaces/0/clients/1/clientId", "c1", "duplicate client id"},
        {"/workspaces/0/workflows/0/steps/0/agentId", "t", "steps[0].agentId"},
        {"/workspaces/0/workflows/0/steps/1/stepOrder", "x", "steps[1].stepOrder"},
        {"/workspaces/0/workflows/0/name", 5, "workflows[0].name"},
    };
    for (const auto& c : cases) {
        Json j = s2s_config();
        j[Json::json_pointer(c.pointer)] = c.value;
        auto cfg = parse_config(j.dump(), "c.json");
        ASSERT_FALSE(cfg.ok()) << c.pointer;
        EXPECT_NE(cfg.error().message.find(c.expect), std::string::npos) << cfg.error().message;
    }
}

TEST(S2sConfigTest, AWorkflowAppNamesAWorkflowOfItsWorkspace) {
    Json j = s2s_config();
    j["workspaces"][0]["apps"].push_back(Json{{"id", "flow"}, {"type", "workflow"}, {"workflowId", "wf1"}});
    auto cfg = parse_config(j.dump(), "c.json");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    EXPECT_EQ(cfg->workspaces[0].find_app("flow")->versions.back().workflow_id, "wf1");

    j["workspaces"][0]["apps"].back()["workflowId"] = "nope";
    auto unknown = parse_config(j.dump(), "c.json");
    ASSERT_FALSE(unknown.ok());
    EXPECT_NE(unknown.error().message.find("apps[2].workflowId: names no workflow of this workspace: \"nope\""),
              std::string::npos) << unknown.error().message;

    j["workspaces"][0]["apps"].back().erase("workflowId");
    auto missing = parse_config(j.dump(), "c.json");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("workflowId: is required for workflow apps"), std::string::npos)
        << missing.error().message;
}

TEST(AccessTokenTest, VerifiesSignatureExpiryAndRevocation) {
    auto cfg = parse_config(s2s_config().dump(), "c.json");
    ASSERT_TRUE(cfg.ok());
    const auto& ws = cfg->workspaces[0];
    const std::string t = sign_access_token(ws, "c1", 5000);
    auto ok = verify_access_token(*cfg, t, 4999);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok->workspace, &ws);
    EXPECT_EQ(ok->client->client_id, "c1");
    EXPECT_EQ(verify_access_token(*cfg, t, 5000).error().code, "token_expired");
    EXPECT_EQ(verify_access_token(*cfg, sign_access_token(ws, "old", 5000), 1).error().code, "client_revoked");
    EXPECT_EQ(verify_access_token(*cfg, sign_access_token(ws, "gone", 5000), 1).error().code, "client_revoked");
    // Signed with the second secret (rotation) still verifies.
    WorkspaceConfig rotated = ws;
    rotated.secrets = {"s0"};
    EXPECT_TRUE(verify_access_token(*cfg, sign_access_token(rotated, "c1", 5000), 1).ok());
    // Another workspace's secret, a changed expiry, a changed workspace: invalid.
    WorkspaceConfig other = ws;
    other.secrets = {"t1"};
    EXPECT_EQ(verify_access_token(*cfg, sign_access_token(other, "c1", 5000), 1).error().code, "token_invalid");
    std::string later = t;
    later.replace(later.find(".5000."), 6, ".9000.");
    EXPECT_EQ(verify_access_token(*cfg, later, 1).error().code, "token_invalid");
    std::string moved = t;
    moved.replace(0, 7, "at1.w2.");
    EXPECT_EQ(verify_access_token(*cfg, moved, 1).error().code, "token_invalid");
    EXPECT_EQ(verify_access_token(*cfg, "at1.w1.c1.5000", 1).error().code, "token_malformed");
    EXPECT_EQ(verify_access_token(*cfg, "v1.5000.abc", 1).error().code, "token_malformed");
}

class DocStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir = (std::filesystem::temp_directory_path() / ("confab-s2s-" + std::to_string(::getpid()))).string();
        std::filesystem::remove_all(dir);
        auto s = confab::server::SqliteStore::open(dir);
        ASSERT_TRUE(s.ok()) << s.error().message;
        store = std::move(s.value());
    }
    void TearDown() override {
        store.reset();
        std::filesystem::remove_all(dir);
    }
    std::string dir;
    std::unique_ptr<Store> store;
};

TEST_F(DocStoreTest, WorkflowsAreScopedPagedAndDeleted) {
    for (int i = 0; i < 3; ++i) {
        // Appended, not `"wf_" + std::to_string(i)`: g++ 12 flags that with a false -Wrestrict.
        std::string id = "wf_", name = "n";
        id += std::to_string(i);
        name += std::to_string(i);
        DocRecord d{id, "w1", "", name, 10 + i, 10 + i, Json{{"steps", Json::array()}}};
        ASSERT_TRUE(store->put_workflow(d).ok());
    }
    ASSERT_TRUE(store->put_workflow(DocRecord{"wf_x", "w2", "", "other", 1, 1, Json::object()}).ok());
    EXPECT_FALSE(store->get_workflow("w2", "wf_0").has_value());
    auto page = store->list_workflows("w1", "created_at", true, 2, 2);
    EXPECT_EQ(page.total, 3);
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.items[0].id, "wf_0");
    // A seed never overwrites a stored definition.
    ASSERT_TRUE(store->put_workflow(DocRecord{"wf_0", "w1", "", "seeded", 1, 1, Json::object()}, true).ok());
    EXPECT_EQ(store->get_workflow("w1", "wf_0")->label, "n0");
    EXPECT_FALSE(*store->delete_workflow("w2", "wf_0"));
    EXPECT_TRUE(*store->delete_workflow("w1", "wf_0"));
    EXPECT_FALSE(store->get_workflow("w1", "wf_0").has_value());
}

TEST_F(DocStoreTest, RunsInFlightFailAtStartupButPausedOnesStay) {
    ASSERT_TRUE(store->put_run(DocRecord{"wr_1", "w1", "wf", "RUNNING", 1, 1, Json::object()}).ok());
    ASSERT_TRUE(store->put_run(DocRecord{"wr_2", "w1", "wf", "QUEUED", 2, 2, Json::object()}).ok());
    ASSERT_TRUE(store->put_run(DocRecord{"wr_3", "w1", "wf", "PAUSED", 3, 3, Json::object()}).ok());
    ASSERT_TRUE(store->put_run(DocRecord{"wr_4", "w1", "wf", "COMPLETED", 4, 4, Json::object()}).ok());
    auto n = store->fail_interrupted_runs(100);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 2u);
    auto r1 = store->get_run("w1", "wr_1");
    EXPECT_EQ(r1->label, "FAILED");
    EXPECT_EQ(r1->updated_at, 100);
    EXPECT_NE(r1->doc["error"].get<std::string>().find("interrupted"), std::string::npos);
    EXPECT_EQ(store->get_run("w1", "wr_3")->label, "PAUSED");
    EXPECT_EQ(store->get_run("w1", "wr_4")->label, "COMPLETED");
    EXPECT_FALSE(store->get_run("w2", "wr_1").has_value());
    auto page = store->list_runs("w1", "wf", "", 0, 10);
    EXPECT_EQ(page.total, 4);
    EXPECT_EQ(page.items[0].id, "wr_4");  // newest first
    EXPECT_EQ(store->list_runs("w1", "", "FAILED", 0, 10).total, 2);
}

}  // namespace
