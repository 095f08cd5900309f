// Private to the Markdown renderer: the block tree, the inline parser and HTML helpers it shares.
#pragma once

#include "confab/markdown.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace confab::markdown::detail {

enum class BlockKind : std::uint8_t {
    document,
    paragraph,
    heading,
    thematic_break,
    code_block,
    blockquote,
    list,
    list_item,
    table,
    footnote_definition,  // `[^label]: ...`: a container (label in `info`) rendered in the footnotes section
};

struct Block {
    BlockKind kind = BlockKind::document;
    Block* parent = nullptr;
    std::vector<std::unique_ptr<Block>> children;
    bool open = true;
    int depth = 0;  // containers above it; capped so hostile nesting cannot exhaust the stack
    // Source line span (0-based, inclusive), used for list looseness as commonmark.js does.
    std::size_t start_line = 0;
    std::size_t end_line = 0;

    std::string content;  // paragraph/heading inline source; code block text
    int level = 0;        // heading level

    // Code blocks.
    bool fenced = false;
    char fence_char = 0;
    std::size_t fence_length = 0;
    std::size_t fence_offset = 0;
    std::string info;

    // Lists and list items.
    bool ordered = false;
    char bullet_char = 0;
    char delimiter = 0;
    std::uint32_t start = 1;
    bool tight = true;
    std::size_t marker_offset = 0;
    std::size_t padding = 0;

    // Tables: alignment per column ('l', 'c', 'r' or 0) and rows of raw cell text; row 0 is the head.
    std::vector<char> align;
    std::vector<std::vector<std::string>> rows;
    // A table whose header row was the last line of the paragraph before it. Its first line is
    // not a place where parsing can restart (alone, that line may read as a list item or code).
    bool split_from_paragraph = false;

    Block* last_child() const { return children.empty() ? nullptr : children.back().get(); }
};

// A link reference definition found while parsing, with the index of the top-level block that held
// it (it applies from that block on).
struct PendingReference {
    std::string label;  // normalised
    LinkReference ref;
    std::size_t top_index = 0;
    std::size_t line = 0;  // first line of the paragraph that held it
};

// Parses complete and partial lines into a block tree (CommonMark's two-phase algorithm, after
// commonmark.js, plus GFM tables). Raw HTML blocks are not recognised: such lines are text.
class BlockParser {
public:
    // Deeper block quotes and list items are read as text: rendering and freeing the tree
    // recurse once per level, and the wasm stack is small.
    static constexpr int max_depth = 48;

    BlockParser();
    // One line without its line ending.
    void add_line(std::string_view line);
    // Closes every open block (end of input).
    void finish();

    Block& document() { return *doc_; }
    // Number of top-level blocks whose content can no longer change (all but the open last one).
    std::size_t closed_top_level() const;
    std::size_t lines() const { return line_number_; }
    const std::vector<PendingReference>& references() const { return refs_; }

private:
    friend struct BlockStarts;
    void find_next_nonspace();
    void advance_next_nonspace();
    void advance_offset(std::size_t count, bool columns);
    void add_text_to_tip();
    Block* add_child(BlockKind kind, std::size_t offset);
    void close_unmatched();
    void finalize(Block* block, std::size_t line);
    int try_continue(Block* container);
    int try_starts(Block*& container);
    void finalize_paragraph(Block* block);
    std::size_t previous_line() const { return line_number_ >= 2 ? line_number_ - 2 : 0; }

    std::unique_ptr<Block> doc_;
    Block* tip_ = nullptr;
    Block* old_tip_ = nullptr;
    Block* last_matched_ = nullptr;
    bool all_closed_ = true;
    std::string_view line_;
    std::size_t line_number_ = 0;  // lines seen so far; the current line is line_number_ - 1
    std::size_t offset_ = 0;
    std::size_t column_ = 0;
    std::size_t next_nonspace_ = 0;
    std::size_t next_nonspace_column_ = 0;
    std::size_t indent_ = 0;
    bool indented_ = false;
    bool blank_ = false;
    bool partially_consumed_tab_ = false;
    std::vector<PendingReference> refs_;
};

// Link reference definitions: parses one at the start of `text`; returns the bytes consumed
// (0 when there is none) and fills the normalised label and the reference.
std::size_t parse_reference(std::string_view text, std::string& label, LinkReference& ref);
std::string normalize_label(std::string_view label);

// Footnote definitions met while rendering, in order (the first definition of a label wins, as for
// link references). Looked up linearly: at most max_footnotes are kept (a reply has a handful;
// later definitions are ignored, so a hostile reply cannot make lookups quadratic in its length).
using FootnoteDefs = std::vector<FootnoteDef>;
constexpr std::size_t max_footnotes = 1000;

// What block rendering needs besides the block.
struct RenderContext {
    const ReferenceMap& refs;
    const RenderOptions& options;
    FootnoteDefs* footnotes;  // where footnote definitions go
    HighlightCache* highlight_cache = nullptr;  // the stream's: its open code block grows
    // Set once a footnote placeholder may have been written: only then must the output be
    // post-processed by resolve_footnotes().
    bool footnote_placeholders = false;
};

// A footnote reference `[^label]` renders as a placeholder until its definition is known:
// NUL + label + '\x01' + the HTML it falls back to (the bracketed text) + NUL. NUL never occurs in
// rendered HTML (the input's NULs became U+FFFD) and a label holds no control character.
// resolve_footnotes() turns placeholders into references or their fallback.
constexpr char footnote_mark = '\0';
constexpr char footnote_split = '\x01';

// Whether every footnote placeholder in `html` names a label in `defs` or `more` (may be null).
bool footnotes_defined(std::string_view html, const FootnoteDefs& defs, const FootnoteDefs* more);
// Copies `html` to `out`, replacing each placeholder by a reference (label in `defs` or `more`) or
// its fallback, numbering references in `numbers`.
void resolve_footnotes(std::string_view html, const FootnoteDefs& defs, const FootnoteDefs* more,
                       FootnoteNumbers& numbers, std::string& out);
// Appends the footnotes section for the references numbered in `numbers` (nothing if none): each
// definition's HTML (its own references resolved too) with back links to its references.
void render_footnote_section(const FootnoteDefs& defs, const FootnoteDefs* more, FootnoteNumbers& numbers,
                             std::string& out);

// Renders inline Markdown (a paragraph's, heading's or table cell's text) to safe HTML. Returns
// whether it may have written a footnote placeholder (false: there is none to resolve).
bool render_inlines(std::string_view text, const ReferenceMap& refs, std::string& out);

// Renders a block and its children.
void render_block(const Block& block, RenderContext& ctx, std::string& out, bool tight);

// Syntax highlighting of code in `language` (an info string's first word, as written): appends the
// escaped code with hl-* spans and returns true, or returns false (nothing appended) for a
// language it does not know. With a cache, code that extends the cached code is highlighted only
// from the cached prefix's end (the output is the same).
bool highlight_code(std::string_view language, std::string_view code, std::string& out,
                    HighlightCache* cache = nullptr);

// HTML helpers.
void escape_into(std::string_view text, std::string& out);
// Decodes one entity reference at the start of `text` (`&amp;`, `&#123;`, `&#x1F;`); returns bytes
// consumed (0 if none) and appends the UTF-8 to `out`.
std::size_t decode_entity(std::string_view text, std::string& out);
// Backslash escapes and entities resolved (link destinations, titles, info strings).
std::string unescape_string(std::string_view text);
// Percent-encodes what a URL attribute must not carry raw, keeping existing %XX escapes.
std::string normalize_uri(std::string_view url);
void append_utf8(std::uint32_t code_point, std::string& out);

inline bool is_space_or_tab(char c) { return c == ' ' || c == '\t'; }
inline bool is_ascii_punct(char c) {
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}
inline bool is_blank(std::string_view s) {
    for (char c : s)
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return false;
    return true;
}

}  // namespace confab::markdown::detail
