// Fuzzes identity parsing and verification: user hashes and v1 tokens (core identity.hpp) and the
// server's access tokens (access_token.hpp). Arbitrary presented values never crash and fail with
// a documented code; nothing verifies but the exact value the signer makes for that user (no
// forgery, whatever the bytes); signed values verify; the hash primitives agree with each other.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "access_token.hpp"
#include "confab/identity.hpp"
#include "config.hpp"
#include "fuzz_support.hpp"

namespace {

constexpr std::int64_t kNow = 1'800'000'000;  // seconds

std::string lower_hex(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

const confab::server::ServerConfig& server_config() {
    static const confab::server::ServerConfig config = [] {
        auto c = confab::server::parse_config(R"({"workspaces": [{"id": "ws-1", "secrets": ["new-secret", "old-secret"],
            "clients": [{"clientId": "svc", "clientSecret": "s1"}, {"clientId": "gone", "clientSecret": "s2", "revoked": true}]}]})",
                                              "fuzz");
        FUZZ_CHECK(c.ok(), "the harness's config parses");
        return std::move(c).value();
    }();
    return config;
}

void fuzz_user_identity(std::string_view user, std::string_view presented, std::int64_t now) {
    const confab::IdentityVerifier both("ws-1", {"new-secret", "old-secret"});
    const confab::IdentityVerifier older("ws-1", {"old-secret"});
    auto st = both.verify(user, presented, now);
    if (!st.ok()) {
        using F = confab::IdentityFailure;
        const auto& code = st.error().code;
        bool known = false;
        for (F f : {F::malformed, F::expired, F::bad_signature, F::no_secrets}) {
            known = known || code == confab::identity_failure_code(f);
        }
        FUZZ_CHECK(known, "a documented failure code");
        FUZZ_CHECK(!st.error().message.empty(), "a failure says why");
    } else if (confab::looks_like_token(presented)) {
        // v1.<exp>.<mac>: only the signer's own token for this user and exp verifies.
        auto dot = presented.find('.', 3);
        FUZZ_CHECK(dot != std::string_view::npos, "a verified token has an exp");
        const std::string_view exp_text = presented.substr(3, dot - 3);
        std::int64_t exp = 0;
        auto [end, ec] = std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
        FUZZ_CHECK(ec == std::errc() && end == exp_text.data() + exp_text.size(), "a verified token's exp is decimal");
        FUZZ_CHECK(exp > now, "a verified token is not expired");
        FUZZ_CHECK(lower_hex(presented) == lower_hex(confab::issue_token("new-secret", "ws-1", user, exp)) ||
                       lower_hex(presented) == lower_hex(confab::issue_token("old-secret", "ws-1", user, exp)),
                   "a verified token is exactly the one a secret signs");
    } else {
        FUZZ_CHECK(lower_hex(presented) == confab::user_hash("new-secret", user) ||
                       lower_hex(presented) == confab::user_hash("old-secret", user),
                   "a verified user hash is exactly HMAC(secret, user)");
    }
    // What the verifier signs, it accepts (hash, and a token until it expires). Signers refuse
    // user ids with control characters (issue 12), so those are left out here.
    if (!confab::check_user_id(user).ok()) {
        FUZZ_CHECK(!both.sign_user(user).ok() && !both.sign_token(user, now).ok(), "no signer signs a refused id");
        return;
    }
    FUZZ_CHECK(both.verify(user, both.sign_user(user).value(), now).ok(), "a signed user hash verifies");
    FUZZ_CHECK(both.verify(user, older.sign_user(user).value(), now).ok(), "a hash under the old secret verifies");
    const std::int64_t exp = now + 1 + (now & 0xffff);
    const std::string token = both.sign_token(user, exp).value();
    FUZZ_CHECK(both.verify(user, token, now).ok(), "a fresh token verifies");
    auto late = both.verify(user, token, exp + 1);
    FUZZ_CHECK(!late.ok() && late.error().code == confab::identity_failure_code(confab::IdentityFailure::expired),
               "an expired token is identity_expired");
}

void fuzz_access_token(std::string_view token, std::int64_t now_ms) {
    const auto& config = server_config();
    auto r = confab::server::verify_access_token(config, token, now_ms);
    if (!r.ok()) {
        const auto& code = r.error().code;
        FUZZ_CHECK(code == "token_malformed" || code == "token_invalid" || code == "token_expired" ||
                       code == "client_revoked",
                   "a documented access-token failure code");
        return;
    }
    FUZZ_CHECK(r->exp_ms > now_ms, "a verified access token is not expired");
    FUZZ_CHECK(r->client && !r->client->revoked, "a verified access token names a live client");
    const auto& ws = *r->workspace;
    FUZZ_CHECK(token == confab::server::sign_access_token(ws, r->client->client_id, r->exp_ms),
               "a verified access token is exactly the one the server signs");
}

void check_primitives(std::string_view key, std::string_view msg) {
    using confab::ShaBackend;
    const auto portable = confab::sha256(msg, ShaBackend::portable);
    FUZZ_CHECK(confab::sha256(msg, ShaBackend::sha_ni) == portable, "SHA-NI and portable SHA-256 agree");
    confab::Sha256 streamed(ShaBackend::automatic);
    for (std::size_t i = 0; i < msg.size(); i += 1 + (i % 67)) streamed.update(msg.substr(i, 1 + (i % 67)));
    FUZZ_CHECK(streamed.finish() == portable, "streamed SHA-256 == one-shot");
    const auto mac = confab::hmac_sha256(key, msg);
    FUZZ_CHECK(confab::HmacSha256Key(key).sign(msg) == mac, "pre-keyed HMAC == one-shot HMAC");
    FUZZ_CHECK(confab::user_hash(key, msg) == confab::to_hex(mac), "user_hash is hex(HMAC(secret, user))");
    FUZZ_CHECK(confab::constant_time_equal(msg, msg), "a string equals itself");
    FUZZ_CHECK(confab::constant_time_equal(key, msg) == (key == msg), "constant_time_equal is equality");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    confab::fuzz::Input in(data, size);
    const std::int64_t now = kNow + static_cast<std::int64_t>(in.byte()) * 1000 - 128000;
    const std::string_view rest = in.rest();
    // user \n presented: the two header values of an identified request.
    const auto nl = rest.find('\n');
    const std::string_view user = rest.substr(0, nl);
    const std::string_view presented = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    fuzz_user_identity(user, presented, now);
    fuzz_access_token(rest, now * 1000);
    fuzz_access_token(presented, now * 1000);
    check_primitives(user, presented);
    return 0;
}
