// Streaming Markdown -> safe HTML for chat replies (CommonMark blocks and inlines plus GitHub
// Flavored Markdown: tables, strikethrough, task lists, extended autolinks, footnotes), with syntax
// highlighting of fenced code, rendering each finished block exactly once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace confab::markdown {

// A link reference definition (`[label]: url "title"`), keyed by its normalised label.
struct LinkReference {
    std::string url;
    std::string title;
};
using ReferenceMap = std::map<std::string, LinkReference, std::less<>>;

struct RenderOptions {
    // Fenced code whose info string names a known language (js/javascript/jsx/ts/typescript/tsx,
    // py/python, json, bash/sh/shell/zsh, html/xml/svg, css, c/h/cpp/c++/hpp/cc, go, rs/rust, sql)
    // gets its tokens wrapped in <span class="hl-kw|hl-str|hl-num|hl-com|hl-lit|hl-type|hl-tag|
    // hl-attr|hl-fn">; only escaped code text is inside the spans. Other code is plain escaped text.
    bool highlight = true;
};

// Safety is not optional and has no switches: every text and attribute value is escaped
// (& < > "), attributes are always double-quoted, raw HTML is shown as text, and link/image URLs
// whose scheme is javascript:, vbscript: or data: (data:image/png|gif|jpeg|webp allowed for images)
// lose their href/src. The scheme is checked after entity and backslash decoding, with ASCII
// whitespace and control characters removed and case ignored, as a browser would read it. Links
// carry rel="nofollow noopener noreferrer".
//
// Deliberate differences from CommonMark, so that a streamed reply renders identically whatever
// its chunking: a link reference definition applies to the top-level block that holds it and the
// blocks after it (a chat reply is read top-down and a finished block never changes); HTML blocks
// and inline raw HTML are escaped text; only a common subset of named entities is decoded (numeric
// references always are), others stay literal text.

// GFM extensions: task list items (`- [ ]`, `- [x]`) render as disabled checkboxes with
// aria-label="Task"; extended autolinks (www., http://, https://, ftp://, bare emails) stop before
// trailing punctuation, quotes and unbalanced ')' as GFM specifies; footnotes (`text[^1]` and
// `[^1]: note`) render as cmark-gfm does: numbered superscript links in order of first reference and
// a <section class="footnotes"> at the end with back links. A reference whose definition has not
// arrived yet holds its block (and those after it) in the tail until the definition arrives or the
// reply ends (then it stays literal text, as GFM renders an undefined reference); held blocks are
// not rendered again, only their footnote references are filled in.

// Renders a whole document at once. Identical to a StreamRenderer fed the same text in any
// chunking and then finished.
std::string render_markdown(std::string_view markdown);
std::string render_markdown(std::string_view markdown, const RenderOptions& options);

namespace detail {
struct Block;
// Footnote numbering across a reply (internal; declared here because StreamRenderer holds one):
// numbers in order of first reference, and the references made to each.
struct FootnoteNumbers {
    std::vector<std::string> order;  // labels by number - 1
    std::vector<int> references;     // references made, by number - 1
};
// A footnote definition: its normalised label and its content's HTML.
struct FootnoteDef {
    std::string label;
    std::string html;
};
// The highlighted HTML of code blocks' first complete lines, so a growing block is not
// highlighted again from its start on every append. One entry per code block of the open tail
// (a list of steps each with a code block has several): with a single entry each block missed
// and overwrote it. Entries are matched by content (language and a prefix of the code); the least
// recently used one is replaced.
struct HighlightCache {
    struct Entry {
        std::string language;
        std::string code;
        std::string html;
        std::uint64_t used = 0;
    };
    static constexpr std::size_t max_entries = 8;
    std::vector<Entry> entries;
    std::uint64_t clock = 0;
    std::uint64_t bytes_highlighted = 0;  // code bytes run through the highlighter (a work counter)
};
}  // namespace detail

// Feed a reply as it streams in; read the HTML to show after each append.
//
// The HTML is `stable_html() + tail_html()`. The stable part holds the top-level blocks that
// the text so far has closed (a later delta can no longer change them): it only ever grows, so a
// UI appends its new bytes to the DOM once and replaces only the tail. The tail is the open last
// block, rendered as if the reply ended now: an open ``` fence shows as an open code block,
// unclosed `**` or `[text](htt` show as literal text, and a partial last line that is only marker
// characters (`-`, `1.`, `##`, a fence, a table delimiter row...) is held back until more arrives,
// so the line above does not flicker between paragraph, list item and heading. Likewise a last
// line starting with `|` after non-table text (a table header whose delimiter row is on its way)
// waits for the next line instead of flashing up as a paragraph of pipes.
class StreamRenderer {
public:
    StreamRenderer() = default;
    explicit StreamRenderer(RenderOptions options) : options_(options) {}

    // Appends a chunk of Markdown (split anywhere, including inside a UTF-8 sequence or a CRLF).
    // Ignored after finish().
    void append(std::string_view delta);
    // End of the reply: everything becomes stable, the tail is empty.
    void finish();
    bool finished() const noexcept { return finished_; }

    // The HTML of finished blocks; never shrinks or changes, only grows.
    const std::string& stable_html() const noexcept { return stable_html_; }
    // The HTML of the open tail, re-rendered on each append.
    const std::string& tail_html() const noexcept { return tail_html_; }
    // stable_html() + tail_html().
    std::string html() const { return stable_html_ + tail_html_; }
    // The stable HTML added since the previous call: what a UI appends to the DOM after each
    // delta (with tail_html() replacing the old tail), so no call copies the whole reply.
    std::string take_new_stable_html() {
        std::string fresh = stable_html_.substr(stable_taken_);
        stable_taken_ = stable_html_.size();
        return fresh;
    }

    // Work counters, so tests can prove the cost model without timing anything.
    // Top-level blocks finished so far; each was rendered exactly once, when it finished.
    std::uint64_t finished_blocks() const noexcept { return finished_blocks_; }
    // Top-level block renders of any kind (finished blocks plus every re-render of the tail).
    std::uint64_t block_renders() const noexcept { return block_renders_; }
    // Renders of a block that had already been finished (stays 0: the stable prefix is never
    // parsed or rendered again).
    std::uint64_t finished_block_rerenders() const noexcept { return finished_block_rerenders_; }
    // Tail render passes, and source bytes the block parser read in total.
    std::uint64_t tail_renders() const noexcept { return tail_renders_; }
    std::uint64_t bytes_parsed() const noexcept { return bytes_parsed_; }
    // Finished blocks that waited (in the tail, rendered once) for a footnote definition, and the
    // footnote references filled in when they became stable.
    std::uint64_t footnote_held_blocks() const noexcept { return footnote_held_blocks_; }
    // HTML bytes that tail renders copied or passed through footnote resolution (held blocks and
    // the rendered tail): per append, bounded by the new blocks and the tail, not by the reply;
    // 0 for a reply without footnote references (the tail is rendered in place).
    std::uint64_t tail_bytes_resolved() const noexcept { return tail_bytes_resolved_; }
    // Code bytes run through the syntax highlighter (cached complete lines are not run again).
    std::uint64_t code_bytes_highlighted() const noexcept { return highlight_cache_.bytes_highlighted; }

    // How many source bytes the stable part covers (they are never parsed again).
    std::size_t stable_source_size() const noexcept { return stable_offset_; }
    // The whole source appended so far (line endings normalised to \n, NUL replaced by U+FFFD).
    const std::string& source() const noexcept { return source_; }

private:
    // Parses source_ from stable_offset_, moves closed top-level blocks to stable_html_ and
    // re-renders the rest as the tail.
    void advance(bool at_end);
    // Renders a finished block: to the stable part, or held (footnote placeholders).
    void finish_block(const detail::Block& block);
    // Moves held blocks whose footnotes are all defined (all of them at the end) to the stable part.
    void release_held(bool at_end);

    std::string source_;
    std::size_t stable_offset_ = 0;  // start of the first block not yet finished
    std::string stable_html_;
    std::size_t stable_taken_ = 0;  // how much of stable_html_ take_new_stable_html() handed out
    std::string tail_html_;
    ReferenceMap references_;  // from finished blocks
    RenderOptions options_;
    std::vector<detail::FootnoteDef> footnote_defs_;  // from finished blocks
    detail::FootnoteNumbers footnote_numbers_;  // of the references in the stable part
    std::vector<std::string> held_;  // finished blocks' HTML waiting for a footnote definition
    // The first held_resolved_blocks_ held blocks, resolved, are tail_html_'s first
    // held_resolved_size_ bytes (0 blocks: nothing cached), numbered into held_numbers_, for the
    // defined labels they were resolved with: held_key_defs_ stable definitions and the tail's.
    std::size_t held_resolved_blocks_ = 0;
    std::size_t held_resolved_size_ = 0;
    detail::FootnoteNumbers held_numbers_;
    std::size_t held_key_defs_ = 0;
    std::vector<std::string> held_key_labels_;
    std::string scratch_;  // the tail's HTML while footnotes are resolved (kept for its capacity)
    detail::HighlightCache highlight_cache_;
    std::uint64_t footnote_held_blocks_ = 0;
    std::uint64_t tail_bytes_resolved_ = 0;
    bool pending_cr_ = false;  // the last delta ended in CR: a following LF belongs to it
    bool finished_ = false;
    std::uint64_t finished_blocks_ = 0;
    std::uint64_t block_renders_ = 0;
    std::uint64_t finished_block_rerenders_ = 0;
    std::uint64_t tail_renders_ = 0;
    std::uint64_t bytes_parsed_ = 0;
};

// Helpers exposed for tests and for the widget's own attribute handling.
// Escapes & < > " for HTML text and double-quoted attribute values.
void escape_html(std::string_view text, std::string& out);
// True when a URL may be used as an href (or, with for_image, as an img src): not
// javascript:, vbscript: or data: (except data:image/png|gif|jpeg|webp for images), judged after
// removing ASCII whitespace and control characters and ignoring case. Entities must be decoded
// by the caller (the renderer does so while parsing).
bool is_safe_url(std::string_view url, bool for_image);

}  // namespace confab::markdown
