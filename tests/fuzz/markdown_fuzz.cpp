// Fuzzes the streaming Markdown renderer: the input appended in pieces (control bytes choose the
// cuts) renders exactly like the whole input at once; the stable part only grows; and no output,
// streamed or final, holds active markup: every tag is one the renderer writes, with known
// attributes only, and no href/src with a javascript:, vbscript: or data: URL (data:image/png,
// gif, jpeg or webp allowed in an img src, as markdown.hpp documents).
#include <cstdint>
#include <string>
#include <string_view>

#include "confab/markdown.hpp"
#include "fuzz_support.hpp"

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (lower(s[i]) != prefix[i]) return false;
    }
    return true;
}

// An attribute value as the browser reads it: the renderer writes only &amp; &lt; &gt; &quot;
// (anything else would be a finding too: a numeric reference could smuggle a scheme past a
// filter), then ASCII whitespace and controls dropped, as URL parsing does.
std::string url_as_read(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (c == '&') {
            std::string_view r = v.substr(i);
            char d = 0;
            std::size_t n = 0;
            if (r.substr(0, 5) == "&amp;") d = '&', n = 5;
            else if (r.substr(0, 4) == "&lt;") d = '<', n = 4;
            else if (r.substr(0, 4) == "&gt;") d = '>', n = 4;
            else if (r.substr(0, 6) == "&quot;") d = '"', n = 6;
            FUZZ_CHECK(n != 0, "attribute values hold only the four escapes the renderer writes");
            c = d;
            i += n - 1;
        }
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) continue;
        out.push_back(c);
    }
    return out;
}

void check_url(std::string_view value, bool image) {
    const std::string u = url_as_read(value);
    const bool bad_scheme = starts_with_ci(u, "javascript:") || starts_with_ci(u, "vbscript:") ||
                            starts_with_ci(u, "data:");
    if (!bad_scheme) return;
    const bool safe_image = image && (starts_with_ci(u, "data:image/png") || starts_with_ci(u, "data:image/gif") ||
                                      starts_with_ci(u, "data:image/jpeg") || starts_with_ci(u, "data:image/webp"));
    FUZZ_CHECK(safe_image, "no javascript:/vbscript:/data: URL in href or src");
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> names) {
    for (auto n : names) {
        if (s == n) return true;
    }
    return false;
}

// Every '<' in the HTML opens a tag the renderer writes; text '<' from the input is &lt;.
void check_safe(std::string_view html) {
    std::size_t i = 0;
    while ((i = html.find('<', i)) != std::string_view::npos) {
        std::size_t j = i + 1;
        const bool closing = j < html.size() && html[j] == '/';
        if (closing) ++j;
        std::size_t name_end = j;
        while (name_end < html.size() && ((html[name_end] >= 'a' && html[name_end] <= 'z') ||
                                          (html[name_end] >= '0' && html[name_end] <= '9'))) {
            ++name_end;
        }
        const std::string_view name = html.substr(j, name_end - j);
        FUZZ_CHECK(one_of(name, {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote",
                                 "pre", "code", "em", "strong", "del", "a", "img", "br", "hr", "table",
                                 "thead", "tbody", "tr", "th", "td",
                                 // GFM task lists, footnotes, and the highlighter's token spans
                                 "input", "sup", "section", "span"}),
                   "only the renderer's own tags");
        if (name == "input" && !closing) {
            // A task list box, never a form control a visitor could use.
            const std::string_view tag = html.substr(i, html.find('>', i) - i);
            FUZZ_CHECK(tag.find(" type=\"checkbox\"") != std::string_view::npos &&
                           tag.find(" disabled=\"\"") != std::string_view::npos,
                       "an input is a disabled checkbox");
        }
        // Attributes: name="value", values without '"' or '<'.
        std::size_t k = name_end;
        for (;;) {
            FUZZ_CHECK(k < html.size(), "a tag is closed");
            if (html[k] == '>') break;
            if (html.substr(k, 3) == " />") {
                k += 2;
                break;
            }
            FUZZ_CHECK(html[k] == ' ' && !closing, "attributes follow a space in an opening tag");
            const std::size_t an = k + 1;
            const std::size_t eq = html.find("=\"", an);
            FUZZ_CHECK(eq != std::string_view::npos, "attribute has a quoted value");
            const std::string_view attr = html.substr(an, eq - an);
            FUZZ_CHECK(one_of(attr, {"href", "src", "alt", "title", "rel", "class", "start", "align", "type",
                                     "checked", "disabled", "aria-label", "id"}),
                       "only known attributes (no on...= handler, no style)");
            const std::size_t close = html.find('"', eq + 2);
            FUZZ_CHECK(close != std::string_view::npos, "attribute value is closed");
            const std::string_view value = html.substr(eq + 2, close - eq - 2);
            FUZZ_CHECK(value.find('<') == std::string_view::npos, "no raw '<' in an attribute value");
            if (attr == "href" || attr == "src") check_url(value, attr == "src");
            k = close + 1;
        }
        i = k;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    confab::fuzz::Input in(data, size);
    auto cuts = in.cuts();
    const std::string_view md = in.rest();
    if (md.size() > 4096) return 0;  // pathological nesting is the renderer's tests' business

    const std::string whole = confab::markdown::render_markdown(md);
    check_safe(whole);

    confab::markdown::StreamRenderer r;
    std::string stable;
    for (auto piece : confab::fuzz::split_at(md, cuts)) {
        r.append(piece);
        FUZZ_CHECK(r.stable_html().compare(0, stable.size(), stable) == 0, "the stable HTML only grows");
        stable = r.stable_html();
        check_safe(r.stable_html());
        check_safe(r.tail_html());
    }
    r.finish();
    FUZZ_CHECK(r.tail_html().empty(), "nothing left in the tail after finish");
    FUZZ_CHECK(r.html() == whole, "streamed HTML == one-shot HTML");
    FUZZ_CHECK(r.finished_block_rerenders() == 0, "a finished block is never rendered again");
    return 0;
}
