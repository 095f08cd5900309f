// The widget's extra wasm surface: the streaming Markdown renderer (confab::markdown::StreamRenderer) as plain C exports.
//
// Linked together with sdk_bindings.cpp into confab_widget_core (wasm/widget.cmake), so the widget
// loads one wasm module for the SDK and the renderer. Thin on purpose: one call per streamed chunk
// appends it and returns both parts the UI needs (the new stable HTML to append once, and the tail
// to replace), with no logic of its own.
//
// Memory contract: JS owns each renderer handle and frees it with confab_md_delete (the facade's
// delete(), with a FinalizationRegistry backstop). The view returned by append/finish points into
// buffers owned by the handle and stays valid until the next call on it; JS copies out at once.
#include <cstdint>
#include <new>
#include <string>
#include <string_view>

#include <emscripten/emscripten.h>

#include "confab/markdown.hpp"

namespace {

struct WidgetRenderer {
    confab::markdown::StreamRenderer renderer;
    std::string input;              // JS writes each chunk here
    std::string fresh;              // stable HTML added by the last append/finish
    std::uint32_t view[4] = {0, 0, 0, 0};  // {fresh ptr, fresh len, tail ptr, tail len}
};

const std::uint32_t* fill_view(WidgetRenderer* r) {
    r->fresh = r->renderer.take_new_stable_html();
    const std::string& tail = r->renderer.tail_html();
    r->view[0] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(r->fresh.data()));
    r->view[1] = static_cast<std::uint32_t>(r->fresh.size());
    r->view[2] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(tail.data()));
    r->view[3] = static_cast<std::uint32_t>(tail.size());
    return r->view;
}

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE WidgetRenderer* confab_md_new() { return new (std::nothrow) WidgetRenderer(); }
EMSCRIPTEN_KEEPALIVE void confab_md_delete(WidgetRenderer* r) { delete r; }

// A buffer of at least `len` bytes for the next chunk (reused across chunks).
EMSCRIPTEN_KEEPALIVE char* confab_md_input(WidgetRenderer* r, std::uint32_t len) {
    if (r->input.size() < len) r->input.resize(len);
    return r->input.data();
}

// Appends the first `len` bytes of the input buffer; returns the view {new stable HTML, tail HTML}.
EMSCRIPTEN_KEEPALIVE const std::uint32_t* confab_md_append(WidgetRenderer* r, std::uint32_t len) {
    r->renderer.append(std::string_view(r->input.data(), len <= r->input.size() ? len : r->input.size()));
    return fill_view(r);
}

// End of the reply: the rest becomes stable (the tail is then empty). Returns the same view.
EMSCRIPTEN_KEEPALIVE const std::uint32_t* confab_md_finish(WidgetRenderer* r) {
    r->renderer.finish();
    std::string().swap(r->input);
    return fill_view(r);
}

// The renderer's work counters, one getter: 0 finished blocks, 1 block renders, 2 re-renders of
// finished blocks, 3 tail renders, 4 bytes parsed, 5 stable source bytes.
EMSCRIPTEN_KEEPALIVE double confab_md_num(WidgetRenderer* r, int which) {
    const auto& m = r->renderer;
    switch (which) {
        case 0: return static_cast<double>(m.finished_blocks());
        case 1: return static_cast<double>(m.block_renders());
        case 2: return static_cast<double>(m.finished_block_rerenders());
        case 3: return static_cast<double>(m.tail_renders());
        case 4: return static_cast<double>(m.bytes_parsed());
        case 5: return static_cast<double>(m.stable_source_size());
    }
    return -1;
}

}  // extern "C"
