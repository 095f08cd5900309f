// The streaming Markdown renderer: block HTML output and StreamRenderer's stable/tail split.
#include "confab/markdown.hpp"

#include "markdown_internal.hpp"

#include <algorithm>
#include <vector>

namespace confab::markdown {
namespace detail {
namespace {

void cr(std::string& out) {
    if (!out.empty() && out.back() != '\n') out += '\n';
}

void render_children(const Block& block, RenderContext& ctx, std::string& out, bool tight) {
    for (const auto& child : block.children) render_block(*child, ctx, out, tight);
}

// A GFM task list item: its first paragraph starts with `[ ]`, `[x]` or `[X]` and a space or tab.
// Returns 0 (not a task), 1 (open) or 2 (done); `rest` is the paragraph's text after the marker.
int task_marker(const Block& item, std::string_view& rest) {
    if (item.children.empty() || item.children.front()->kind != BlockKind::paragraph) return 0;
    std::string_view text = item.children.front()->content;
    if (text.size() < 4 || text[0] != '[' || text[2] != ']' || !(text[3] == ' ' || text[3] == '\t')) return 0;
    char mark = text[1];
    if (mark != ' ' && mark != 'x' && mark != 'X') return 0;
    rest = text.substr(4);
    return mark == ' ' ? 1 : 2;
}

void render_paragraph_text(std::string_view text, RenderContext& ctx, std::string& out, bool tight, int task) {
    if (!tight) {
        cr(out);
        out += "<p>";
    }
    // Disabled: a reply's checkbox is not a control. The label names it for screen readers (its
    // state is read from `checked`).
    if (task == 1) out += "<input type=\"checkbox\" disabled=\"\" aria-label=\"Task\" /> ";
    if (task == 2) out += "<input type=\"checkbox\" checked=\"\" disabled=\"\" aria-label=\"Task\" /> ";
    if (render_inlines(text, ctx.refs, out)) ctx.footnote_placeholders = true;
    if (!tight) {
        out += "</p>";
        cr(out);
    }
}

}  // namespace

void render_block(const Block& block, RenderContext& ctx, std::string& out, bool tight) {
    switch (block.kind) {
        case BlockKind::document: render_children(block, ctx, out, false); break;
        case BlockKind::paragraph: render_paragraph_text(block.content, ctx, out, tight, 0); break;
        case BlockKind::heading: {
            char level = static_cast<char>('0' + block.level);
            cr(out);
            out += "<h";
            out += level;
            out += '>';
            if (render_inlines(block.content, ctx.refs, out)) ctx.footnote_placeholders = true;
            out += "</h";
            out += level;
            out += '>';
            cr(out);
            break;
        }
        case BlockKind::thematic_break:
            cr(out);
            out += "<hr />";
            cr(out);
            break;
        case BlockKind::code_block: {
            cr(out);
            out += "<pre><code";
            std::string_view info = block.info;
            std::size_t word_end = 0;
            while (word_end < info.size() && info[word_end] != ' ' && info[word_end] != '\t' && info[word_end] != '\n')
                ++word_end;
            if (word_end > 0) {
                out += " class=\"language-";
                escape_into(info.substr(0, word_end), out);
                out += '"';
            }
            out += '>';
            if (!(ctx.options.highlight && word_end > 0 &&
                  highlight_code(info.substr(0, word_end), block.content, out, ctx.highlight_cache)))
                escape_into(block.content, out);
            out += "</code></pre>";
            cr(out);
            break;
        }
        case BlockKind::blockquote:
            cr(out);
            out += "<blockquote>";
            cr(out);
            render_children(block, ctx, out, false);
            cr(out);
            out += "</blockquote>";
            cr(out);
            break;
        case BlockKind::list:
            cr(out);
            if (block.ordered) {
                out += "<ol";
                if (block.start != 1) {
                    out += " start=\"";
                    out += std::to_string(block.start);
                    out += '"';
                }
                out += '>';
            } else {
                out += "<ul>";
            }
            cr(out);
            for (const auto& item : block.children) render_block(*item, ctx, out, block.tight);
            cr(out);
            out += block.ordered ? "</ol>" : "</ul>";
            cr(out);
            break;
        case BlockKind::list_item: {
            out += "<li>";
            std::string_view rest;
            if (int task = task_marker(block, rest)) {
                render_paragraph_text(rest, ctx, out, tight, task);
                for (std::size_t i = 1; i < block.children.size(); ++i) render_block(*block.children[i], ctx, out, tight);
            } else {
                render_children(block, ctx, out, tight);
            }
            out += "</li>";
            cr(out);
            break;
        }
        case BlockKind::footnote_definition: {
            // Rendered now, shown in the footnotes section at the end; nothing in place.
            if (ctx.footnotes && ctx.footnotes->size() < max_footnotes &&
                std::none_of(ctx.footnotes->begin(), ctx.footnotes->end(),
                             [&](const FootnoteDef& d) { return d.label == block.info; })) {
                FootnoteDef def{block.info, {}};
                render_children(block, ctx, def.html, false);
                ctx.footnotes->push_back(std::move(def));
            }
            break;
        }
        case BlockKind::table: {
            cr(out);
            out += "<table>\n<thead>\n<tr>\n";
            auto cell = [&](const char* tag, std::size_t col, const std::string& text) {
                out += '<';
                out += tag;
                char a = col < block.align.size() ? block.align[col] : 0;
                if (a) out += a == 'l' ? " align=\"left\"" : a == 'c' ? " align=\"center\"" : " align=\"right\"";
                out += '>';
                if (render_inlines(text, ctx.refs, out)) ctx.footnote_placeholders = true;
                out += "</";
                out += tag;
                out += ">\n";
            };
            for (std::size_t c = 0; c < block.rows[0].size(); ++c) cell("th", c, block.rows[0][c]);
            out += "</tr>\n</thead>\n";
            if (block.rows.size() > 1) {
                out += "<tbody>\n";
                for (std::size_t r = 1; r < block.rows.size(); ++r) {
                    out += "<tr>\n";
                    for (std::size_t c = 0; c < block.rows[r].size(); ++c) cell("td", c, block.rows[r][c]);
                    out += "</tr>\n";
                }
                out += "</tbody>\n";
            }
            out += "</table>\n";
            break;
        }
    }
}

namespace {

const std::string* find_def(std::string_view label, const FootnoteDefs& defs, const FootnoteDefs* more) {
    for (const FootnoteDef& d : defs)
        if (d.label == label) return &d.html;
    if (more) {
        for (const FootnoteDef& d : *more)
            if (d.label == label) return &d.html;
    }
    return nullptr;
}

// One pass over the placeholders of `html` for both jobs: with `out`, copy `html` resolving each
// (numbering references in `numbers`); without, only report whether every label is defined.
bool resolve_or_check(std::string_view html, const FootnoteDefs& defs, const FootnoteDefs* more,
                      FootnoteNumbers* numbers, std::string* out) {
    bool all = true;
    std::size_t pos = 0;
    while (pos < html.size()) {
        std::size_t at = html.find(footnote_mark, pos);
        if (out) out->append(html.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
        if (at == std::string_view::npos) break;
        const std::size_t split = html.find(footnote_split, at + 1);
        const std::size_t end = html.find(footnote_mark, split + 1);
        pos = end + 1;
        const std::string_view label = html.substr(at + 1, split - at - 1);
        const bool defined = find_def(label, defs, more) != nullptr;
        all = all && defined;
        if (!out) continue;
        if (!defined) {
            out->append(html.substr(split + 1, end - split - 1));  // no such footnote: the text as written
            continue;
        }
        std::size_t index = 0;
        while (index < numbers->order.size() && numbers->order[index] != label) ++index;
        if (index == numbers->order.size()) {
            numbers->order.emplace_back(label);
            numbers->references.push_back(0);
        }
        const std::string n = std::to_string(static_cast<std::uint32_t>(index + 1));
        const int k = ++numbers->references[index];
        out->append("<sup class=\"footnote-ref\"><a href=\"#fn").append(n).append("\" id=\"fnref").append(n);
        if (k > 1) out->append("-").append(std::to_string(static_cast<std::uint32_t>(k)));
        out->append("\">").append(n).append("</a></sup>");
    }
    return all;
}

}  // namespace

bool footnotes_defined(std::string_view html, const FootnoteDefs& defs, const FootnoteDefs* more) {
    return resolve_or_check(html, defs, more, nullptr, nullptr);
}

void resolve_footnotes(std::string_view html, const FootnoteDefs& defs, const FootnoteDefs* more,
                       FootnoteNumbers& numbers, std::string& out) {
    resolve_or_check(html, defs, more, &numbers, &out);
}

void render_footnote_section(const FootnoteDefs& defs, const FootnoteDefs* more, FootnoteNumbers& numbers,
                             std::string& out) {
    if (numbers.order.empty()) return;
    out += "<section class=\"footnotes\">\n<ol>\n";
    // A definition may reference footnotes not referenced before: they join the end of the list.
    for (std::size_t i = 0; i < numbers.order.size(); ++i) {
        const std::string* html = find_def(numbers.order[i], defs, more);
        std::string body;
        if (html) resolve_footnotes(*html, defs, more, numbers, body);
        const std::string n = std::to_string(static_cast<std::uint32_t>(i + 1));
        std::string back;
        for (int k = 1; k <= numbers.references[i]; ++k) {
            const std::string id = k == 1 ? n : n + "-" + std::to_string(static_cast<std::uint32_t>(k));
            if (k > 1) back += ' ';
            back += "<a href=\"#fnref" + id + "\" class=\"footnote-backref\" aria-label=\"Back to reference " + id +
                    "\">\xE2\x86\xA9";
            if (k > 1) back += "<sup class=\"footnote-ref\">" + std::to_string(static_cast<std::uint32_t>(k)) + "</sup>";
            back += "</a>";
        }
        out += "<li id=\"fn" + n + "\">\n";
        constexpr std::string_view para_end = "</p>\n";
        // The back links end the last paragraph, or follow the content on a line of their own.
        if (body.size() >= para_end.size() && body.compare(body.size() - para_end.size(), para_end.size(), para_end) == 0) {
            out.append(body, 0, body.size() - para_end.size()).append(" ").append(back).append(para_end);
        } else {
            cr(body);
            out.append(body).append(back).append("\n");
        }
        out += "</li>\n";
    }
    out += "</ol>\n</section>\n";
}

}  // namespace detail

namespace {

// A partial last line made only of block-marker characters could still become a list item, a
// heading underline, a fence or a table delimiter row: it is not shown until more text decides.
// Nor is a partial line starting with `|`: table rows appear whole.
bool hold_back_partial(std::string_view line) {
    // A table row (or header row) is shown once complete, not cell by cell as paragraph text.
    std::string_view trimmed = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (!trimmed.empty() && trimmed.front() == '|' && line.size() - trimmed.size() <= 3) return true;
    for (char c : line) {
        if (std::string_view(" \t-=*_+#>`~|:.)0123456789").find(c) == std::string_view::npos) return false;
    }
    return true;
}

// Length of `s` without an incomplete UTF-8 sequence at its end.
std::size_t complete_utf8_prefix(std::string_view s) {
    std::size_t n = s.size();
    for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
        auto b = static_cast<unsigned char>(s[n - back]);
        if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        std::size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

}  // namespace

void StreamRenderer::append(std::string_view delta) {
    if (finished_ || delta.empty()) return;
    source_.reserve(source_.size() + delta.size());
    for (char c : delta) {
        if (pending_cr_) {
            pending_cr_ = false;
            if (c == '\n') continue;  // second half of a CRLF split across deltas
        }
        if (c == '\r') {
            source_ += '\n';
            pending_cr_ = true;
        } else if (c == '\0') {
            source_ += "\xEF\xBF\xBD";
        } else {
            source_ += c;
        }
    }
    advance(false);
}

void StreamRenderer::finish() {
    if (finished_) return;
    advance(true);
    finished_ = true;
}

void StreamRenderer::advance(bool at_end) {
    using detail::Block;
    const std::string_view src = source_;
    std::size_t complete_end = src.rfind('\n');
    complete_end = complete_end == std::string_view::npos || complete_end < stable_offset_ ? stable_offset_
                                                                                           : complete_end + 1;

    detail::BlockParser parser;
    std::vector<std::size_t> line_starts;
    for (std::size_t pos = stable_offset_; pos < complete_end;) {
        std::size_t nl = src.find('\n', pos);
        line_starts.push_back(pos);
        parser.add_line(src.substr(pos, nl - pos));
        pos = nl + 1;
    }
    bytes_parsed_ += complete_end - stable_offset_;

    // The partial last line: all of it at the end, otherwise only once it is more than markers.
    std::string_view partial = src.substr(complete_end);
    if (!at_end) {
        partial = partial.substr(0, complete_utf8_prefix(partial));
        // A trailing `*`, `_` or `~` run may be half of a closing `**`: shown now it would make
        // `**bold*` flash up as `*<em>bold</em>`. It appears with the next character.
        while (!partial.empty() && (partial.back() == '*' || partial.back() == '_' || partial.back() == '~'))
            partial.remove_suffix(1);
    }
    bool with_partial = !partial.empty() && (at_end || !hold_back_partial(partial));

    const std::size_t pass_start = stable_offset_;
    const auto& refs = parser.references();
    std::size_t next_ref = 0;
    auto merge_refs_through = [&](std::size_t top_index, ReferenceMap& into) {
        // Definitions are recorded in source order, each with its top-level block.
        while (next_ref < refs.size() && refs[next_ref].top_index <= top_index) {
            into.emplace(refs[next_ref].label, refs[next_ref].ref);
            ++next_ref;
        }
    };
    auto absolute_start = [&](const Block& b) {
        return b.start_line < line_starts.size() ? line_starts[b.start_line] : complete_end;
    };

    // Blocks that complete lines have closed are final: render each once, into the stable part.
    if (!at_end) {
        std::size_t closed = parser.closed_top_level();
        Block& doc = parser.document();
        // Finished blocks move to the stable part only up to a line where a fresh parse gives the
        // same blocks; a paragraph that a table split off waits for that table.
        while (closed > 0 && closed < doc.children.size() && doc.children[closed]->split_from_paragraph) --closed;
        for (std::size_t i = 0; i < closed; ++i) {
            const Block& block = *doc.children[i];
            if (absolute_start(block) < pass_start) ++finished_block_rerenders_;
            merge_refs_through(i, references_);
            finish_block(block);
            ++finished_blocks_;
            ++block_renders_;
        }
        release_held(false);
        if (closed > 0) {
            std::size_t new_offset =
                closed < doc.children.size() ? absolute_start(*doc.children[closed]) : complete_end;
            // Definitions in paragraphs that vanished between the finished blocks and the new
            // offset would not be parsed again: keep them now.
            while (next_ref < refs.size() && refs[next_ref].line < line_starts.size() &&
                   line_starts[refs[next_ref].line] < new_offset) {
                references_.emplace(refs[next_ref].label, refs[next_ref].ref);
                ++next_ref;
            }
            stable_offset_ = new_offset;
        }
        // Render the open remainder as the tail, as if the reply ended here.
        auto render_tail = [&](detail::BlockParser& p, std::size_t first_block, std::size_t first_ref) {
            p.finish();
            const auto& all_refs = p.references();
            ReferenceMap tail_refs = references_;
            std::size_t tail_ref = first_ref;
            detail::FootnoteDefs tail_defs;
            detail::RenderContext ctx{tail_refs, options_, &tail_defs, &highlight_cache_};
            // The tail renders straight into tail_html_, after the held blocks' resolved HTML
            // of the last append (assumed still right; fixed below when it is not).
            const std::size_t prefix = held_resolved_blocks_ > 0 ? held_resolved_size_ : 0;
            tail_html_.resize(prefix);
            Block& tail_doc = p.document();
            for (std::size_t i = first_block; i < tail_doc.children.size(); ++i) {
                while (tail_ref < all_refs.size() && all_refs[tail_ref].top_index <= i) {
                    tail_refs.emplace(all_refs[tail_ref].label, all_refs[tail_ref].ref);
                    ++tail_ref;
                }
                detail::render_block(*tail_doc.children[i], ctx, tail_html_, false);
                ++block_renders_;
            }
            // As if the reply ended now: held blocks and the tail with the footnotes known so
            // far (undefined ones as text), then the footnotes section.
            // The held blocks' resolved HTML stays at the front of tail_html_ across appends,
            // with the numbering after it: it changes only when held blocks are released or the
            // set of defined labels changes (a definition finished or started in the tail).
            // Otherwise only newly held blocks are resolved, after it.
            bool same_labels = held_resolved_blocks_ > 0 && held_key_defs_ == footnote_defs_.size() &&
                               held_key_labels_.size() == tail_defs.size();
            for (std::size_t i = 0; same_labels && i < tail_defs.size(); ++i)
                same_labels = held_key_labels_[i] == tail_defs[i].label;
            const bool prefix_ok = held_.empty() || (same_labels && held_resolved_blocks_ == held_.size());
            if (prefix_ok && !ctx.footnote_placeholders) {
                // Nothing to resolve: the tail is in place (the usual case), no copy made.
            } else {
                scratch_.assign(tail_html_, prefix);
                tail_bytes_resolved_ += scratch_.size();
                if (held_.empty()) {
                    tail_html_.clear();
                } else {
                    if (same_labels) {
                        tail_html_.resize(prefix);
                    } else {
                        tail_html_.clear();
                        held_numbers_ = footnote_numbers_;
                        held_resolved_blocks_ = 0;
                        held_key_defs_ = footnote_defs_.size();
                        held_key_labels_.clear();
                        for (const detail::FootnoteDef& d : tail_defs) held_key_labels_.push_back(d.label);
                    }
                    for (; held_resolved_blocks_ < held_.size(); ++held_resolved_blocks_) {
                        const std::string& held = held_[held_resolved_blocks_];
                        detail::resolve_footnotes(held, footnote_defs_, &tail_defs, held_numbers_, tail_html_);
                        tail_bytes_resolved_ += held.size();
                    }
                    held_resolved_size_ = tail_html_.size();
                }
            }
            const detail::FootnoteNumbers& before_tail = held_.empty() ? footnote_numbers_ : held_numbers_;
            if (ctx.footnote_placeholders || !before_tail.order.empty()) {
                detail::FootnoteNumbers numbers = before_tail;
                if (!(prefix_ok && !ctx.footnote_placeholders)) {
                    if (ctx.footnote_placeholders)
                        detail::resolve_footnotes(scratch_, footnote_defs_, &tail_defs, numbers, tail_html_);
                    else
                        tail_html_ += scratch_;
                }
                detail::render_footnote_section(footnote_defs_, &tail_defs, numbers, tail_html_);
            } else if (!(prefix_ok && !ctx.footnote_placeholders)) {
                tail_html_ += scratch_;
            }
            ++tail_renders_;
        };
        // A last line starting with `|` right after non-table text is probably a table's header
        // row: shown before its delimiter row arrives it would flash up as a paragraph of pipes.
        auto table_row_like = [&](std::size_t line) {
            std::size_t pos = line_starts[line];
            std::size_t spaces = 0;
            while (pos < src.size() && src[pos] == ' ' && spaces < 3) {
                ++pos;
                ++spaces;
            }
            return pos < src.size() && src[pos] == '|';
        };
        std::size_t lines = line_starts.size();
        if (!with_partial && lines > 0 && line_starts[lines - 1] >= stable_offset_ && table_row_like(lines - 1) &&
            !(lines >= 2 && line_starts[lines - 2] >= stable_offset_ && table_row_like(lines - 2))) {
            detail::BlockParser held;
            std::size_t pos = stable_offset_;
            for (std::size_t line = 0; line < lines; ++line) {
                if (line_starts[line] < stable_offset_) continue;
                if (line == lines - 1) break;
                std::size_t nl = src.find('\n', line_starts[line]);
                held.add_line(src.substr(line_starts[line], nl - line_starts[line]));
                pos = nl + 1;
            }
            bytes_parsed_ += pos - stable_offset_;
            render_tail(held, 0, 0);
            return;
        }
        if (with_partial) parser.add_line(partial);
        render_tail(parser, closed, next_ref);
        return;
    }

    // End of the reply: everything left is final.
    if (with_partial) {
        parser.add_line(partial);
        bytes_parsed_ += partial.size();
    }
    parser.finish();
    Block& doc = parser.document();
    for (std::size_t i = 0; i < doc.children.size(); ++i) {
        const Block& block = *doc.children[i];
        if (absolute_start(block) < pass_start) ++finished_block_rerenders_;
        merge_refs_through(i, references_);
        finish_block(block);
        ++finished_blocks_;
        ++block_renders_;
    }
    release_held(true);
    detail::render_footnote_section(footnote_defs_, nullptr, footnote_numbers_, stable_html_);
    stable_offset_ = src.size();
    tail_html_.clear();
    held_resolved_blocks_ = 0;
}

void StreamRenderer::finish_block(const detail::Block& block) {
    detail::RenderContext ctx{references_, options_, &footnote_defs_, &highlight_cache_};
    std::string html;
    if (held_.empty()) {
        // Straight into the stable part; taken back out only if it holds footnote placeholders.
        const std::size_t start = stable_html_.size();
        detail::render_block(block, ctx, stable_html_, false);
        if (!ctx.footnote_placeholders) return;
        html.assign(stable_html_, start);
        stable_html_.resize(start);
        if (detail::footnotes_defined(html, footnote_defs_, nullptr)) {
            detail::resolve_footnotes(html, footnote_defs_, nullptr, footnote_numbers_, stable_html_);
            return;
        }
    } else {
        detail::render_block(block, ctx, html, false);
        if (html.empty()) return;  // a footnote definition: shown in the section, nothing in place
    }
    // A footnote reference whose definition may still come (or a block behind one): its HTML
    // waits, rendered, until the definition arrives or the reply ends.
    held_.push_back(std::move(html));
    ++footnote_held_blocks_;
}

void StreamRenderer::release_held(bool at_end) {
    std::size_t done = 0;
    while (done < held_.size() && (at_end || detail::footnotes_defined(held_[done], footnote_defs_, nullptr))) {
        detail::resolve_footnotes(held_[done], footnote_defs_, nullptr, footnote_numbers_, stable_html_);
        ++done;
    }
    if (done == 0) return;
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(done));
    held_resolved_blocks_ = 0;  // the numbering before the held blocks changed: resolve them again
}

std::string render_markdown(std::string_view markdown) { return render_markdown(markdown, RenderOptions{}); }

std::string render_markdown(std::string_view markdown, const RenderOptions& options) {
    StreamRenderer renderer(options);
    renderer.append(markdown);
    renderer.finish();
    return renderer.stable_html();
}

}  // namespace confab::markdown
