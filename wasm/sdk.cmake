# The shipped SDK's wasm module (included from wasm/CMakeLists.txt): confab_sdk_core.js + .wasm,
# which web/scripts/build.mjs embeds into the npm and script-tag bundles.
#
# It links only what the browser SDK uses: the SSE parser, the transcript (exactly-once reply
# assembly) and user hashes. protocol.hpp stays out (nlohmann's parser alone costs ~20-30 KB gzip;
# the SDK decodes payloads with JSON.parse and hands the transcript plain strings). The core
# sources are compiled here again with -Oz -flto instead of linking confab_core (built -Os,
# no LTO): measured 18.9 KB vs 20.8 KB raw, 8.9 KB vs 9.5 KB gzip.
#
# Plain C exports (EMSCRIPTEN_KEEPALIVE) + the hand-written facade in web/src/core.js instead of
# embind, measured with the same core code (raw / gzip -9; glue after esbuild --minify):
#   embind:    glue 26.5 KB / 9.4 KB, wasm 26.6 KB / 12.1 KB  -> 21.5 KB gzip
#   C exports: glue  6.7 KB / 2.6 KB, wasm 18.9 KB /  8.9 KB  -> 11.5 KB gzip
# The transcript (core/src/transcript.cpp, no JSON) added wasm 18.8 -> 25.4 KB raw, 8.9 -> 11.8 KB
# gzip; the script-tag bundle went 53.2 -> 66.9 KB raw, 19.7 -> 24.1 KB gzip (budget 31 KB).
# ENVIRONMENT=web,worker and not node: the node branch of the glue runs `require('fs')` at start-up,
# which throws inside an ES module. Node needs no branch of its own: the SDK always hands the glue
# the wasm bytes (Module.wasmBinary), so nothing is fetched or read from disk.
# The stream's hot path, the SSE parser and its hand-back to JS, may inline: emcc's -Oz adds
# -fno-inline-functions, and then not even libc++'s string accessors are inlined (framing a 3 MB
# chat stream took ~2x as long; bench/browser --only=parse). -finline-functions after it measured
# as fast as -O2 for these two files and smaller than without it (the wasm: 11.4 KB vs 11.7 KB
# gzip; -O2: 12.3 KB). Source properties of this directory, so the widget's module, which compiles
# the same two files, gets the same.
set_source_files_properties(
  ${CMAKE_CURRENT_SOURCE_DIR}/sdk_bindings.cpp ${PROJECT_SOURCE_DIR}/core/src/sse.cpp
  PROPERTIES COMPILE_OPTIONS -finline-functions)
add_executable(confab_sdk_wasm
  ${CMAKE_CURRENT_SOURCE_DIR}/sdk_bindings.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/user_hash_bindings.cpp
  ${PROJECT_SOURCE_DIR}/core/src/sse.cpp
  ${PROJECT_SOURCE_DIR}/core/src/identity.cpp
  ${PROJECT_SOURCE_DIR}/core/src/transcript.cpp)
target_include_directories(confab_sdk_wasm PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
target_compile_options(confab_sdk_wasm PRIVATE ${CONFAB_WARNINGS} -Oz -flto -fno-exceptions)
target_link_options(confab_sdk_wasm PRIVATE
  -Oz -flto -fno-exceptions
  -sMODULARIZE=1 -sEXPORT_NAME=createConfabSdkCore
  -sDYNAMIC_EXECUTION=0 -sFILESYSTEM=0 -sMALLOC=emmalloc -sALLOW_MEMORY_GROWTH=1
  -sENVIRONMENT=web,worker)
set_target_properties(confab_sdk_wasm PROPERTIES
  OUTPUT_NAME confab_sdk_core
  SUFFIX ".js"
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/wasm)
