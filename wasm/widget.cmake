# The widget's wasm module (included from wasm/CMakeLists.txt): confab_widget_core.js + .wasm, which
# web/scripts/build.mjs embeds into the widget's lazily loaded panel chunk (dist/confab-widget-panel.js).
#
# The SDK's exports (sdk_bindings.cpp; not user_hash_bindings.cpp: the widget never signs a user id,
# its page's backend does, and SHA-256 + HMAC cost 3 KB gzip) plus the streaming Markdown renderer (widget_bindings.cpp)
# in ONE module, so the widget pays for one wasm runtime (glue, allocator, libc++ strings) instead
# of two. Measured (gzip -9): SDK module 11.7 KB wasm + a renderer-only module 25.0 KB wasm and
# 2.5 KB more minified glue = 39.2 KB, against 33.2 KB wasm for this one module (one glue).
# Same flags as confab_sdk_wasm (see sdk.cmake for why each one) but -sMALLOC=none: the widget brings
# its own small allocator, widget_malloc.c (emmalloc: 39.1 -> 37.8 KB gzip); web/scripts/build.mjs prints the
# widget's download sizes and fails over budget.
add_executable(confab_widget_wasm
  ${CMAKE_CURRENT_SOURCE_DIR}/sdk_bindings.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/widget_bindings.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/widget_malloc.c
  ${PROJECT_SOURCE_DIR}/core/src/sse.cpp
  ${PROJECT_SOURCE_DIR}/core/src/transcript.cpp
  ${PROJECT_SOURCE_DIR}/core/src/markdown.cpp
  ${PROJECT_SOURCE_DIR}/core/src/markdown_blocks.cpp
  ${PROJECT_SOURCE_DIR}/core/src/markdown_highlight.cpp
  ${PROJECT_SOURCE_DIR}/core/src/markdown_html.cpp
  ${PROJECT_SOURCE_DIR}/core/src/markdown_inlines.cpp)
target_include_directories(confab_widget_wasm PRIVATE ${PROJECT_SOURCE_DIR}/core/include ${PROJECT_SOURCE_DIR}/core/src)
# -inline-threshold=-50 (compile and LTO link): LLVM inlines only calls whose inlining shrinks the
# code (-Oz's default threshold is 5); -0.22 KB gzip (83.2 -> 82.8 KB raw), -20 gave -0.12, -200 = -50.
# -fmerge-all-constants: identical constant data is stored once (no code compares the addresses of
# two constants): -71 B gzip.
target_compile_options(confab_widget_wasm PRIVATE ${CONFAB_WARNINGS} -Oz -flto -fno-exceptions -mllvm -inline-threshold=-50
  -fmerge-all-constants)
target_link_options(confab_widget_wasm PRIVATE
  -Oz -flto -fno-exceptions -Wl,-mllvm,-inline-threshold=-50
  -sMODULARIZE=1 -sEXPORT_NAME=createConfabWidgetCore
  -sDYNAMIC_EXECUTION=0 -sFILESYSTEM=0 -sMALLOC=none -sALLOW_MEMORY_GROWTH=1
  -sENVIRONMENT=web,worker)
set_target_properties(confab_widget_wasm PROPERTIES
  OUTPUT_NAME confab_widget_core
  SUFFIX ".js"
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/wasm)
# Binaryen's optimizer once more, to a fixed point (emcc runs it once): -0.25 KB gzip. wasm-opt comes
# with Debian's emscripten (emcc runs it); the names the glue reads are exports, which it keeps.
# emsdk installs keep it next to clang (upstream/bin); without it the pass is skipped, not fatal.
get_filename_component(_confab_em_bin "${CMAKE_CXX_COMPILER}" DIRECTORY)
find_program(CONFAB_WASM_OPT wasm-opt HINTS "${_confab_em_bin}/../bin" "${_confab_em_bin}/../../bin")
if(CONFAB_WASM_OPT)
  set(_confab_wasm_opt_cmd COMMAND ${CONFAB_WASM_OPT} -Oz --converge --low-memory-unused --zero-filled-memory
    $<TARGET_FILE_DIR:confab_widget_wasm>/confab_widget_core.wasm -o $<TARGET_FILE_DIR:confab_widget_wasm>/confab_widget_core.wasm)
else()
  message(WARNING "wasm-opt not found: the widget's wasm skips its extra optimizer pass (~0.25 KB gzip larger)")
  set(_confab_wasm_opt_cmd)
endif()
add_custom_command(TARGET confab_widget_wasm POST_BUILD
  ${_confab_wasm_opt_cmd}
  COMMAND ${CMAKE_COMMAND}
    "-DFILES=$<TARGET_FILE_DIR:confab_widget_wasm>/confab_widget_core.js,$<TARGET_FILE_DIR:confab_widget_wasm>/confab_widget_core.wasm"
    -P ${CONFAB_SIZE_SCRIPT}
  VERBATIM)
