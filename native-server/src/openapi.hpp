// The OpenAPI document of this server's routes (docs/openapi.json), embedded at build time.
#pragma once

#include <string_view>

namespace confab::server {

// The bytes of docs/openapi.json as built, served unchanged by GET /v1/openapi.json.
std::string_view openapi_document() noexcept;
// Its strong ETag (quoted), from the SHA-256 of those bytes.
std::string_view openapi_etag() noexcept;

}  // namespace confab::server
