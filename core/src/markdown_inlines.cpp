// Markdown inlines: CommonMark's delimiter and bracket algorithms (after commonmark.js) plus GFM strikethrough and bare-URL autolinks, rendered to safe HTML.
#include "markdown_internal.hpp"

#include <algorithm>

#include <forward_list>

namespace confab::markdown::detail {
namespace {

enum class InlineKind : std::uint8_t { root, text, softbreak, hardbreak, code, emph, strong, strike, link, image, footnote_ref };

// Nodes are small and own nothing: text points into the subject or into the parser's storage
// for decoded text, so a long reply does not cost an allocation per node.
struct Node {
    InlineKind kind = InlineKind::text;
    std::string_view literal;
    int link = -1;  // index of the destination and title of a link or image
    int parent = -1, first = -1, last = -1, prev = -1, next = -1;
};

struct LinkData {
    std::string url;  // decoded destination (not yet percent-encoded)
    std::string title;
};

struct Delimiter {
    char cc = 0;
    std::size_t count = 0;
    std::size_t original = 0;
    int node = -1;
    int prev = -1, next = -1;
    bool can_open = false, can_close = false;
};

struct Bracket {
    int node = -1;
    int prev = -1;
    int prev_delimiter = -1;
    std::size_t index = 0;
    bool image = false;
    bool active = true;
    bool bracket_after = false;
};

bool is_ascii_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Decodes the UTF-8 code point starting at s[i] (invalid bytes read as themselves).
std::uint32_t code_point_at(std::string_view s, std::size_t i) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) return b;
    int len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (len == 1 || i + static_cast<std::size_t>(len) > s.size()) return b;
    std::uint32_t cp = b & (0x3F >> (len - 1));
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0x3F);
    return cp;
}

std::uint32_t code_point_before(std::string_view s, std::size_t i) {
    if (i == 0) return '\n';
    std::size_t j = i - 1;
    while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80 && i - j < 4) --j;
    return code_point_at(s, j);
}

bool is_unicode_whitespace(std::uint32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Unicode P and S categories, approximated by the blocks chat text actually uses.
bool is_unicode_punctuation(std::uint32_t cp) {
    if (cp < 0x80) return is_ascii_punct(static_cast<char>(cp));
    return (cp >= 0xA1 && cp <= 0xBF && cp != 0xAA && cp != 0xB2 && cp != 0xB3 && cp != 0xB5 && cp != 0xB9 &&
            cp != 0xBA && cp != 0xBC && cp != 0xBD && cp != 0xBE) ||
           cp == 0xD7 || cp == 0xF7 || (cp >= 0x2010 && cp <= 0x2027) || (cp >= 0x2030 && cp <= 0x205E) ||
           (cp >= 0x20A0 && cp <= 0x20CF) || (cp >= 0x2190 && cp <= 0x23FF) || (cp >= 0x2500 && cp <= 0x27BF) ||
           (cp >= 0x2E00 && cp <= 0x2E7F) || (cp >= 0x3001 && cp <= 0x303F) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
           (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65);
}

std::string_view trim_ws(std::string_view s) {
    while (!s.empty() && is_ascii_whitespace(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ascii_whitespace(s.back())) s.remove_suffix(1);
    return s;
}

class InlineParser {
public:
    InlineParser(std::string_view subject, const ReferenceMap* refs) : subject_(subject), refs_(refs) {}

    void parse() {
        nodes_.reserve(subject_.size() / 2 + 8);
        nodes_.push_back(Node{InlineKind::root, {}, -1, -1, -1, -1, -1, -1});
        while (pos_ < subject_.size()) parse_inline();
        process_emphasis(-1);
    }
    const std::vector<Node>& nodes() const { return nodes_; }
    const std::vector<LinkData>& links() const { return links_; }

    // `[label]: destination "title"` at the start of the subject.
    std::size_t parse_reference(std::string& label_out, LinkReference& ref) {
        std::size_t start = pos_;
        std::size_t n = parse_link_label();
        if (n == 0) return 0;
        std::string_view raw_label = subject_.substr(start, n);
        if (peek() != ':') {
            pos_ = start;
            return 0;
        }
        ++pos_;
        spnl();
        std::string dest;
        if (!parse_link_destination(dest)) {
            pos_ = start;
            return 0;
        }
        std::size_t before_title = pos_;
        spnl();
        std::string title;
        bool has_title = false;
        if (pos_ != before_title) has_title = parse_link_title(title);
        if (!has_title) {
            title.clear();
            pos_ = before_title;
        }
        bool at_line_end = space_at_end_of_line();
        if (!at_line_end && has_title) {
            // The title is not followed by the line end: still a definition without the title.
            title.clear();
            pos_ = before_title;
            at_line_end = space_at_end_of_line();
        }
        if (!at_line_end) {
            pos_ = start;
            return 0;
        }
        std::string norm = normalize_label(raw_label);
        if (norm.empty()) {
            pos_ = start;
            return 0;
        }
        label_out = std::move(norm);
        ref.url = std::move(dest);
        ref.title = std::move(title);
        return pos_ - start;
    }

private:
    char peek(std::size_t at = 0) const { return pos_ + at < subject_.size() ? subject_[pos_ + at] : '\0'; }
    bool at_end() const { return pos_ >= subject_.size(); }

    int new_node(InlineKind kind, std::string_view literal = {}) {
        Node n;
        n.kind = kind;
        n.literal = literal;
        nodes_.push_back(n);
        return static_cast<int>(nodes_.size() - 1);
    }
    std::string_view keep(std::string text) { return owned_.emplace_front(std::move(text)); }
    int new_link(InlineKind kind, std::string url, std::string title) {
        int id = new_node(kind);
        links_.push_back(LinkData{std::move(url), std::move(title)});
        nodes_[static_cast<std::size_t>(id)].link = static_cast<int>(links_.size() - 1);
        return id;
    }
    void append_child(int parent, int child) {
        Node& c = nodes_[static_cast<std::size_t>(child)];
        c.parent = parent;
        c.next = -1;
        Node& p = nodes_[static_cast<std::size_t>(parent)];
        c.prev = p.last;
        if (p.last >= 0) nodes_[static_cast<std::size_t>(p.last)].next = child;
        else p.first = child;
        p.last = child;
    }
    void unlink(int id) {
        Node& n = nodes_[static_cast<std::size_t>(id)];
        if (n.prev >= 0) nodes_[static_cast<std::size_t>(n.prev)].next = n.next;
        else if (n.parent >= 0) nodes_[static_cast<std::size_t>(n.parent)].first = n.next;
        if (n.next >= 0) nodes_[static_cast<std::size_t>(n.next)].prev = n.prev;
        else if (n.parent >= 0) nodes_[static_cast<std::size_t>(n.parent)].last = n.prev;
        n.parent = n.prev = n.next = -1;
    }
    // The nodes after `id` (a bracket opener's text) become the children of `parent` (the link,
    // image or footnote reference that the brackets turned out to be).
    void adopt_siblings_after(int id, int parent) {
        for (int tmp = nodes_[static_cast<std::size_t>(id)].next; tmp >= 0;) {
            const int next = nodes_[static_cast<std::size_t>(tmp)].next;
            unlink(tmp);
            append_child(parent, tmp);
            tmp = next;
        }
    }
    void insert_after(int id, int sibling) {
        unlink(sibling);
        Node& n = nodes_[static_cast<std::size_t>(id)];
        Node& s = nodes_[static_cast<std::size_t>(sibling)];
        s.next = n.next;
        if (s.next >= 0) nodes_[static_cast<std::size_t>(s.next)].prev = sibling;
        s.prev = id;
        n.next = sibling;
        s.parent = n.parent;
        if (s.next < 0 && s.parent >= 0) nodes_[static_cast<std::size_t>(s.parent)].last = sibling;
    }
    // `text` must outlive the parser: a view of the subject, a literal, or kept storage.
    int append_text(std::string_view text) {
        int id = new_node(InlineKind::text, text);
        append_child(0, id);
        return id;
    }

    void parse_inline() {
        char c = subject_[pos_];
        bool handled = false;
        switch (c) {
            case '\n': handled = handle_newline(); break;
            case '\\': handled = handle_backslash(); break;
            case '`': handled = handle_backticks(); break;
            case '*':
            case '_':
            case '~': handled = handle_delim(c); break;
            case '[': handled = handle_open_bracket(); break;
            case '!': handled = handle_bang(); break;
            case ']': handled = handle_close_bracket(); break;
            case '<': handled = handle_autolink(); break;
            case '&': handled = handle_entity(); break;
            default: handled = handle_bare_url() || handle_string(); break;
        }
        if (!handled) {
            append_text(subject_.substr(pos_, 1));
            ++pos_;
        }
    }

    static bool is_special(char c) {
        return c == '\n' || c == '`' || c == '[' || c == ']' || c == '\\' || c == '!' || c == '<' || c == '&' ||
               c == '*' || c == '_' || c == '~';
    }

    bool handle_string() {
        std::size_t start = pos_;
        while (pos_ < subject_.size() && !is_special(subject_[pos_])) {
            if (pos_ > start && (bare_url_length(pos_) > 0 || email_length(pos_) > 0)) break;
            ++pos_;
        }
        if (pos_ == start) return false;
        append_text(subject_.substr(start, pos_ - start));
        return true;
    }

    bool handle_newline() {
        ++pos_;
        Node& root = nodes_[0];
        if (root.last >= 0) {
            Node& last = nodes_[static_cast<std::size_t>(root.last)];
            if (last.kind == InlineKind::text && !last.literal.empty() && last.literal.back() == ' ') {
                bool hard = last.literal.size() >= 2 && last.literal[last.literal.size() - 2] == ' ';
                while (!last.literal.empty() && last.literal.back() == ' ') last.literal.remove_suffix(1);
                append_child(0, new_node(hard ? InlineKind::hardbreak : InlineKind::softbreak));
                while (peek() == ' ') ++pos_;
                return true;
            }
        }
        append_child(0, new_node(InlineKind::softbreak));
        while (peek() == ' ') ++pos_;
        return true;
    }

    bool handle_backslash() {
        ++pos_;
        if (peek() == '\n') {
            ++pos_;
            append_child(0, new_node(InlineKind::hardbreak));
        } else if (!at_end() && is_ascii_punct(peek())) {
            append_text(subject_.substr(pos_, 1));
            ++pos_;
        } else {
            append_text("\\");
        }
        return true;
    }

    bool handle_backticks() {
        std::size_t start = pos_;
        while (peek() == '`') ++pos_;
        std::size_t ticks = pos_ - start;
        std::size_t after_open = pos_;
        // Once no closing run of this length follows some position, none follows a later one:
        // remembering that keeps a line of stray backticks linear.
        if (ticks < no_closer_.size() && no_closer_[ticks]) {
            append_text(subject_.substr(start, ticks));
            return true;
        }
        std::size_t i = pos_;
        while (i < subject_.size()) {
            if (subject_[i] != '`') {
                ++i;
                continue;
            }
            std::size_t run_start = i;
            while (i < subject_.size() && subject_[i] == '`') ++i;
            if (i - run_start == ticks) {
                std::string contents(subject_.substr(after_open, run_start - after_open));
                for (char& ch : contents)
                    if (ch == '\n') ch = ' ';
                if (contents.size() >= 2 && contents.front() == ' ' && contents.back() == ' ' &&
                    contents.find_first_not_of(' ') != std::string::npos)
                    contents = contents.substr(1, contents.size() - 2);
                append_child(0, new_node(InlineKind::code, keep(std::move(contents))));
                pos_ = i;
                return true;
            }
        }
        // No matching run: the backticks are literal (an unclosed span mid-stream shows as text).
        if (ticks < 256) {
            if (no_closer_.size() <= ticks) no_closer_.resize(ticks + 1, 0);
            no_closer_[ticks] = 1;
        }
        append_text(subject_.substr(start, ticks));
        return true;
    }

    bool handle_delim(char cc) {
        std::size_t start = pos_;
        std::uint32_t before = code_point_before(subject_, pos_);
        while (peek() == cc) ++pos_;
        std::size_t count = pos_ - start;
        std::uint32_t after = at_end() ? '\n' : code_point_at(subject_, pos_);
        bool after_ws = is_unicode_whitespace(after);
        bool after_punct = is_unicode_punctuation(after);
        bool before_ws = is_unicode_whitespace(before);
        bool before_punct = is_unicode_punctuation(before);
        bool left = !after_ws && (!after_punct || before_ws || before_punct);
        bool right = !before_ws && (!before_punct || after_ws || after_punct);
        bool can_open = left;
        bool can_close = right;
        if (cc == '_') {
            can_open = left && (!right || before_punct);
            can_close = right && (!left || after_punct);
        }
        if (cc == '~' && count > 2) can_open = can_close = false;  // GFM: one or two tildes only
        int node = append_text(subject_.substr(start, count));
        if (can_open || can_close) {
            Delimiter d;
            d.cc = cc;
            d.count = d.original = count;
            d.node = node;
            d.prev = last_delim_;
            d.can_open = can_open;
            d.can_close = can_close;
            delims_.push_back(d);
            int id = static_cast<int>(delims_.size() - 1);
            if (last_delim_ >= 0) delims_[static_cast<std::size_t>(last_delim_)].next = id;
            last_delim_ = id;
        }
        return true;
    }

    void remove_delimiter(int id) {
        Delimiter& d = delims_[static_cast<std::size_t>(id)];
        if (d.prev >= 0) delims_[static_cast<std::size_t>(d.prev)].next = d.next;
        if (d.next >= 0) delims_[static_cast<std::size_t>(d.next)].prev = d.prev;
        else last_delim_ = d.prev;
    }

    void process_emphasis(int stack_bottom) {
        int openers_bottom[20];
        for (int& b : openers_bottom) b = stack_bottom;
        int closer = last_delim_;
        while (closer >= 0 && delims_[static_cast<std::size_t>(closer)].prev != stack_bottom)
            closer = delims_[static_cast<std::size_t>(closer)].prev;
        while (closer >= 0) {
            Delimiter& c = delims_[static_cast<std::size_t>(closer)];
            if (!c.can_close) {
                closer = c.next;
                continue;
            }
            int bottom_index = c.cc == '_'   ? static_cast<int>(0 + (c.can_open ? 3 : 0) + c.original % 3)
                               : c.cc == '*' ? static_cast<int>(6 + (c.can_open ? 3 : 0) + c.original % 3)
                                             : static_cast<int>(12 + c.original % 3);
            int opener = c.prev;
            bool found = false;
            while (opener >= 0 && opener != stack_bottom && opener != openers_bottom[bottom_index]) {
                const Delimiter& o = delims_[static_cast<std::size_t>(opener)];
                if (c.cc == '~') {
                    if (o.cc == '~' && o.can_open && o.count == c.count) {
                        found = true;
                        break;
                    }
                } else {
                    bool odd_match = (c.can_open || o.can_close) && c.original % 3 != 0 &&
                                     (o.original + c.original) % 3 == 0;
                    if (o.cc == c.cc && o.can_open && !odd_match) {
                        found = true;
                        break;
                    }
                }
                opener = o.prev;
            }
            int old_closer = closer;
            if (!found) {
                closer = c.next;
                openers_bottom[bottom_index] = delims_[static_cast<std::size_t>(old_closer)].prev;
                if (!delims_[static_cast<std::size_t>(old_closer)].can_open) remove_delimiter(old_closer);
                continue;
            }
            Delimiter& o = delims_[static_cast<std::size_t>(opener)];
            std::size_t use = c.cc == '~' ? c.count : (c.count >= 2 && o.count >= 2 ? 2 : 1);
            InlineKind kind = c.cc == '~' ? InlineKind::strike : use == 1 ? InlineKind::emph : InlineKind::strong;
            o.count -= use;
            c.count -= use;
            int opener_node = o.node;
            int closer_node = c.node;
            nodes_[static_cast<std::size_t>(opener_node)].literal.remove_suffix(use);
            nodes_[static_cast<std::size_t>(closer_node)].literal.remove_suffix(use);
            int emph = new_node(kind);
            int tmp = nodes_[static_cast<std::size_t>(opener_node)].next;
            while (tmp >= 0 && tmp != closer_node) {
                int next = nodes_[static_cast<std::size_t>(tmp)].next;
                unlink(tmp);
                append_child(emph, tmp);
                tmp = next;
            }
            insert_after(opener_node, emph);
            // Delimiters between opener and closer can no longer match.
            delims_[static_cast<std::size_t>(opener)].next = closer;
            delims_[static_cast<std::size_t>(closer)].prev = opener;
            if (delims_[static_cast<std::size_t>(opener)].count == 0) {
                unlink(opener_node);
                remove_delimiter(opener);
            }
            if (delims_[static_cast<std::size_t>(closer)].count == 0) {
                unlink(closer_node);
                int next = delims_[static_cast<std::size_t>(closer)].next;
                remove_delimiter(closer);
                closer = next;
            }
        }
        while (last_delim_ >= 0 && last_delim_ != stack_bottom) remove_delimiter(last_delim_);
    }

    void add_bracket(int node, std::size_t index, bool image) {
        if (last_bracket_ >= 0) brackets_[static_cast<std::size_t>(last_bracket_)].bracket_after = true;
        Bracket b;
        b.node = node;
        b.prev = last_bracket_;
        b.prev_delimiter = last_delim_;
        b.index = index;
        b.image = image;
        brackets_.push_back(b);
        last_bracket_ = static_cast<int>(brackets_.size() - 1);
    }

    bool handle_open_bracket() {
        std::size_t start = pos_;
        ++pos_;
        add_bracket(append_text("["), start, false);
        return true;
    }

    bool handle_bang() {
        std::size_t start = pos_;
        ++pos_;
        if (peek() == '[') {
            ++pos_;
            add_bracket(append_text("!["), start + 1, true);
        } else {
            append_text("!");
        }
        return true;
    }

    // ` *(?:\n *)?` (tabs too).
    void spnl() {
        while (peek() == ' ' || peek() == '\t') ++pos_;
        if (peek() == '\n') {
            ++pos_;
            while (peek() == ' ' || peek() == '\t') ++pos_;
        }
    }

    bool space_at_end_of_line() {
        std::size_t save = pos_;
        while (peek() == ' ' || peek() == '\t') ++pos_;
        if (at_end() || peek() == '\n') {
            if (!at_end()) ++pos_;
            return true;
        }
        pos_ = save;
        return false;
    }

    // `\[(?:[^\\\[\]]|\\.){0,999}\]`: returns the length including brackets, or 0.
    std::size_t parse_link_label() {
        if (peek() != '[') return 0;
        std::size_t i = pos_ + 1;
        while (i < subject_.size() && i - pos_ <= 1000) {
            char c = subject_[i];
            if (c == '\\' && i + 1 < subject_.size()) {
                i += 2;
            } else if (c == '[') {
                return 0;
            } else if (c == ']') {
                std::size_t n = i + 1 - pos_;
                if (n > 1001) return 0;
                pos_ = i + 1;
                return n;
            } else {
                ++i;
            }
        }
        return 0;
    }

    bool parse_link_destination(std::string& out) {
        if (peek() == '<') {
            std::size_t i = pos_ + 1;
            while (i < subject_.size()) {
                char c = subject_[i];
                if (c == '\\' && i + 1 < subject_.size()) {
                    i += 2;
                    continue;
                }
                if (c == '\n' || c == '<') return false;
                if (c == '>') {
                    out = unescape_string(subject_.substr(pos_ + 1, i - pos_ - 1));
                    pos_ = i + 1;
                    return true;
                }
                ++i;
            }
            return false;
        }
        std::size_t start = pos_;
        int open_parens = 0;
        while (!at_end()) {
            char c = peek();
            if (c == '\\' && pos_ + 1 < subject_.size() && is_ascii_punct(subject_[pos_ + 1])) {
                pos_ += 2;
            } else if (c == '(') {
                ++pos_;
                ++open_parens;
            } else if (c == ')') {
                if (open_parens < 1) break;
                ++pos_;
                --open_parens;
            } else if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
                break;
            } else {
                ++pos_;
            }
        }
        if (pos_ == start && peek() != ')') return false;
        if (open_parens != 0) {
            pos_ = start;
            return false;
        }
        out = unescape_string(subject_.substr(start, pos_ - start));
        return true;
    }

    bool parse_link_title(std::string& out) {
        char open = peek();
        char close = open == '(' ? ')' : open;
        if (open != '"' && open != '\'' && open != '(') return false;
        std::size_t i = pos_ + 1;
        while (i < subject_.size()) {
            char c = subject_[i];
            if (c == '\\' && i + 1 < subject_.size()) {
                i += 2;
                continue;
            }
            if (c == close) {
                out = unescape_string(subject_.substr(pos_ + 1, i - pos_ - 1));
                pos_ = i + 1;
                return true;
            }
            if (open == '(' && c == '(') return false;
            ++i;
        }
        return false;
    }

    bool handle_close_bracket() {
        ++pos_;
        std::size_t start = pos_;
        if (last_bracket_ < 0) {
            append_text("]");
            return true;
        }
        Bracket opener = brackets_[static_cast<std::size_t>(last_bracket_)];
        if (!opener.active) {
            append_text("]");
            last_bracket_ = opener.prev;
            return true;
        }
        bool matched = false;
        std::string dest;
        std::string title;
        std::size_t save = pos_;
        if (peek() == '(') {
            ++pos_;
            spnl();
            if (parse_link_destination(dest)) {
                spnl();
                if (pos_ > 0 && is_ascii_whitespace(subject_[pos_ - 1])) {
                    if (parse_link_title(title)) spnl();
                }
                if (peek() == ')') {
                    ++pos_;
                    matched = true;
                }
            }
            if (!matched) {
                pos_ = save;
                title.clear();
            }
        }
        if (!matched && peek() != '[' && is_footnote_label(opener.index, start)) {
            // `[^label]`: a footnote reference; it becomes one if the label is defined (see
            // resolve_footnotes), else it is its text.
            std::string_view label = subject_.substr(opener.index + 2, start - opener.index - 3);
            int fn = new_node(InlineKind::footnote_ref, keep(normalize_label(label)));
            adopt_siblings_after(opener.node, fn);
            append_child(0, fn);
            process_emphasis(opener.prev_delimiter);
            last_bracket_ = opener.prev;
            // `![^1]` is "!" and a footnote reference, as in cmark-gfm.
            if (opener.image) nodes_[static_cast<std::size_t>(opener.node)].literal = "!";
            else unlink(opener.node);
            return true;
        }
        if (!matched) {
            std::size_t before_label = pos_;
            std::size_t n = parse_link_label();
            std::string_view ref_label;
            bool have_label = false;
            if (n > 2) {
                ref_label = subject_.substr(before_label, n);
                have_label = true;
            } else if (!opener.bracket_after) {
                ref_label = subject_.substr(opener.index, start - opener.index);
                have_label = true;
            }
            if (n == 0) pos_ = save;
            if (have_label && refs_) {
                auto it = refs_->find(normalize_label(ref_label));
                if (it != refs_->end()) {
                    dest = it->second.url;
                    title = it->second.title;
                    matched = true;
                }
            }
            if (!matched) pos_ = save;
        }
        if (!matched) {
            last_bracket_ = opener.prev;
            pos_ = start;
            append_text("]");
            return true;
        }
        int link = new_link(opener.image ? InlineKind::image : InlineKind::link, std::move(dest), std::move(title));
        adopt_siblings_after(opener.node, link);
        append_child(0, link);
        process_emphasis(opener.prev_delimiter);
        last_bracket_ = opener.prev;
        unlink(opener.node);
        if (!opener.image) {
            // No links inside links: earlier link openers become plain text.
            for (int b = last_bracket_; b >= 0; b = brackets_[static_cast<std::size_t>(b)].prev)
                if (!brackets_[static_cast<std::size_t>(b)].image) brackets_[static_cast<std::size_t>(b)].active = false;
        }
        return true;
    }

    // subject_[open, close) is `[^label]` with a label as a footnote definition allows it.
    bool is_footnote_label(std::size_t open, std::size_t close) const {
        if (close < open + 4 || subject_[open] != '[' || subject_[open + 1] != '^') return false;
        for (std::size_t i = open + 2; i + 1 < close; ++i) {
            auto c = static_cast<unsigned char>(subject_[i]);
            if (c <= 0x20 || c == 0x7F || c == '[' || c == ']') return false;
        }
        return close - open - 3 <= 999;
    }

    bool handle_autolink() {
        std::string_view rest = subject_.substr(pos_);
        std::size_t close = rest.find('>');
        if (close == std::string_view::npos) return false;
        std::string_view inner = rest.substr(1, close - 1);
        // URI autolink: scheme (2-32 chars) ':' then no spaces, controls or < >.
        std::size_t colon = inner.find(':');
        bool uri = colon != std::string_view::npos && colon >= 2 && colon <= 32 &&
                   ((inner[0] >= 'a' && inner[0] <= 'z') || (inner[0] >= 'A' && inner[0] <= 'Z'));
        if (uri) {
            for (std::size_t i = 1; i < colon && uri; ++i)
                uri = is_alnum(inner[i]) || inner[i] == '.' || inner[i] == '+' || inner[i] == '-';
            for (std::size_t i = colon + 1; i < inner.size() && uri; ++i)
                uri = static_cast<unsigned char>(inner[i]) > 0x20 && inner[i] != '<' && inner[i] != 0x7F;
        }
        bool email = false;
        if (!uri) {
            std::size_t at = inner.find('@');
            email = at != std::string_view::npos && at > 0 && at + 1 < inner.size();
            for (std::size_t i = 0; i < at && email; ++i) {
                char c = inner[i];
                email = is_alnum(c) || std::string_view(".!#$%&'*+/=?^_`{|}~-").find(c) != std::string_view::npos;
            }
            if (email) {
                std::string_view domain = inner.substr(at + 1);
                std::size_t label_len = 0;
                for (std::size_t i = 0; i < domain.size() && email; ++i) {
                    char c = domain[i];
                    if (c == '.') {
                        email = label_len > 0 && domain[i - 1] != '-';
                        label_len = 0;
                    } else if (is_alnum(c) || c == '-') {
                        email = !(label_len == 0 && c == '-') && label_len < 63;
                        ++label_len;
                    } else {
                        email = false;
                    }
                }
                email = email && label_len > 0 && domain.back() != '-';
            }
        }
        if (!uri && !email) return false;
        int link = new_link(InlineKind::link, (email ? "mailto:" : "") + std::string(inner), {});
        append_child(link, new_node(InlineKind::text, inner));
        append_child(0, link);
        pos_ += close + 1;
        return true;
    }

    bool handle_entity() {
        std::string decoded;
        std::size_t n = decode_entity(subject_.substr(pos_), decoded);
        if (n == 0) return false;
        append_text(keep(std::move(decoded)));
        pos_ += n;
        return true;
    }

    // GFM extended autolinks (`www.`, `http://`, `https://`, `ftp://`) at position i; returns the
    // length. As cmark-gfm: `www.` only at the start, after whitespace or after * _ ~ (; a scheme
    // after anything but a letter (so `"http://x"` links, `xhttp://x` does not).
    std::size_t bare_url_length(std::size_t i) const {
        char c = subject_[i];
        if (c != 'h' && c != 'H' && c != 'w' && c != 'W' && c != 'f' && c != 'F') return 0;
        const char before = i > 0 ? subject_[i - 1] : ' ';
        std::string_view rest = subject_.substr(i);
        auto starts_ci = [&](std::string_view prefix) {
            if (rest.size() < prefix.size()) return false;
            for (std::size_t k = 0; k < prefix.size(); ++k) {
                char x = rest[k];
                if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
                if (x != prefix[k]) return false;
            }
            return true;
        };
        std::size_t scheme = 0;
        if (starts_ci("https://")) scheme = 8;
        else if (starts_ci("http://")) scheme = 7;
        else if (starts_ci("ftp://")) scheme = 6;
        else if (starts_ci("www.")) scheme = 0;
        else return 0;
        if (scheme == 0 && !is_ascii_whitespace(before) && before != '*' && before != '_' && before != '~' &&
            before != '(')
            return 0;
        // Nor right after '[' (link text, whose `](` the URL must not swallow: cmark-gfm autolinks
        // after links are parsed, this parser does both in one pass) or '<' (a failed <autolink>).
        if (scheme != 0 && ((before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z') || before == '[' ||
                            before == '<'))
            return 0;
        // Domain: labels of [A-Za-z0-9_-] separated by dots; the last two without underscores.
        std::size_t d = scheme;
        std::size_t dots = 0;
        bool underscore_last = false, underscore_prev = false;
        std::size_t label_len = 0;
        while (d < rest.size()) {
            char x = rest[d];
            if (x == '.') {
                if (label_len == 0) break;
                if (d + 1 >= rest.size() || !(is_alnum(rest[d + 1]) || rest[d + 1] == '_' || rest[d + 1] == '-')) break;
                ++dots;
                underscore_prev = underscore_last;
                underscore_last = false;
                label_len = 0;
            } else if (is_alnum(x) || x == '-' || x == '_' || static_cast<unsigned char>(x) >= 0x80) {
                if (x == '_') underscore_last = true;
                ++label_len;
            } else {
                break;
            }
            ++d;
        }
        if (label_len == 0 || underscore_last || underscore_prev) return 0;
        // `www.` needs a dot after it; a scheme's host may be a single label (cmark-gfm links
        // `http://intranet`).
        if (scheme == 0 && dots < 2) return 0;
        // Path: up to whitespace or '<'.
        std::size_t end = d;
        while (end < rest.size() && !is_ascii_whitespace(rest[end]) && rest[end] != '<') ++end;
        // Trailing punctuation is not part of the link; nor is an unbalanced ')' or an entity-like `&x;`.
        std::size_t open_parens = 0, close_parens = 0;
        for (std::size_t k = 0; k < end; ++k) {
            if (rest[k] == '(') ++open_parens;
            else if (rest[k] == ')') ++close_parens;
        }
        while (end > d) {
            char x = rest[end - 1];
            if (x == '?' || x == '!' || x == '.' || x == ',' || x == ':' || x == '*' || x == '_' || x == '~' ||
                x == '\'' || x == '"') {
                --end;
            } else if (x == ')') {
                if (close_parens <= open_parens) break;
                --close_parens;
                --end;
            } else if (x == ';') {
                std::size_t k = end - 1;
                while (k > d && is_alnum(rest[k - 1])) --k;
                if (k > d && rest[k - 1] == '&' && k < end - 1) end = k - 1;
                else break;
            } else {
                break;
            }
        }
        return end;
    }

    static bool is_email_local(char c) { return is_alnum(c) || c == '.' || c == '+' || c == '-' || c == '_'; }

    // GFM extended email autolink starting at i (the start of a run of local-part characters):
    // local part, '@', a domain of alphanumerics, '-' and '_' with at least one '.', ending in a
    // letter (a final '.' is left out), as cmark-gfm reads it. Each run is scanned once.
    std::size_t email_length(std::size_t i) {
        if (!is_email_local(subject_[i]) || (i > 0 && is_email_local(subject_[i - 1]))) return 0;
        if (i == email_at_) return email_len_;
        email_at_ = i;
        email_len_ = 0;
        const std::size_t n = subject_.size();
        std::size_t j = i;
        while (j < n && is_email_local(subject_[j])) ++j;
        if (j == n || subject_[j] != '@') return 0;
        std::size_t k = j + 1;
        int dots = 0;
        for (; k < n; ++k) {
            char c = subject_[k];
            if (is_alnum(c) || c == '-' || c == '_') continue;
            if (c == '@') return 0;  // a second '@': no email (scanning on made `a@a@a@...` quadratic)
            if (c == '.' && k + 1 < n && is_alnum(subject_[k + 1])) {
                ++dots;
                continue;
            }
            break;
        }
        const char last = subject_[k - 1];
        if (k - j < 2 || dots == 0 || !((last >= 'a' && last <= 'z') || (last >= 'A' && last <= 'Z')))
            return 0;
        email_len_ = k - i;
        return email_len_;
    }

    bool handle_bare_url() {
        if (std::size_t n = email_length(pos_)) {
            std::string_view text = subject_.substr(pos_, n);
            int link = new_link(InlineKind::link, "mailto:" + std::string(text), {});
            append_child(link, new_node(InlineKind::text, text));
            append_child(0, link);
            pos_ += n;
            return true;
        }
        std::size_t n = bare_url_length(pos_);
        if (n == 0) return false;
        std::string_view text = subject_.substr(pos_, n);
        bool www = text[0] == 'w' || text[0] == 'W';
        int link = new_link(InlineKind::link, (www ? "http://" : "") + std::string(text), {});
        append_child(link, new_node(InlineKind::text, text));
        append_child(0, link);
        pos_ += n;
        return true;
    }

    std::string_view subject_;
    const ReferenceMap* refs_;
    std::size_t pos_ = 0;
    std::vector<Node> nodes_;
    std::vector<Delimiter> delims_;
    int last_delim_ = -1;
    std::vector<Bracket> brackets_;
    int last_bracket_ = -1;
    // Plain containers on purpose: std::vector<bool>'s bit copying and std::deque's block map cost
    // the widget's wasm 1.7 KB gzip (3.5 KB raw) more than a std::string of flags and a
    // std::forward_list (whose nodes, like a deque's elements, never move: views into them stay valid).
    std::string no_closer_;  // by backtick run length: 1 once no closing run of that length follows
    std::vector<LinkData> links_;
    std::forward_list<std::string> owned_;
    std::size_t email_at_ = std::string_view::npos;  // the run email_length() last scanned
    std::size_t email_len_ = 0;
};

// Renders the inline tree without recursion (a hostile reply may nest emphasis thousands deep).
// Inside an image only the text goes out, as its alt attribute; inside a link, nested links
// (bare URLs in link text) render as their text because HTML cannot nest anchors.
void render_nodes(const std::vector<Node>& nodes, const std::vector<LinkData>& links, std::string& out) {
    auto at = [&](int id) -> const Node& { return nodes[static_cast<std::size_t>(id)]; };
    int link_depth = 0;
    int alt_depth = 0;
    auto tag_name = [](InlineKind kind) {
        return kind == InlineKind::emph ? "em" : kind == InlineKind::strong ? "strong" : "del";
    };
    auto enter = [&](int id) {
        const Node& n = at(id);
        switch (n.kind) {
            case InlineKind::text: escape_into(n.literal, out); break;
            case InlineKind::code:
                if (alt_depth == 0) out += "<code>";
                escape_into(n.literal, out);
                if (alt_depth == 0) out += "</code>";
                break;
            case InlineKind::softbreak: out += alt_depth ? " " : "\n"; break;
            case InlineKind::hardbreak: out += alt_depth ? " " : "<br />\n"; break;
            case InlineKind::emph:
            case InlineKind::strong:
            case InlineKind::strike:
                if (alt_depth == 0) {
                    out += '<';
                    out += tag_name(n.kind);
                    out += '>';
                }
                break;
            case InlineKind::link:
                if (alt_depth == 0 && link_depth == 0) {
                    const LinkData& l = links[static_cast<std::size_t>(n.link)];
                    out += "<a";
                    if (is_safe_url(l.url, false)) {
                        out += " href=\"";
                        escape_into(normalize_uri(l.url), out);
                        out += '"';
                    }
                    if (!l.title.empty()) {
                        out += " title=\"";
                        escape_into(l.title, out);
                        out += '"';
                    }
                    out += " rel=\"nofollow noopener noreferrer\">";
                }
                ++link_depth;
                break;
            case InlineKind::image:
                if (alt_depth == 0) {
                    out += "<img";
                    if (is_safe_url(links[static_cast<std::size_t>(n.link)].url, true)) {
                        out += " src=\"";
                        escape_into(normalize_uri(links[static_cast<std::size_t>(n.link)].url), out);
                        out += '"';
                    }
                    out += " alt=\"";
                }
                ++alt_depth;
                break;
            case InlineKind::footnote_ref:
                // Placeholder with its fallback (the bracketed text); inside a link or an image's
                // alt text only the text, as a footnote link cannot nest there.
                if (alt_depth == 0 && link_depth == 0) {
                    out += footnote_mark;
                    out.append(n.literal);
                    out += footnote_split;
                }
                out += "[";
                break;
            case InlineKind::root: break;
        }
    };
    auto leave = [&](int id) {
        const Node& n = at(id);
        switch (n.kind) {
            case InlineKind::emph:
            case InlineKind::strong:
            case InlineKind::strike:
                if (alt_depth == 0) {
                    out += "</";
                    out += tag_name(n.kind);
                    out += '>';
                }
                break;
            case InlineKind::link:
                --link_depth;
                if (alt_depth == 0 && link_depth == 0) out += "</a>";
                break;
            case InlineKind::footnote_ref:
                out += "]";
                if (alt_depth == 0 && link_depth == 0) out += footnote_mark;
                break;
            case InlineKind::image:
                --alt_depth;
                if (alt_depth == 0) {
                    out += '"';
                    const std::string& title = links[static_cast<std::size_t>(n.link)].title;
                    if (!title.empty()) {
                        out += " title=\"";
                        escape_into(title, out);
                        out += '"';
                    }
                    out += " />";
                }
                break;
            default: break;
        }
    };
    int cur = at(0).first;
    while (cur >= 0) {
        enter(cur);
        if (at(cur).first >= 0) {
            cur = at(cur).first;
            continue;
        }
        leave(cur);
        while (cur >= 0 && at(cur).next < 0) {
            cur = at(cur).parent;
            if (cur <= 0) {
                cur = -1;
                break;
            }
            leave(cur);
        }
        if (cur >= 0) cur = at(cur).next;
    }
}


// Simple Unicode case folding for the scripts chat text uses most (Latin-1, Latin Extended-A,
// Greek, Cyrillic); other characters compare as they are.
void append_folded(std::uint32_t cp, std::string& out) {
    if (cp >= 'A' && cp <= 'Z') cp += 0x20;
    else if (cp == 0xDF || cp == 0x1E9E) {
        out += "ss";
        return;
    } else if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) ||
               (cp >= 0x410 && cp <= 0x42F)) {
        cp += 0x20;
    } else if (cp >= 0x400 && cp <= 0x40F) {
        cp += 0x50;
    } else if (cp >= 0x100 && cp <= 0x17F && cp % 2 == 0 && cp != 0x130 && cp != 0x138) {
        cp += 1;
    } else if (cp == 0x3C2) {
        cp = 0x3C3;  // final sigma folds to sigma
    }
    append_utf8(cp, out);
}

}  // namespace

std::string normalize_label(std::string_view label) {
    // Strip the brackets, collapse internal whitespace, fold case.
    if (label.size() >= 2 && label.front() == '[' && label.back() == ']') label = label.substr(1, label.size() - 2);
    label = trim_ws(label);
    std::string out;
    bool space = false;
    for (std::size_t i = 0; i < label.size();) {
        char c = label[i];
        if (is_ascii_whitespace(c)) {
            space = true;
            ++i;
            continue;
        }
        if (space) out += ' ';
        space = false;
        auto b = static_cast<unsigned char>(c);
        if (b < 0x80) {
            out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
            ++i;
            continue;
        }
        std::size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        std::uint32_t cp = code_point_at(label, i);
        if (len == 1 || cp == b) {
            out += c;  // not valid UTF-8: keep the byte
            ++i;
            continue;
        }
        append_folded(cp, out);
        i += len;
    }
    return out;
}

std::size_t parse_reference(std::string_view text, std::string& label, LinkReference& ref) {
    InlineParser parser(text, nullptr);
    return parser.parse_reference(label, ref);
}

bool render_inlines(std::string_view text, const ReferenceMap& refs, std::string& out) {
    InlineParser parser(trim_ws(text), &refs);
    parser.parse();
    render_nodes(parser.nodes(), parser.links(), out);
    // Whether a footnote placeholder may have been written (one per footnote_ref node at most).
    return std::any_of(parser.nodes().begin(), parser.nodes().end(),
                       [](const Node& n) { return n.kind == InlineKind::footnote_ref; });
}

}  // namespace confab::markdown::detail
