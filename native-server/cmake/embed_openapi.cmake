# Build step (cmake -P): writes OUT, a C++ source holding the bytes of the OpenAPI document IN and
# their ETag, so that GET /v1/openapi.json serves exactly the file in the repo. The document's
# info.version must be the project's VERSION (the server's version): a mismatch fails the build.
file(READ "${IN}" text)
string(JSON doc_version ERROR_VARIABLE json_error GET "${text}" info version)
if(json_error)
  message(FATAL_ERROR "${IN}: not a JSON document with info.version: ${json_error}")
endif()
if(NOT doc_version STREQUAL VERSION)
  message(FATAL_ERROR "${IN}: info.version is '${doc_version}' but the server's version is '${VERSION}'; update the document")
endif()
file(SHA256 "${IN}" sha)
string(SUBSTRING "${sha}" 0 32 etag)
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp"
"// Generated at build time by native-server/cmake/embed_openapi.cmake from docs/openapi.json.
#include \"openapi.hpp\"

namespace confab::server {

namespace {
constexpr unsigned char kDocument[] = {
${bytes}};
}  // namespace

std::string_view openapi_document() noexcept {
    return {reinterpret_cast<const char*>(kDocument), sizeof kDocument};
}

std::string_view openapi_etag() noexcept { return \"\\\"${etag}\\\"\"; }

}  // namespace confab::server
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
