// Markdown block structure: CommonMark's line-by-line container algorithm (after commonmark.js) plus GFM tables.
#include "markdown_internal.hpp"

#include <algorithm>

namespace confab::markdown::detail {
namespace {

constexpr std::size_t code_indent = 4;

char peek(std::string_view s, std::size_t i) { return i < s.size() ? s[i] : '\0'; }

bool can_contain(BlockKind parent, BlockKind child) {
    switch (parent) {
        case BlockKind::document:
        case BlockKind::blockquote:
        case BlockKind::footnote_definition:
        case BlockKind::list_item: return child != BlockKind::list_item;
        case BlockKind::list: return child == BlockKind::list_item;
        default: return false;
    }
}

bool accepts_lines(BlockKind kind) {
    return kind == BlockKind::paragraph || kind == BlockKind::code_block || kind == BlockKind::table;
}

// `^(?:\*[ \t]*){3,}$|^(?:_[ \t]*){3,}$|^(?:-[ \t]*){3,}$`
bool is_thematic_break(std::string_view s) {
    if (s.empty()) return false;
    char c = s[0];
    if (c != '*' && c != '_' && c != '-') return false;
    int count = 0;
    for (char x : s) {
        if (x == c) ++count;
        else if (x != ' ' && x != '\t') return false;
    }
    return count >= 3;
}

// `^#{1,6}(?:[ \t]+|$)`: returns the marker length (hashes plus following blanks) or 0.
std::size_t atx_marker(std::string_view s) {
    std::size_t n = 0;
    while (n < s.size() && s[n] == '#') ++n;
    if (n == 0 || n > 6) return 0;
    if (n == s.size()) return n;
    if (!is_space_or_tab(s[n])) return 0;
    while (n < s.size() && is_space_or_tab(s[n])) ++n;
    return n;
}

// Opening code fence: returns the run length, or 0.
std::size_t code_fence(std::string_view s) {
    if (s.empty() || (s[0] != '`' && s[0] != '~')) return 0;
    std::size_t n = 0;
    while (n < s.size() && s[n] == s[0]) ++n;
    if (n < 3) return 0;
    if (s[0] == '`' && s.substr(n).find('`') != std::string_view::npos) return 0;
    return n;
}

// `^(?:`{3,}|~{3,})(?=[ \t]*$)`
std::size_t closing_fence(std::string_view s) {
    if (s.empty() || (s[0] != '`' && s[0] != '~')) return 0;
    std::size_t n = 0;
    while (n < s.size() && s[n] == s[0]) ++n;
    if (n < 3) return 0;
    for (std::size_t i = n; i < s.size(); ++i)
        if (!is_space_or_tab(s[i])) return 0;
    return n;
}

// `^(?:=+|-+)[ \t]*$`: returns 1 or 2 (the heading level) or 0.
int setext_level(std::string_view s) {
    if (s.empty() || (s[0] != '=' && s[0] != '-')) return 0;
    std::size_t n = 0;
    while (n < s.size() && s[n] == s[0]) ++n;
    for (std::size_t i = n; i < s.size(); ++i)
        if (!is_space_or_tab(s[i])) return 0;
    return s[0] == '=' ? 1 : 2;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

// Splits a GFM table row into raw cell texts: optional leading/trailing pipe, `\|` stays in the
// cell (the inline parser unescapes it), pipes inside code spans still split, as in GFM.
std::vector<std::string> split_row(std::string_view line) {
    std::string_view s = trim(line);
    std::vector<std::string> cells;
    if (!s.empty() && s.front() == '|') s.remove_prefix(1);
    std::string cell;
    bool any = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\' && i + 1 < s.size() && s[i + 1] == '|') {
            cell += '|';  // GFM: an escaped pipe is a literal pipe in the cell, even in code
            ++i;
        } else if (c == '|') {
            cells.emplace_back(trim(cell));
            cell.clear();
            any = false;
        } else {
            cell += c;
            any = true;
        }
    }
    if (any || !trim(cell).empty()) cells.emplace_back(trim(cell));
    return cells;
}

// A delimiter row (`| :-- | --: |`): returns the alignments, or nothing if it is not one.
bool parse_delimiter_row(std::string_view line, std::vector<char>& align) {
    std::string_view s = trim(line);
    if (s.find('|') == std::string_view::npos) return false;
    align.clear();
    std::vector<std::string> cells = split_row(s);
    if (cells.empty()) return false;
    for (const std::string& cell : cells) {
        std::string_view c = trim(cell);
        if (c.empty()) return false;
        bool left = c.front() == ':';
        bool right = c.back() == ':';
        std::string_view dashes = c.substr(left ? 1 : 0);
        if (right && !dashes.empty()) dashes.remove_suffix(1);
        if (dashes.empty()) return false;
        for (char d : dashes)
            if (d != '-') return false;
        align.push_back(left && right ? 'c' : right ? 'r' : left ? 'l' : 0);
    }
    return true;
}

}  // namespace

BlockParser::BlockParser() : doc_(std::make_unique<Block>()) { tip_ = doc_.get(); }

std::size_t BlockParser::closed_top_level() const {
    std::size_t n = doc_->children.size();
    if (n > 0 && doc_->children.back()->open) --n;
    return n;
}

void BlockParser::find_next_nonspace() {
    std::size_t i = offset_;
    std::size_t cols = column_;
    char c = 0;
    while (i < line_.size()) {
        c = line_[i];
        if (c == ' ') {
            ++i;
            ++cols;
        } else if (c == '\t') {
            ++i;
            cols += 4 - (cols % 4);
        } else {
            break;
        }
    }
    blank_ = i >= line_.size();
    next_nonspace_ = i;
    next_nonspace_column_ = cols;
    indent_ = next_nonspace_column_ - column_;
    indented_ = indent_ >= code_indent;
}

void BlockParser::advance_next_nonspace() {
    offset_ = next_nonspace_;
    column_ = next_nonspace_column_;
    partially_consumed_tab_ = false;
}

void BlockParser::advance_offset(std::size_t count, bool columns) {
    while (count > 0 && offset_ < line_.size()) {
        char c = line_[offset_];
        if (c == '\t') {
            std::size_t to_tab = 4 - (column_ % 4);
            if (columns) {
                partially_consumed_tab_ = to_tab > count;
                std::size_t step = std::min(to_tab, count);
                column_ += step;
                offset_ += partially_consumed_tab_ ? 0 : 1;
                count -= step;
            } else {
                partially_consumed_tab_ = false;
                column_ += to_tab;
                offset_ += 1;
                count -= 1;
            }
        } else {
            partially_consumed_tab_ = false;
            ++offset_;
            ++column_;
            --count;
        }
    }
}

void BlockParser::add_text_to_tip() {
    if (tip_->kind == BlockKind::table) {
        std::vector<std::string> row = split_row(line_.substr(std::min(offset_, line_.size())));
        row.resize(tip_->align.size());  // GFM: extra cells are dropped, missing ones are empty
        tip_->rows.push_back(std::move(row));
        return;
    }
    if (partially_consumed_tab_) {
        ++offset_;
        tip_->content.append(4 - (column_ % 4), ' ');
    }
    if (offset_ < line_.size()) tip_->content.append(line_.substr(offset_));
    tip_->content += '\n';
}

Block* BlockParser::add_child(BlockKind kind, std::size_t /*offset*/) {
    while (!can_contain(tip_->kind, kind)) finalize(tip_, previous_line());
    auto block = std::make_unique<Block>();
    block->kind = kind;
    block->parent = tip_;
    block->depth = tip_->depth + 1;
    block->start_line = line_number_ - 1;
    block->end_line = line_number_ - 1;
    Block* raw = block.get();
    tip_->children.push_back(std::move(block));
    tip_ = raw;
    return raw;
}

void BlockParser::close_unmatched() {
    if (all_closed_) return;
    while (old_tip_ != last_matched_) {
        Block* parent = old_tip_->parent;
        finalize(old_tip_, previous_line());
        old_tip_ = parent;
    }
    all_closed_ = true;
}

void BlockParser::finalize_paragraph(Block* block) {
    // Leading link reference definitions are taken out of the paragraph. They are recorded with
    // their top-level block; the renderer applies them from that block on.
    std::string_view content = block->content;
    std::size_t consumed = 0;
    std::size_t top = doc_->children.empty() ? 0 : doc_->children.size() - 1;
    while (consumed < content.size() && content[consumed] == '[') {
        PendingReference pending;
        std::size_t n = parse_reference(content.substr(consumed), pending.label, pending.ref);
        if (n == 0) break;
        pending.top_index = top;
        pending.line = block->start_line;
        refs_.push_back(std::move(pending));
        consumed += n;
    }
    if (consumed > 0) block->content.erase(0, consumed);
}

void BlockParser::finalize(Block* block, std::size_t line) {
    Block* above = block->parent;
    block->open = false;
    block->end_line = line < block->start_line ? block->start_line : line;
    switch (block->kind) {
        case BlockKind::paragraph:
            finalize_paragraph(block);
            if (is_blank(block->content) && above) {
                // Only definitions: the paragraph disappears.
                auto& siblings = above->children;
                siblings.erase(std::remove_if(siblings.begin(), siblings.end(),
                                              [&](const std::unique_ptr<Block>& b) { return b.get() == block; }),
                               siblings.end());
            }
            break;
        case BlockKind::code_block:
            if (block->fenced) {
                std::size_t nl = block->content.find('\n');
                std::string first = block->content.substr(0, nl);
                block->info = unescape_string(trim(first));
                block->content.erase(0, nl == std::string::npos ? block->content.size() : nl + 1);
            } else {
                // Trailing blank lines are not part of an indented code block.
                std::vector<std::string_view> lines;
                std::string_view all = block->content;
                while (!all.empty()) {
                    std::size_t nl = all.find('\n');
                    lines.push_back(all.substr(0, nl));
                    all = nl == std::string_view::npos ? std::string_view{} : all.substr(nl + 1);
                }
                std::size_t keep = lines.size();
                while (keep > 0 && is_blank(lines[keep - 1])) --keep;
                std::string literal;
                for (std::size_t i = 0; i < keep; ++i) {
                    literal.append(lines[i]);
                    literal += '\n';
                }
                block->content = std::move(literal);
                block->end_line = block->start_line + (keep == 0 ? 0 : keep - 1);
            }
            break;
        case BlockKind::list_item:
        case BlockKind::footnote_definition:
            if (Block* last = block->last_child()) block->end_line = last->end_line;
            else block->end_line = block->start_line;
            break;
        case BlockKind::list: {
            // Loose if any item, or any direct child of an item, is followed by a blank line
            // before its next sibling.
            for (std::size_t i = 0; i < block->children.size() && block->tight; ++i) {
                const Block& item = *block->children[i];
                if (i + 1 < block->children.size() && item.end_line + 1 < block->children[i + 1]->start_line)
                    block->tight = false;
                for (std::size_t j = 0; j + 1 < item.children.size() && block->tight; ++j)
                    if (item.children[j]->end_line + 1 < item.children[j + 1]->start_line) block->tight = false;
            }
            if (Block* last = block->last_child()) block->end_line = last->end_line;
            break;
        }
        default: break;
    }
    tip_ = above;
}

// 0: matched, 1: not matched, 2: matched and the line is consumed (closing fence).
int BlockParser::try_continue(Block* container) {
    switch (container->kind) {
        case BlockKind::blockquote:
            if (!indented_ && peek(line_, next_nonspace_) == '>') {
                advance_next_nonspace();
                advance_offset(1, false);
                if (is_space_or_tab(peek(line_, offset_))) advance_offset(1, true);
                return 0;
            }
            return 1;
        case BlockKind::list_item:
            if (blank_) {
                if (container->children.empty()) return 1;
                advance_next_nonspace();
            } else if (indent_ >= container->marker_offset + container->padding) {
                advance_offset(container->marker_offset + container->padding, true);
            } else {
                return 1;
            }
            return 0;
        case BlockKind::footnote_definition:
            // Continues on blank lines and lines indented by 4 (as cmark-gfm reads them).
            if (blank_) {
                advance_next_nonspace();
            } else if (indent_ >= code_indent) {
                advance_offset(code_indent, true);
            } else {
                return 1;
            }
            return 0;
        case BlockKind::heading:
        case BlockKind::thematic_break: return 1;
        case BlockKind::code_block:
            if (container->fenced) {
                std::string_view rest = line_.substr(std::min(next_nonspace_, line_.size()));
                std::size_t n = indent_ <= 3 && peek(line_, next_nonspace_) == container->fence_char
                                    ? closing_fence(rest)
                                    : 0;
                if (n >= container->fence_length) {
                    finalize(container, line_number_ - 1);
                    return 2;
                }
                std::size_t i = container->fence_offset;
                while (i > 0 && is_space_or_tab(peek(line_, offset_))) {
                    advance_offset(1, true);
                    --i;
                }
            } else if (indent_ >= code_indent) {
                advance_offset(code_indent, true);
            } else if (blank_) {
                advance_next_nonspace();
            } else {
                return 1;
            }
            return 0;
        case BlockKind::paragraph: return blank_ ? 1 : 0;
        case BlockKind::table: {
            if (blank_) return 1;
            if (indented_) return 0;
            // Another block's start ends the table (GFM).
            std::string_view rest = line_.substr(next_nonspace_);
            char c = rest[0];
            if (c == '>' || atx_marker(rest) || code_fence(rest) || is_thematic_break(rest)) return 1;
            if ((c == '-' || c == '*' || c == '+') && (rest.size() == 1 || is_space_or_tab(rest[1]))) return 1;
            return 0;
        }
        default: return 0;
    }
}

// Tries each block start in CommonMark's order. 0: none, 1: container opened, 2: leaf opened.
int BlockParser::try_starts(Block*& container) {
    std::string_view rest = line_.substr(std::min(next_nonspace_, line_.size()));
    char c = rest.empty() ? '\0' : rest[0];

    const bool room_for_container = container->depth + 2 <= max_depth;
    // Block quote.
    if (!indented_ && c == '>' && room_for_container) {
        advance_next_nonspace();
        advance_offset(1, false);
        if (is_space_or_tab(peek(line_, offset_))) advance_offset(1, true);
        close_unmatched();
        container = add_child(BlockKind::blockquote, next_nonspace_);
        return 1;
    }
    // ATX heading.
    if (!indented_ && c == '#') {
        if (std::size_t n = atx_marker(rest)) {
            advance_next_nonspace();
            advance_offset(n, false);
            close_unmatched();
            container = add_child(BlockKind::heading, next_nonspace_);
            container->level = static_cast<int>(std::count(rest.begin(), rest.begin() + n, '#'));
            std::string_view text = line_.substr(std::min(offset_, line_.size()));
            // Optional closing sequence: `#`s preceded by a blank (or the whole text), then blanks.
            std::string_view t = text;
            while (!t.empty() && is_space_or_tab(t.back())) t.remove_suffix(1);
            std::size_t hashes = 0;
            while (hashes < t.size() && t[t.size() - 1 - hashes] == '#') ++hashes;
            if (hashes > 0) {
                std::string_view before = t.substr(0, t.size() - hashes);
                if (is_blank(before)) text = {};
                else if (is_space_or_tab(before.back())) text = before;
            }
            container->content = std::string(text);
            advance_offset(line_.size() - offset_, false);
            return 2;
        }
    }
    // Fenced code.
    if (!indented_ && (c == '`' || c == '~')) {
        if (std::size_t n = code_fence(rest)) {
            close_unmatched();
            container = add_child(BlockKind::code_block, next_nonspace_);
            container->fenced = true;
            container->fence_length = n;
            container->fence_char = c;
            container->fence_offset = indent_;
            advance_next_nonspace();
            advance_offset(n, false);
            return 2;
        }
    }
    // GFM table: a delimiter row under a paragraph whose last line has as many cells.
    if (!indented_ && container->kind == BlockKind::paragraph && (c == '|' || c == '-' || c == ':')) {
        std::vector<char> align;
        if (parse_delimiter_row(rest, align)) {
            std::string_view content = container->content;
            if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
            std::size_t nl = content.rfind('\n');
            std::string_view header = nl == std::string_view::npos ? content : content.substr(nl + 1);
            std::vector<std::string> head = split_row(header);
            if (head.size() == align.size() && header.find('|') != std::string_view::npos) {
                close_unmatched();
                Block* para = container;
                std::size_t header_line = previous_line();
                Block* table = nullptr;
                if (nl == std::string_view::npos) {
                    para->kind = BlockKind::table;
                    table = para;
                    table->content.clear();
                } else {
                    // Lines above the header stay a paragraph of their own.
                    para->content.resize(nl + 1);
                    finalize(para, header_line == 0 ? 0 : header_line - 1);
                    table = add_child(BlockKind::table, next_nonspace_);
                    table->start_line = header_line;
                    table->split_from_paragraph = true;
                }
                table->align = align;
                table->rows.push_back(std::move(head));
                container = table;
                tip_ = table;
                advance_offset(line_.size() - offset_, false);
                return 3;  // the delimiter row is not a body row
            }
        }
    }
    // Setext heading underline.
    if (!indented_ && container->kind == BlockKind::paragraph && (c == '=' || c == '-')) {
        if (int level = setext_level(rest)) {
            close_unmatched();
            finalize_paragraph(container);
            if (!is_blank(container->content)) {
                container->kind = BlockKind::heading;
                container->level = level;
                advance_offset(line_.size() - offset_, false);
                return 2;
            }
            // Only definitions were there: the underline is read as something else.
        }
    }
    // Thematic break.
    if (!indented_ && is_thematic_break(rest)) {
        close_unmatched();
        container = add_child(BlockKind::thematic_break, next_nonspace_);
        advance_offset(line_.size() - offset_, false);
        return 2;
    }
    // List item.
    if ((!indented_ || container->kind == BlockKind::list) && room_for_container) {
        if (indent_ < 4) {
            bool ordered = false;
            char bullet = 0;
            char delim = 0;
            std::uint32_t start = 1;
            std::size_t marker_len = 0;
            if (c == '*' || c == '+' || c == '-') {
                bullet = c;
                marker_len = 1;
            } else if (c >= '0' && c <= '9') {
                std::size_t d = 0;
                std::uint32_t value = 0;
                while (d < rest.size() && d < 10 && rest[d] >= '0' && rest[d] <= '9') {
                    value = value * 10 + static_cast<std::uint32_t>(rest[d] - '0');
                    ++d;
                }
                if (d >= 1 && d <= 9 && d < rest.size() && (rest[d] == '.' || rest[d] == ')') &&
                    (container->kind != BlockKind::paragraph || value == 1)) {
                    ordered = true;
                    delim = rest[d];
                    start = value;
                    marker_len = d + 1;
                }
            }
            if (marker_len > 0) {
                char next = peek(line_, next_nonspace_ + marker_len);
                bool ok = next == '\0' || next == ' ' || next == '\t';
                if (ok && container->kind == BlockKind::paragraph &&
                    is_blank(line_.substr(std::min(next_nonspace_ + marker_len, line_.size()))))
                    ok = false;  // an empty item cannot interrupt a paragraph
                if (ok) {
                    std::size_t marker_offset = indent_;
                    advance_next_nonspace();
                    advance_offset(marker_len, true);
                    std::size_t spaces_start_col = column_;
                    std::size_t spaces_start_offset = offset_;
                    do {
                        advance_offset(1, true);
                    } while (column_ - spaces_start_col < 5 && is_space_or_tab(peek(line_, offset_)));
                    bool blank_item = offset_ >= line_.size();
                    std::size_t spaces_after = column_ - spaces_start_col;
                    std::size_t padding = 0;
                    if (spaces_after >= 5 || spaces_after < 1 || blank_item) {
                        padding = marker_len + 1;
                        column_ = spaces_start_col;
                        offset_ = spaces_start_offset;
                        if (is_space_or_tab(peek(line_, offset_))) advance_offset(1, true);
                    } else {
                        padding = marker_len + spaces_after;
                    }
                    close_unmatched();
                    if (tip_->kind != BlockKind::list || tip_->ordered != ordered || tip_->delimiter != delim ||
                        tip_->bullet_char != bullet) {
                        container = add_child(BlockKind::list, next_nonspace_);
                        container->ordered = ordered;
                        container->bullet_char = bullet;
                        container->delimiter = delim;
                        container->start = start;
                    }
                    container = add_child(BlockKind::list_item, next_nonspace_);
                    container->ordered = ordered;
                    container->bullet_char = bullet;
                    container->delimiter = delim;
                    container->marker_offset = marker_offset;
                    container->padding = padding;
                    return 1;
                }
            }
        }
    }
    // GFM footnote definition: `[^label]:` (a label without whitespace, brackets or controls), then
    // its content, which continues on lines indented by 4.
    if (!indented_ && c == '[' && peek(rest, 1) == '^' && room_for_container) {
        std::size_t i = 2;
        while (i < rest.size() && static_cast<unsigned char>(rest[i]) > 0x20 && rest[i] != ']' && rest[i] != '[' &&
               rest[i] != 0x7F)
            ++i;
        if (i > 2 && i - 2 <= 999 && peek(rest, i) == ']' && peek(rest, i + 1) == ':') {
            std::string label = normalize_label(rest.substr(2, i - 2));
            advance_next_nonspace();
            advance_offset(i + 2, false);
            while (is_space_or_tab(peek(line_, offset_))) advance_offset(1, true);
            close_unmatched();
            container = add_child(BlockKind::footnote_definition, next_nonspace_);
            container->info = std::move(label);
            return 1;
        }
    }
    // Indented code.
    if (indented_ && tip_->kind != BlockKind::paragraph && !blank_) {
        advance_offset(code_indent, true);
        close_unmatched();
        container = add_child(BlockKind::code_block, offset_);
        return 2;
    }
    return 0;
}

void BlockParser::add_line(std::string_view line) {
    line_ = line;
    Block* container = doc_.get();
    old_tip_ = tip_;
    offset_ = 0;
    column_ = 0;
    blank_ = false;
    partially_consumed_tab_ = false;
    ++line_number_;

    while (Block* last = container->last_child()) {
        if (!last->open) break;
        container = last;
        find_next_nonspace();
        int r = try_continue(container);
        if (r == 2) return;
        if (r == 1) {
            container = container->parent;
            break;
        }
    }
    all_closed_ = container == old_tip_;
    last_matched_ = container;

    bool matched_leaf = container->kind != BlockKind::paragraph && accepts_lines(container->kind);
    while (!matched_leaf) {
        find_next_nonspace();
        char c = peek(line_, next_nonspace_);
        bool maybe_special = c == '#' || c == '`' || c == '~' || c == '*' || c == '+' || c == '_' || c == '=' ||
                             c == '>' || c == '-' || c == '|' || c == ':' || c == '[' || (c >= '0' && c <= '9');
        if (!indented_ && !maybe_special) {
            advance_next_nonspace();
            break;
        }
        int r = try_starts(container);
        if (r == 3) return;
        if (r == 0) {
            advance_next_nonspace();
            break;
        }
        container = tip_;
        if (r == 2) matched_leaf = true;
    }

    if (!all_closed_ && !blank_ && tip_->kind == BlockKind::paragraph) {
        add_text_to_tip();  // lazy continuation
        return;
    }
    close_unmatched();
    if (accepts_lines(container->kind)) {
        add_text_to_tip();
    } else if (offset_ < line_.size() && !blank_) {
        container = add_child(BlockKind::paragraph, offset_);
        advance_next_nonspace();
        add_text_to_tip();
    }
}

void BlockParser::finish() {
    while (tip_) finalize(tip_, line_number_ == 0 ? 0 : line_number_ - 1);
}

}  // namespace confab::markdown::detail
