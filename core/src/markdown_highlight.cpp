// Syntax highlighting of fenced code for the Markdown renderer: one linear pass per block, escaped text in hl-* spans.
//
// Safe by construction: the only markup written is `<span class="hl-...">` and `</span>` around
// code text that goes through escape_into, so no input can produce a tag or an attribute. It is a
// lexer, not a parser: comments, strings, numbers, keywords, literals, built-in types, function
// names before `(`, and HTML tags/attributes or CSS properties, which is what a reader needs from
// colour. Every byte is visited a bounded number of times (no backtracking beyond one token).
#include "markdown_internal.hpp"

#include <algorithm>

namespace confab::markdown::detail {
namespace {

enum class Mode : std::uint8_t { code, markup, css, json };

// Keyword lists are one string each, words separated by spaces (smaller in the wasm bundle than
// tables of string views).
struct Lang {
    Mode mode = Mode::code;
    const char* keywords = "";
    const char* literals = "";
    const char* types = "";
    std::string_view line_comment;  // e.g. "//", "#", "--"; empty: none
    std::uint16_t flags = 0;
};

enum : std::uint16_t {
    block_comments = 1,         // /* ... */
    backtick_strings = 2,       // JS templates, Go raw strings (may span lines)
    single_quote_strings = 4,   // '...' is a string (Rust/C/Go: a char literal, same class)
    triple_quotes = 8,          // Python """...""" and '''...'''
    case_insensitive = 16,      // SQL keywords
    capitalized_types = 32,     // `Foo` is a type/class name
    preprocessor = 64,          // C: `#include` etc. as a keyword
    dollar_vars = 128,          // shell: `$x`, `${x}` (as hl-attr)
    lifetimes = 256,            // Rust: 'a is not a char literal
};
const Lang js{Mode::code,
    "async await break case catch class const continue debugger default delete do else export "
    "extends finally for from function if import in instanceof let new of return static super switch "
    "this throw try typeof var void while with yield as interface type enum implements namespace "
    "declare readonly private protected public abstract keyof satisfies",
    "true false null undefined NaN Infinity",
    "string number boolean any unknown never object symbol bigint void",
    "//", block_comments|backtick_strings|single_quote_strings|capitalized_types};
const Lang python{Mode::code,
    "and as assert async await break class continue def del elif else except finally for from global "
    "if import in is lambda match case nonlocal not or pass raise return try while with yield",
    "True False None",
    "int float str bool list dict set tuple bytes object type",
    "#", single_quote_strings|triple_quotes|capitalized_types};
const Lang json{Mode::json, "", "true false null", "", "", 0};
const Lang bash{Mode::code,
    "if then else elif fi for while until do done case esac function in return export local readonly "
    "declare source exit set unset shift echo cd sudo",
    "true false",
    "",
    "#", single_quote_strings|dollar_vars};
const Lang css{Mode::css, "", "", "", "", block_comments|single_quote_strings};
const Lang markup{Mode::markup, "", "", "", "", single_quote_strings};
const Lang c_cpp{Mode::code,
    "auto break case catch class const constexpr consteval continue co_await co_return co_yield "
    "decltype default delete do else enum explicit export extern final for friend goto if inline "
    "mutable namespace new noexcept operator override private protected public register return "
    "sizeof static static_assert static_cast dynamic_cast reinterpret_cast const_cast struct switch "
    "template this throw try typedef typename union using virtual volatile while concept requires",
    "true false nullptr NULL",
    "void bool char short int long float double signed unsigned size_t int8_t int16_t int32_t "
    "int64_t uint8_t uint16_t uint32_t uint64_t wchar_t char8_t char16_t char32_t",
    "//", block_comments|single_quote_strings|capitalized_types|preprocessor};
const Lang go{Mode::code,
    "break case chan const continue default defer else fallthrough for func go goto if import "
    "interface map package range return select struct switch type var",
    "true false nil iota",
    "bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string "
    "uint uint8 uint16 uint32 uint64 uintptr any",
    "//", block_comments|backtick_strings|single_quote_strings|capitalized_types};
const Lang rust{Mode::code,
    "as async await break const continue crate dyn else enum extern fn for if impl in let loop match "
    "mod move mut pub ref return self Self static struct super trait type unsafe use where while",
    "true false None Some Ok Err",
    "i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str String Vec Option "
    "Result Box",
    "//", block_comments|single_quote_strings|capitalized_types|lifetimes};
const Lang sql{Mode::code,
    "select from where and or not insert into values update set delete create table drop alter add "
    "index on join left right inner outer full cross group by order having limit offset as distinct "
    "union all case when then else end is in like between exists primary key foreign references "
    "default unique with returning begin commit rollback view asc desc if constraint check count sum "
    "avg min max",
    "null true false",
    "int integer bigint smallint text varchar char boolean date timestamp numeric decimal real float "
    "double serial uuid json jsonb blob",
    "--", block_comments|single_quote_strings|case_insensitive};

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'; }
bool is_ident(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool equals_ci(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (x != b[i]) return false;
    }
    return true;
}

bool in_list(std::string_view list, std::string_view word, bool ci) {
    for (std::string_view rest = list; !rest.empty();) {
        const std::size_t space = std::min(rest.find(' '), rest.size());
        if (ci ? equals_ci(word, rest.substr(0, space)) : rest.substr(0, space) == word) return true;
        rest.remove_prefix(std::min(space + 1, rest.size()));
    }
    return false;
}

const Lang* find_lang(std::string_view name) {
    // The names of langs[k] are the k-th '|'-separated group: one packed string is 0.06 KB gzip
    // smaller in the widget's wasm than a table of {string_view, pointer} pairs.
    static const Lang* const langs[] = {&js, &python, &json, &bash, &markup, &css, &c_cpp, &go, &rust, &sql};
    constexpr std::string_view names =
        "js javascript jsx mjs cjs ts typescript tsx|py python|json jsonc|bash sh shell zsh console|"
        "html xml svg xhtml|css|c h cpp c++ cc cxx hpp|go golang|rs rust|sql";
    std::size_t k = 0;
    for (std::string_view rest = names; !rest.empty(); ++k) {
        const std::size_t bar = std::min(rest.find('|'), rest.size());
        if (in_list(rest.substr(0, bar), name, /*ci=*/true)) return langs[k];
        rest.remove_prefix(std::min(bar + 1, rest.size()));
    }
    return nullptr;
}

class Highlighter {
public:
    Highlighter(const Lang& lang, std::string_view code, std::string& out)
        : lang_(lang), s_(code), out_(out), out_start_(out.size()) {}

    // The last line start where no token was open (a block comment, a multi-line string, a tag):
    // highlighting the code from there on its own gives the same HTML. 0 when there was none.
    std::size_t resume_at() const { return resume_at_; }
    // The length of the HTML written for s_[0, resume_at()).
    std::size_t resume_html() const { return resume_html_; }

    void run() {
        switch (lang_.mode) {
            case Mode::markup: markup(); break;
            case Mode::css: css(); break;
            default: code(); break;
        }
    }

private:
    char at(std::size_t i) const { return i < s_.size() ? s_[i] : '\0'; }
    bool starts(std::size_t i, std::string_view p) const { return s_.substr(i, p.size()) == p; }

    void span(const char* cls, std::size_t from, std::size_t to) {
        if (to <= from) return;
        out_ += "<span class=\"";
        out_ += cls;
        out_ += "\">";
        escape_into(s_.substr(from, to - from), out_);
        out_ += "</span>";
    }
    void plain(std::size_t from, std::size_t to) {
        if (to > from) escape_into(s_.substr(from, to - from), out_);
    }

    // A quoted string from i (at the quote): to the closing quote, past backslash escapes; a
    // single-line string also ends at the line end. Returns its end.
    std::size_t string_end(std::size_t i, char q, bool multiline) const {
        std::size_t j = i + 1;
        while (j < s_.size()) {
            char c = s_[j];
            // No escapes in CSS strings' sense here, nor in shell single quotes.
            if (c == '\\' && lang_.mode != Mode::css && !((lang_.flags & dollar_vars) && q == '\'') && j + 1 < s_.size()) {
                j += 2;
                continue;
            }
            if (c == q) return j + 1;
            if (c == '\n' && !multiline) return j;
            ++j;
        }
        return j;
    }

    std::size_t number_end(std::size_t i) const {
        std::size_t j = i;
        while (j < s_.size() && (is_ident(s_[j]) || s_[j] == '.' ||
                                 ((s_[j] == '+' || s_[j] == '-') && j > i && (s_[j - 1] == 'e' || s_[j - 1] == 'E') &&
                                  !(s_[i] == '0' && (at(i + 1) == 'x' || at(i + 1) == 'X')))))
            ++j;
        // `1.method` or a range `0..5`: a trailing dot is not part of the number.
        while (j > i + 1 && s_[j - 1] == '.') --j;
        return j;
    }

    void code() {
        const bool ci = (lang_.flags & case_insensitive) != 0;
        std::size_t plain_from = 0;
        std::size_t i = 0;
        auto flush = [&](std::size_t to) {
            plain(plain_from, to);
            plain_from = to;
        };
        bool line_start = true;  // only spaces so far on this line
        while (i < s_.size()) {
            const char c = s_[i];
            std::size_t end = 0;
            const char* cls = nullptr;
            if (!lang_.line_comment.empty() && starts(i, lang_.line_comment) &&
                // A shell comment starts a word (`${x}#y` is not one).
                (!(lang_.flags & dollar_vars) || i == 0 || s_[i - 1] == ' ' || s_[i - 1] == '\t' || s_[i - 1] == '\n') &&
                !((lang_.flags & preprocessor) && line_start && c == '#')) {
                end = s_.find('\n', i);
                if (end == std::string_view::npos) end = s_.size();
                cls = "hl-com";
            } else if ((lang_.flags & block_comments) && starts(i, "/*")) {
                end = s_.find("*/", i + 2);
                end = end == std::string_view::npos ? s_.size() : end + 2;
                cls = "hl-com";
            } else if ((lang_.flags & preprocessor) && line_start && c == '#') {
                end = i + 1;
                while (end < s_.size() && (s_[end] == ' ' || s_[end] == '\t')) ++end;
                while (end < s_.size() && is_ident(s_[end])) ++end;
                cls = "hl-kw";
            } else if ((lang_.flags & triple_quotes) && (starts(i, "\"\"\"") || starts(i, "'''"))) {
                end = s_.find(s_.substr(i, 3), i + 3);
                end = end == std::string_view::npos ? s_.size() : end + 3;
                cls = "hl-str";
            } else if (c == '"' || (c == '\'' && (lang_.flags & single_quote_strings)) || (c == '`' && (lang_.flags & backtick_strings))) {
                if (c == '\'' && (lang_.flags & lifetimes) && is_ident_start(at(i + 1)) && at(i + 2) != '\'') {
                    end = i + 1;  // a Rust lifetime or label: not a string
                } else {
                    end = string_end(i, c, c == '`');
                    cls = lang_.mode == Mode::json && is_key(end) ? "hl-attr" : "hl-str";
                }
            } else if (is_digit(c) || (c == '.' && is_digit(at(i + 1)))) {
                if (i > 0 && is_ident(s_[i - 1])) {
                    end = i + 1;
                } else {
                    end = number_end(i);
                    cls = "hl-num";
                }
            } else if (c == '-' && lang_.mode == Mode::json && is_digit(at(i + 1))) {
                end = number_end(i + 1);
                cls = "hl-num";
            } else if ((lang_.flags & dollar_vars) && c == '$' && (is_ident_start(at(i + 1)) || at(i + 1) == '{')) {
                end = i + 1;
                if (at(end) == '{') {
                    end = s_.find('}', end);
                    end = end == std::string_view::npos ? s_.size() : end + 1;
                } else {
                    while (end < s_.size() && is_ident(s_[end]) && s_[end] != '$') ++end;
                }
                cls = "hl-attr";
            } else if (is_ident_start(c) && (i == 0 || !is_ident(s_[i - 1]))) {
                end = i;
                while (end < s_.size() && (is_ident(s_[end]) || (lang_.mode != Mode::code && s_[end] == '-'))) {
                    if (s_[end] == '$' && (lang_.flags & dollar_vars)) break;
                    ++end;
                }
                const std::string_view word = s_.substr(i, end - i);
                std::size_t after = end;
                while (after < s_.size() && (s_[after] == ' ' || s_[after] == '\t')) ++after;
                const bool member = i > 0 && s_[i - 1] == '.';
                if (!member && in_list(lang_.keywords, word, ci)) cls = "hl-kw";
                else if (!member && in_list(lang_.literals, word, ci)) cls = "hl-lit";
                else if (!member && in_list(lang_.types, word, ci)) cls = "hl-type";
                else if (at(after) == '(' || ((lang_.flags & lifetimes) && at(end) == '!' && at(end + 1) != '=')) cls = "hl-fn";
                else if ((lang_.flags & capitalized_types) && word[0] >= 'A' && word[0] <= 'Z' && has_lower(word)) cls = "hl-type";
                if ((lang_.flags & lifetimes) && cls && std::string_view(cls) == "hl-fn" && at(end) == '!') ++end;  // a macro: name!
            }
            if (end == 0) {
                if (c == '\n') {
                    line_start = true;
                    flush(i + 1);
                    mark_resume(i + 1);
                } else if (c != ' ' && c != '\t') {
                    line_start = false;
                }
                ++i;
                continue;
            }
            if (cls) {
                flush(i);
                span(cls, i, end);
                plain_from = end;
            }
            line_start = false;
            i = end;
        }
        flush(s_.size());
    }

    static bool has_lower(std::string_view w) {
        return std::any_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    }

    // JSON: a string followed by ':' is a key.
    bool is_key(std::size_t end) const {
        while (end < s_.size() && (s_[end] == ' ' || s_[end] == '\t')) ++end;
        return at(end) == ':';
    }

    // HTML/XML: comments, tag names, attribute names and values; text between tags as is.
    void markup() {
        std::size_t i = 0;
        std::size_t plain_from = 0;
        while (i < s_.size()) {
            if (starts(i, "<!--")) {
                plain(plain_from, i);
                std::size_t end = s_.find("-->", i + 4);
                end = end == std::string_view::npos ? s_.size() : end + 3;
                span("hl-com", i, end);
                i = plain_from = end;
                continue;
            }
            if (s_[i] == '<' && (is_ident_start(at(i + 1)) || at(i + 1) == '/' || at(i + 1) == '!' || at(i + 1) == '?')) {
                plain(plain_from, i);
                std::size_t j = i + 1;
                if (s_[j] == '/' || s_[j] == '!' || s_[j] == '?') ++j;
                plain(i, j);
                std::size_t name_end = j;
                while (name_end < s_.size() && (is_ident(s_[name_end]) || s_[name_end] == '-' || s_[name_end] == ':' ||
                                                s_[name_end] == '.'))
                    ++name_end;
                span("hl-tag", j, name_end);
                j = name_end;
                // Attributes up to '>' (or the end of the code).
                while (j < s_.size() && s_[j] != '>') {
                    const char c = s_[j];
                    if (c == '"' || c == '\'') {
                        std::size_t end = s_.find(c, j + 1);
                        end = end == std::string_view::npos ? s_.size() : end + 1;
                        span("hl-str", j, end);
                        j = end;
                    } else if (is_ident_start(c) || c == '@' || c == ':') {
                        std::size_t end = j + 1;
                        while (end < s_.size() && (is_ident(s_[end]) || s_[end] == '-' || s_[end] == ':' || s_[end] == '.'))
                            ++end;
                        span("hl-attr", j, end);
                        j = end;
                    } else if (c == '<') {
                        break;  // a stray '<': the tag was never closed
                    } else {
                        plain(j, j + 1);
                        ++j;
                    }
                }
                if (j < s_.size() && s_[j] == '>') {
                    plain(j, j + 1);
                    ++j;
                }
                i = plain_from = j;
                continue;
            }
            if (s_[i] == '\n') {
                plain(plain_from, i + 1);
                plain_from = i + 1;
                mark_resume(i + 1);
            }
            ++i;
        }
        plain(plain_from, s_.size());
    }

    // Not at the very end: the code's last line may be the partial line of a stream.
    void mark_resume(std::size_t at) {
        if (at >= s_.size()) return;
        resume_at_ = at;
        resume_html_ = out_.size() - out_start_;
    }

    // CSS (no resume points: the brace depth carries over lines): comments, strings, at-rules, selectors' tag names, property names, numbers with units
    // and #colours.
    void css() {
        std::size_t i = 0;
        std::size_t plain_from = 0;
        int depth = 0;  // inside { } a name before ':' is a property
        auto emit = [&](const char* cls, std::size_t from, std::size_t to) {
            plain(plain_from, from);
            span(cls, from, to);
            plain_from = to;
        };
        while (i < s_.size()) {
            const char c = s_[i];
            if (starts(i, "/*")) {
                std::size_t end = s_.find("*/", i + 2);
                end = end == std::string_view::npos ? s_.size() : end + 2;
                emit("hl-com", i, end);
                i = end;
            } else if (c == '"' || c == '\'') {
                std::size_t end = string_end(i, c, false);
                emit("hl-str", i, end);
                i = end;
            } else if (c == '{') {
                ++depth;
                ++i;
            } else if (c == '}') {
                if (depth > 0) --depth;
                ++i;
            } else if (c == '@' && is_ident_start(at(i + 1))) {
                std::size_t end = i + 1;
                while (end < s_.size() && (is_ident(s_[end]) || s_[end] == '-')) ++end;
                emit("hl-kw", i, end);
                i = end;
            } else if (c == '#' && depth > 0 && is_ident(at(i + 1))) {
                std::size_t end = i + 1;
                while (end < s_.size() && is_ident(s_[end])) ++end;
                emit("hl-num", i, end);
                i = end;
            } else if ((is_digit(c) || (c == '.' && is_digit(at(i + 1)))) && (i == 0 || !is_ident(s_[i - 1]))) {
                std::size_t end = i;
                while (end < s_.size() && (is_digit(s_[end]) || s_[end] == '.')) ++end;
                while (end < s_.size() && ((s_[end] >= 'a' && s_[end] <= 'z') || s_[end] == '%')) ++end;
                emit("hl-num", i, end);
                i = end;
            } else if ((is_ident_start(c) || c == '-') && (i == 0 || !(is_ident(s_[i - 1]) || s_[i - 1] == '-'))) {
                std::size_t end = i;
                while (end < s_.size() && (is_ident(s_[end]) || s_[end] == '-')) ++end;
                std::size_t after = end;
                while (after < s_.size() && (s_[after] == ' ' || s_[after] == '\t')) ++after;
                const char prev = i > 0 ? s_[i - 1] : '\0';
                if (depth > 0 && at(after) == ':') emit("hl-attr", i, end);
                else if (depth > 0 && at(after) == '(') emit("hl-fn", i, end);
                else if (depth == 0 && prev != '.' && prev != '#' && prev != ':' && c != '-') emit("hl-tag", i, end);
                else if (depth > 0 && (s_.substr(i, end - i) == "important" && prev == '!')) emit("hl-kw", i, end);
                i = end;
            } else {
                ++i;
            }
        }
        plain(plain_from, s_.size());
    }

    const Lang& lang_;
    std::string_view s_;
    std::string& out_;
    std::size_t out_start_;
    std::size_t resume_at_ = 0;
    std::size_t resume_html_ = 0;
};

}  // namespace

bool highlight_code(std::string_view language, std::string_view code, std::string& out, HighlightCache* cache) {
    const Lang* lang = find_lang(language);
    if (!lang) return false;
    // No out.reserve(): libc++ (the wasm build) grows to exactly the size asked, so reserving
    // per code block reallocated and copied everything rendered before it every time.
    // A code block that grew since the last call (the open block of a stream, re-rendered per
    // append) resumes after its last complete, token-free line: each line is highlighted once.
    std::size_t from = 0;
    HighlightCache::Entry* entry = nullptr;
    if (cache) {
        for (HighlightCache::Entry& e : cache->entries) {
            if (e.language == language && code.size() >= e.code.size() && (!entry || e.code.size() > entry->code.size()) &&
                code.compare(0, e.code.size(), e.code) == 0)
                entry = &e;
        }
        if (entry) {
            out += entry->html;
            from = entry->code.size();
        }
    }
    const std::size_t html_start = out.size();
    if (cache) cache->bytes_highlighted += code.size() - from;
    Highlighter h(*lang, code.substr(from), out);
    h.run();
    if (cache && h.resume_at() > 0) {
        if (!entry) {
            if (cache->entries.size() < HighlightCache::max_entries) {
                entry = &cache->entries.emplace_back();
            } else {
                entry = &cache->entries.front();
                for (HighlightCache::Entry& e : cache->entries)
                    if (e.used < entry->used) entry = &e;
            }
            entry->language.assign(language);
            entry->code.clear();
            entry->html.clear();
        }
        entry->code.append(code.substr(from, h.resume_at()));
        entry->html.append(out, html_start, h.resume_html());
    }
    if (entry) entry->used = ++cache->clock;
    return true;
}

}  // namespace confab::markdown::detail
