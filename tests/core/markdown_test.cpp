// Tests of the streaming Markdown renderer: constructs, streaming == one-shot at every split, safety (XSS corpus), cost counters.
#include "confab/markdown.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using confab::markdown::render_markdown;
using confab::markdown::RenderOptions;
using confab::markdown::StreamRenderer;

std::string md(std::string_view text) { return render_markdown(text); }
// Without syntax highlighting: the HTML CommonMark specifies for code blocks.
constexpr RenderOptions plain_code{false};
std::string md_plain(std::string_view text) { return render_markdown(text, plain_code); }
std::string check_safe_html(std::string_view html);  // below, with the XSS corpus

// ---------------------------------------------------------------------------------------------
// Constructs

TEST(MarkdownBlocks, ParagraphsAndSoftBreaks) {
    EXPECT_EQ(md("hello\nworld\n\nnext"), "<p>hello\nworld</p>\n<p>next</p>\n");
    EXPECT_EQ(md(""), "");
    EXPECT_EQ(md("\n\n  \n"), "");
}

TEST(MarkdownBlocks, AtxAndSetextHeadings) {
    EXPECT_EQ(md("# One\n## Two ##\n###### Six"), "<h1>One</h1>\n<h2>Two</h2>\n<h6>Six</h6>\n");
    EXPECT_EQ(md("####### seven"), "<p>####### seven</p>\n");
    EXPECT_EQ(md("#hashtag"), "<p>#hashtag</p>\n");
    EXPECT_EQ(md("Title\n=====\nSub\n---"), "<h1>Title</h1>\n<h2>Sub</h2>\n");
}

TEST(MarkdownBlocks, ThematicBreaks) {
    EXPECT_EQ(md("a\n\n***\n- - -\n___"), "<p>a</p>\n<hr />\n<hr />\n<hr />\n");
}

TEST(MarkdownBlocks, FencedCodeWithLanguageClass) {
    EXPECT_EQ(md_plain("```python\nprint(1 < 2)\n```"),
              "<pre><code class=\"language-python\">print(1 &lt; 2)\n</code></pre>\n");
    EXPECT_EQ(md("~~~\n<b>&amp;\n~~~"), "<pre><code>&lt;b&gt;&amp;amp;\n</code></pre>\n");
    // The language is one word and is escaped inside the attribute.
    EXPECT_EQ(md("```\"onmouseover=\"x extra\ncode\n```"),
              "<pre><code class=\"language-&quot;onmouseover=&quot;x\">code\n</code></pre>\n");
    // An unclosed fence runs to the end.
    EXPECT_EQ(md_plain("```js\nlet a;\n"), "<pre><code class=\"language-js\">let a;\n</code></pre>\n");
    // Highlighted (the default): the same text, tokens in spans.
    EXPECT_EQ(md("```js\nlet a;\n"), "<pre><code class=\"language-js\"><span class=\"hl-kw\">let</span> a;\n</code></pre>\n");
}

TEST(MarkdownBlocks, IndentedCode) {
    EXPECT_EQ(md("    int x;\n\n    y\n\ntext"), "<pre><code>int x;\n\ny\n</code></pre>\n<p>text</p>\n");
}

TEST(MarkdownBlocks, TightLooseNestedAndOrderedLists) {
    EXPECT_EQ(md("- a\n- b"), "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n");
    EXPECT_EQ(md("- a\n\n- b"), "<ul>\n<li>\n<p>a</p>\n</li>\n<li>\n<p>b</p>\n</li>\n</ul>\n");
    EXPECT_EQ(md("1. one\n   - nested\n     * deeper\n2. two"),
              "<ol>\n<li>one\n<ul>\n<li>nested\n<ul>\n<li>deeper</li>\n</ul>\n</li>\n</ul>\n</li>\n"
              "<li>two</li>\n</ol>\n");
    EXPECT_EQ(md("3) three\n4) four"), "<ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>\n");
    // A list that does not start at 1 cannot interrupt a paragraph.
    EXPECT_EQ(md("In 1999\n2. was"), "<p>In 1999\n2. was</p>\n");
}

TEST(MarkdownBlocks, Blockquotes) {
    EXPECT_EQ(md("> quote\ncontinued\n> > nested"),
              "<blockquote>\n<p>quote\ncontinued</p>\n<blockquote>\n<p>nested</p>\n</blockquote>\n</blockquote>\n");
}

TEST(MarkdownBlocks, GfmTablesWithAlignment) {
    EXPECT_EQ(md("| Left | Center | Right | None |\n|:-----|:------:|------:|------|\n| a | *b* | `c\\|` | \\| |\n"
                 "| only one |\n\nafter"),
              "<table>\n<thead>\n<tr>\n<th align=\"left\">Left</th>\n<th align=\"center\">Center</th>\n"
              "<th align=\"right\">Right</th>\n<th>None</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n"
              "<td align=\"left\">a</td>\n<td align=\"center\"><em>b</em></td>\n"
              "<td align=\"right\"><code>c|</code></td>\n<td>|</td>\n</tr>\n<tr>\n<td align=\"left\">only one</td>\n"
              "<td align=\"center\"></td>\n<td align=\"right\"></td>\n<td></td>\n</tr>\n</tbody>\n</table>\n"
              "<p>after</p>\n");
    // Lines above the header row stay a paragraph; a mismatched delimiter row is not a table.
    EXPECT_EQ(md("intro\n| a | b |\n| - | - |"),
              "<p>intro</p>\n<table>\n<thead>\n<tr>\n<th>a</th>\n<th>b</th>\n</tr>\n</thead>\n</table>\n");
    EXPECT_EQ(md("| a | b |\n| - |"), "<p>| a | b |\n| - |</p>\n");
}

TEST(MarkdownInlines, EmphasisStrongStrike) {
    EXPECT_EQ(md("*a* _b_ **c** __d__ ***e*** ~~f~~"),
              "<p><em>a</em> <em>b</em> <strong>c</strong> <strong>d</strong> <em><strong>e</strong></em> "
              "<del>f</del></p>\n");
    EXPECT_EQ(md("snake_case_name and 2*3*4"), "<p>snake_case_name and 2<em>3</em>4</p>\n");
    EXPECT_EQ(md("**bold"), "<p>**bold</p>\n");
    EXPECT_EQ(md("a ~~~not strike~~~ b"), "<p>a ~~~not strike~~~ b</p>\n");
}

TEST(MarkdownInlines, CodeSpans) {
    EXPECT_EQ(md("`a <b>` `` c`d `` `open"), "<p><code>a &lt;b&gt;</code> <code>c`d</code> `open</p>\n");
}

TEST(MarkdownInlines, LinksImagesAndTitles) {
    EXPECT_EQ(md("[text](https://a.example/x?y=1&z=2 \"Title\")"),
              "<p><a href=\"https://a.example/x?y=1&amp;z=2\" title=\"Title\" rel=\"nofollow noopener noreferrer\">"
              "text</a></p>\n");
    EXPECT_EQ(md("![alt *text*](/img.png 'T')"), "<p><img src=\"/img.png\" alt=\"alt text\" title=\"T\" /></p>\n");
    EXPECT_EQ(md("[a](<b c>)"), "<p><a href=\"b%20c\" rel=\"nofollow noopener noreferrer\">a</a></p>\n");
    EXPECT_EQ(md("[ref]: /url \"T\"\n\nsee [ref] and [x][ref]"),
              "<p>see <a href=\"/url\" title=\"T\" rel=\"nofollow noopener noreferrer\">ref</a> and "
              "<a href=\"/url\" title=\"T\" rel=\"nofollow noopener noreferrer\">x</a></p>\n");
    // Half a link is text.
    EXPECT_EQ(md("[text](htt"), "<p>[text](htt</p>\n");
    // Deliberate difference from CommonMark: a definition applies from its own top-level block
    // on, so a finished block never changes when a later definition streams in.
    EXPECT_EQ(md("[later]\n\n[later]: /url"), "<p>[later]</p>\n");
    EXPECT_EQ(md("> [q]: /in-quote\n\n[q]"), "<blockquote>\n</blockquote>\n<p><a href=\"/in-quote\" "
                                                "rel=\"nofollow noopener noreferrer\">q</a></p>\n");
}

TEST(MarkdownInlines, Autolinks) {
    EXPECT_EQ(md("<https://x.example/a> <me@mail.example>"),
              "<p><a href=\"https://x.example/a\" rel=\"nofollow noopener noreferrer\">https://x.example/a</a> "
              "<a href=\"mailto:me@mail.example\" rel=\"nofollow noopener noreferrer\">me@mail.example</a></p>\n");
    EXPECT_EQ(md("Visit https://example.com/path_(x). Or www.example.org, ok?"),
              "<p>Visit <a href=\"https://example.com/path_(x)\" rel=\"nofollow noopener noreferrer\">"
              "https://example.com/path_(x)</a>. Or <a href=\"http://www.example.org\" "
              "rel=\"nofollow noopener noreferrer\">www.example.org</a>, ok?</p>\n");
    // A bare URL inside link text does not nest anchors.
    EXPECT_EQ(md("[https://a.example](https://b.example)"),
              "<p><a href=\"https://b.example\" rel=\"nofollow noopener noreferrer\">https://a.example</a></p>\n");
}

TEST(MarkdownInlines, HardBreaksEscapesEntities) {
    EXPECT_EQ(md("a  \nb\\\nc"), "<p>a<br />\nb<br />\nc</p>\n");
    EXPECT_EQ(md("\\*not em\\* \\<b\\>"), "<p>*not em* &lt;b&gt;</p>\n");
    EXPECT_EQ(md("&copy; &#169; &#xA9; &amp; &bogus; &#0;"), "<p>\u00A9 \u00A9 \u00A9 &amp; &amp;bogus; \uFFFD</p>\n");
}

TEST(MarkdownInlines, RawHtmlIsEscaped) {
    EXPECT_EQ(md("<b>bold</b>"), "<p>&lt;b&gt;bold&lt;/b&gt;</p>\n");
    EXPECT_EQ(md("<div>\nblock\n</div>"), "<p>&lt;div&gt;\nblock\n&lt;/div&gt;</p>\n");
}

TEST(MarkdownInput, LineEndingsAndNul) {
    EXPECT_EQ(md("a\r\nb\rc\n"), md("a\nb\nc\n"));
    EXPECT_EQ(md(std::string_view("a\0b", 3)), "<p>a\uFFFDb</p>\n");
    StreamRenderer r;
    r.append("# x\r");
    r.append("\nnext");
    r.finish();
    EXPECT_EQ(r.html(), "<h1>x</h1>\n<p>next</p>\n");
}

// ---------------------------------------------------------------------------------------------
// Streaming

const std::vector<std::string>& sample_replies() {
    static const std::vector<std::string> samples = {
        "# Getting started\n\nHere is **how** to do it, with *emphasis* and `inline code`.\n\n"
        "## Steps\n\n1. Install the package:\n   ```bash\n   npm install confab\n   ```\n"
        "2. Import it\n   - in ESM: `import`\n   - in CJS: `require`\n     * nested deeper\n3. Done!\n\n"
        "See [the docs](https://docs.example.com/start \"Docs\") or <https://example.com>.\n",

        "Sure! Here's a comparison:\n\n| Feature | Plan A | Plan B |\n|:--------|:------:|-------:|\n"
        "| Price | $10 | $20 |\n| Seats | 1 | **5** |\n\n> Note: prices\n> change *often*.\n\n"
        "Setext title\n------------\n\nDone ~~maybe~~ definitely.  \nNew line after a hard break.\n",

        "```python\ndef f(x):\n    return x * 2  # <b>not html</b>\n```\n\nThen call `f(21)`, which gives **42**.\n\n"
        "- item one\n- item two\n\n  with a second paragraph\n- item three\n\n---\n\n"
        "    indented code\n    block\n\nVisit www.example.org/path_(1) or email <me@example.com>.\n\n"
        "[ref]: https://ref.example/\n\nUse [ref] and ![an image](https://img.example/a.png).\n",

        "Unicode: caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80 emoji, entities &amp; &copy; &#x1F600;\n\n"
        "* star list\n* with `code | pipes`\n\n+ plus list\n\n10. ten\n11. eleven\n\n"
        "Final paragraph with a [half link](https://never.closed and **unclosed bold\n",
    };
    return samples;
}

bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto b = static_cast<unsigned char>(s[i]);
        std::size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

TEST(MarkdownStreaming, EverySplitPointEqualsOneShot) {
    for (const std::string& sample : sample_replies()) {
        const std::string expected = render_markdown(sample);
        for (std::size_t i = 0; i <= sample.size(); ++i) {
            StreamRenderer r;
            r.append(std::string_view(sample).substr(0, i));
            ASSERT_EQ(expected.compare(0, r.stable_html().size(), r.stable_html()), 0)
                << "stable part is not a prefix of the final HTML, split at " << i << " of:\n" << sample;
            r.append(std::string_view(sample).substr(i));
            r.finish();
            ASSERT_EQ(r.html(), expected) << "split at " << i << " of:\n" << sample;
            EXPECT_TRUE(r.tail_html().empty());
        }
    }
}

TEST(MarkdownStreaming, ByteByByteStableOnlyGrowsAndTailIsValidUtf8) {
    for (const std::string& sample : sample_replies()) {
        const std::string expected = render_markdown(sample);
        StreamRenderer r;
        std::string previous_stable;
        for (char c : sample) {
            r.append(std::string_view(&c, 1));
            const std::string& stable = r.stable_html();
            ASSERT_EQ(stable.compare(0, previous_stable.size(), previous_stable), 0) << "stable part changed";
            ASSERT_EQ(expected.compare(0, stable.size(), stable), 0) << "stable part is not final";
            ASSERT_TRUE(is_valid_utf8(r.tail_html())) << r.tail_html();
            ASSERT_EQ(r.html(), stable + r.tail_html());
            previous_stable = stable;
        }
        r.finish();
        EXPECT_EQ(r.html(), expected);
        EXPECT_EQ(r.finished_block_rerenders(), 0u);
    }
}

TEST(MarkdownStreaming, NewStableHtmlPiecesRebuildTheDocument) {
    // What the widget does: append each new stable piece once, replace the tail.
    for (const std::string& sample : sample_replies()) {
        StreamRenderer r;
        std::string dom_stable;
        std::size_t pieces = 0;
        for (std::size_t i = 0; i < sample.size(); i += 5) {
            r.append(std::string_view(sample).substr(i, 5));
            std::string piece = r.take_new_stable_html();
            pieces += piece.empty() ? 0 : 1;
            dom_stable += piece;
            ASSERT_EQ(dom_stable + r.tail_html(), r.html());
        }
        r.finish();
        dom_stable += r.take_new_stable_html();
        EXPECT_EQ(dom_stable, render_markdown(sample));
        EXPECT_EQ(r.take_new_stable_html(), "");
        EXPECT_GT(pieces, 2u);
    }
}

TEST(MarkdownStreaming, RandomTokenSizedChunksEqualOneShot) {
    std::mt19937 rng(20261123);  // fixed seed: the same chunkings every run
    for (const std::string& sample : sample_replies()) {
        const std::string expected = render_markdown(sample);
        for (int round = 0; round < 50; ++round) {
            StreamRenderer r;
            std::size_t pos = 0;
            while (pos < sample.size()) {
                std::size_t n = std::uniform_int_distribution<std::size_t>(1, 12)(rng);
                r.append(std::string_view(sample).substr(pos, n));
                pos += n;
            }
            r.finish();
            ASSERT_EQ(r.html(), expected) << "round " << round;
        }
    }
}

void expect_every_split_matches(const std::string& doc) {
    const std::string expected = render_markdown(doc);
    for (std::size_t i = 0; i <= doc.size(); ++i) {
        StreamRenderer r;
        r.append(std::string_view(doc).substr(0, i));
        ASSERT_EQ(expected.compare(0, r.stable_html().size(), r.stable_html()), 0) << "split " << i << ":\n" << doc;
        r.append(std::string_view(doc).substr(i));
        r.finish();
        ASSERT_EQ(r.html(), expected) << "split " << i << ":\n" << doc;
    }
}

TEST(MarkdownStreaming, TableSplitOffAParagraphIsNotARestartPoint) {
    // Regression (found by the random-document test): the header row was a continuation line of
    // the paragraph above; parsed alone it reads as indented code or a list item.
    expect_every_split_matches("text\n\t| a | b |\n|---|:-:|\n| 1 | 2 |\n\nafter\n");
    expect_every_split_matches("_\n2) ** > x|y\n-|-\n)```\n\n- * * *\n");
}

TEST(MarkdownStreaming, RandomDocumentsStreamLikeOneShot) {
    // Random mixes of block and inline syntax, streamed in random chunks.
    static const std::vector<std::string> parts = {
        "# h\n", "para text ", "*em* ", "**st", "** ", "_u_ ", "~~s~~ ", "`c` ", "``", "\n", "\n\n", "- ", "  - ",
        "1. ", "2) ", "> ", ">", "```js\n", "```\n", "~~~\n", "    code\n", "| a | b |\n", "|---|:-:|\n",
        "| 1 | 2 |\n", "[l](/u \"t\") ", "[r]\n", "[r]: /ref\n", "![i](x.png) ", "<http://a.b> ", "https://x.com/p. ",
        "www.a.org ", "---\n", "===\n", "text\n", "  ", "\t", "&amp; ", "\\* ", "  \n", "\\\n", "[", "]", "(", ")",
        "*", "_", "<b>", "\r\n", "\r", "10. ", "+ ", "* * *\n", "setext\n--\n", "\xc3\xa9", "| x |\n", "x|y\n-|-\n",
        "    - ", "     x\n", "\"title\"\n", "> > ", "1.\n", "-\n", "\t- ", "[r][]", "[x][r]", "![r]", "<a@b.c>",
    };
    std::mt19937 rng(7);
    for (int doc_index = 0; doc_index < 300; ++doc_index) {
        std::string doc;
        int n = std::uniform_int_distribution<int>(1, 30)(rng);
        for (int i = 0; i < n; ++i) doc += parts[std::uniform_int_distribution<std::size_t>(0, parts.size() - 1)(rng)];
        const std::string expected = render_markdown(doc);
        ASSERT_EQ(check_safe_html(expected), "") << doc;
        for (int round = 0; round < 4; ++round) {
            StreamRenderer r;
            for (std::size_t pos = 0; pos < doc.size();) {
                std::size_t k = std::uniform_int_distribution<std::size_t>(1, round == 0 ? 1 : 9)(rng);
                r.append(std::string_view(doc).substr(pos, k));
                pos += k;
                ASSERT_EQ(expected.compare(0, r.stable_html().size(), r.stable_html()), 0) << doc;
            }
            r.finish();
            ASSERT_EQ(r.html(), expected) << doc;
        }
    }
}

TEST(MarkdownStreaming, IncompleteSyntaxRendersSensibly) {
    {
        StreamRenderer r(plain_code);
        r.append("```py\nx = 1\n");
        EXPECT_EQ(r.html(), "<pre><code class=\"language-py\">x = 1\n</code></pre>\n");
        r.append("``");  // maybe the closing fence: held back, not shown as code
        EXPECT_EQ(r.html(), "<pre><code class=\"language-py\">x = 1\n</code></pre>\n");
        r.append("`\nafter");
        EXPECT_EQ(r.html(), "<pre><code class=\"language-py\">x = 1\n</code></pre>\n<p>after</p>\n");
    }
    {
        StreamRenderer r;
        r.append("Some **bold");
        EXPECT_EQ(r.html(), "<p>Some **bold</p>\n");
        r.append("*");  // half the closer: not `*<em>bold</em>` for a moment
        EXPECT_EQ(r.html(), "<p>Some **bold</p>\n");
        r.append("*");
        EXPECT_EQ(r.html(), "<p>Some **bold</p>\n");
        r.append(" done");
        EXPECT_EQ(r.html(), "<p>Some <strong>bold</strong> done</p>\n");
    }
    {
        StreamRenderer r;
        r.append("Some **bold");
        r.append("** done");
        EXPECT_EQ(r.html(), "<p>Some <strong>bold</strong> done</p>\n");
    }
    {
        StreamRenderer r;
        r.append("[text](htt");
        EXPECT_EQ(r.html(), "<p>[text](htt</p>\n");
        r.append("ps://x.example)");
        EXPECT_EQ(r.html(), "<p><a href=\"https://x.example\" rel=\"nofollow noopener noreferrer\">text</a></p>\n");
    }
    {
        // A partial line of marker characters does not flip the paragraph above into a list or heading.
        StreamRenderer r;
        r.append("Title\n-");
        EXPECT_EQ(r.html(), "<p>Title</p>\n");
        r.append("--\n");
        EXPECT_EQ(r.html(), "<h2>Title</h2>\n");
    }
    {
        // A header row is not shown as a paragraph of pipes while its delimiter row is coming.
        StreamRenderer r;
        r.append("Intro\n\n| a | b");
        EXPECT_EQ(r.html(), "<p>Intro</p>\n");
        r.append(" |\n");
        EXPECT_EQ(r.html(), "<p>Intro</p>\n");
        r.append("|---|---|\n| 1 | 2 |\n");
        EXPECT_EQ(r.html(), "<p>Intro</p>\n<table>\n<thead>\n<tr>\n<th>a</th>\n<th>b</th>\n</tr>\n</thead>\n"
                            "<tbody>\n<tr>\n<td>1</td>\n<td>2</td>\n</tr>\n</tbody>\n</table>\n");
    }
    {
        StreamRenderer r;
        r.append("caf\xc3");
        EXPECT_EQ(r.html(), "<p>caf</p>\n");
        r.append("\xa9");
        EXPECT_EQ(r.html(), "<p>caf\xc3\xa9</p>\n");
    }
    {
        StreamRenderer r;
        r.append("para one\n\npara two");
        EXPECT_EQ(r.stable_html(), "<p>para one</p>\n");
        EXPECT_EQ(r.tail_html(), "<p>para two</p>\n");
        r.finish();
        EXPECT_EQ(r.stable_html(), "<p>para one</p>\n<p>para two</p>\n");
        r.append("ignored");
        EXPECT_EQ(r.html(), "<p>para one</p>\n<p>para two</p>\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Safety: the output may only hold the tags and attributes the renderer produces, with every
// attribute double-quoted and every URL free of script-capable schemes.

std::string decode_attribute(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '&') {
            out += v[i];
            continue;
        }
        std::size_t semi = v.find(';', i);
        if (semi == std::string_view::npos) {
            out += v[i];
            continue;
        }
        std::string_view ref = v.substr(i + 1, semi - i - 1);
        if (ref == "amp") out += '&';
        else if (ref == "lt") out += '<';
        else if (ref == "gt") out += '>';
        else if (ref == "quot") out += '"';
        else if (!ref.empty() && ref[0] == '#') {
            bool hex = ref.size() > 1 && (ref[1] == 'x' || ref[1] == 'X');
            unsigned long cp = 0;
            for (char d : ref.substr(hex ? 2 : 1)) {
                int digit = d >= '0' && d <= '9' ? d - '0' : (d | 0x20) >= 'a' && (d | 0x20) <= 'f' ? (d | 0x20) - 'a' + 10 : 99;
                if (digit >= (hex ? 16 : 10)) break;
                cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(digit);
            }
            out += cp < 0x80 ? static_cast<char>(cp) : '?';
        } else {
            out.append(v.substr(i, semi - i + 1));
            i = semi;
            continue;
        }
        i = semi;
    }
    return out;
}

bool url_is_script_capable(std::string_view raw, bool image) {
    std::string folded;
    for (char c : decode_attribute(raw)) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) continue;
        folded += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    std::string_view f = folded;
    if (f.starts_with("javascript:") || f.starts_with("vbscript:")) return true;
    if (f.starts_with("data:")) {
        if (!image) return true;
        for (std::string_view ok : {"data:image/png", "data:image/gif", "data:image/jpeg", "data:image/webp"})
            if (f.starts_with(ok) && f.size() > ok.size() && (f[ok.size()] == ';' || f[ok.size()] == ',')) return false;
        return true;
    }
    return false;
}

// Returns an empty string when `html` is safe, else what is wrong.
std::string check_safe_html(std::string_view html) {
    static const std::vector<std::string_view> tags = {
        "p", "em", "strong", "del", "code", "pre", "a", "img", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
        "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "span", "input", "sup", "section"};
    auto allowed_attribute = [](std::string_view tag, std::string_view attr) {
        if (tag == "a") return attr == "href" || attr == "title" || attr == "rel" || attr == "id" || attr == "class" ||
                               attr == "aria-label";
        if (tag == "span" || tag == "sup" || tag == "section") return attr == "class";
        if (tag == "input") return attr == "type" || attr == "checked" || attr == "disabled" || attr == "aria-label";
        if (tag == "li") return attr == "id";
        if (tag == "img") return attr == "src" || attr == "alt" || attr == "title";
        if (tag == "code") return attr == "class";
        if (tag == "ol") return attr == "start";
        if (tag == "th" || tag == "td") return attr == "align";
        return false;
    };
    for (std::size_t i = 0; i < html.size(); ++i) {
        if (html[i] != '<') continue;
        std::size_t end = html.find('>', i);
        if (end == std::string_view::npos) return "unterminated tag";
        std::string_view tag_text = html.substr(i + 1, end - i - 1);
        bool closing = !tag_text.empty() && tag_text[0] == '/';
        if (closing) tag_text.remove_prefix(1);
        std::size_t name_end = 0;
        while (name_end < tag_text.size() && std::isalnum(static_cast<unsigned char>(tag_text[name_end]))) ++name_end;
        std::string_view name = tag_text.substr(0, name_end);
        bool known = false;
        for (std::string_view t : tags) known = known || t == name;
        if (!known) return "unexpected tag <" + std::string(tag_text) + ">";
        std::string_view rest = tag_text.substr(name_end);
        while (!rest.empty()) {
            if (rest[0] == ' ') {
                rest.remove_prefix(1);
                continue;
            }
            if (rest == "/") break;
            std::size_t eq = rest.find('=');
            if (eq == std::string_view::npos || eq + 1 >= rest.size() || rest[eq + 1] != '"')
                return "unquoted attribute in <" + std::string(tag_text) + ">";
            std::string_view attr = rest.substr(0, eq);
            std::size_t close = rest.find('"', eq + 2);
            if (close == std::string_view::npos) return "unterminated attribute";
            std::string_view value = rest.substr(eq + 2, close - eq - 2);
            if (closing || !allowed_attribute(name, attr))
                return "unexpected attribute " + std::string(attr) + " on <" + std::string(name) + ">";
            if ((attr == "href" || attr == "src") && url_is_script_capable(value, name == "img"))
                return "script-capable URL " + std::string(value);
            if (name == "span" && !(value == "hl-kw" || value == "hl-str" || value == "hl-num" || value == "hl-com" ||
                                    value == "hl-lit" || value == "hl-type" || value == "hl-tag" || value == "hl-attr" ||
                                    value == "hl-fn"))
                return "unexpected span class " + std::string(value);
            if (name == "input" && attr == "type" && value != "checkbox") return "input that is not a checkbox";
            rest.remove_prefix(close + 1);
        }
        i = end;
    }
    std::string lower;
    for (char c : html) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("<script") != std::string::npos) return "<script";
    return {};
}

const std::vector<std::string>& xss_corpus() {
    static const std::vector<std::string> corpus = {
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<IMG SRC=\"javascript:alert('XSS');\">",
        "<svg onload=alert(1)>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<<script>script>alert(1)<</script>/script>",
        "> <iframe src=javascript:alert(1)>",
        "[a](javascript:alert(1))",
        "[a](JaVaScRiPt:alert(1))",
        "[a](jav&#x09;ascript:alert(1))",
        "[a](jav&#9;ascript:alert(1))",
        "[a](&#106;avascript:alert(1))",
        "[a](&#x6A;&#x61;vascript&#x3A;alert(1))",
        "[a](javascript&#58;alert(1))",
        "[a](javascript&colon;alert(1))",
        "[a](<\x01javascript:alert(1)>)",
        "[a](< javascript:alert(1)>)",
        "[a](<\x0ejavascript:alert(1)>)",
        "[a](\tjavascript:alert(1))",
        "[a]( javascript:alert(1) \"t\")",
        "[a](java\nscript:alert(1))",
        "[a](vbscript:msgbox(1))",
        "[a](VBScript:msgbox(1))",
        "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[a](data:image/png;base64,iVBORw0KGgo=)",
        "![i](javascript:alert(1))",
        "![i](data:text/html,<script>alert(1)</script>)",
        "![i](data:image/svg+xml;base64,PHN2Zz4=)",
        "![i](DATA:image/svg+xml,<svg onload=alert(1)>)",
        "![ok](data:image/png;base64,iVBORw0KGgo=)",
        "<javascript:alert(1)>",
        "<JAVASCRIPT:alert(1)>",
        "<vbscript:msgbox(1)>",
        "<data:text/html,hi>",
        "[r]: javascript:alert(1)\n\n[r] and [x][r]",
        "[r]: <jav&#x61;script:alert(1)> \"t\"\n\n![r]",
        "[x](https://ok.example \"\\\" onmouseover=\\\"alert(1)\")",
        "[x](https://ok.example/\" onmouseover=\"alert(1))",
        "[x](<https://ok.example/\"onclick=\"alert(1)>)",
        "![\" onerror=\"alert(1)](x.png)",
        "![x](x.png \"\\\" onerror=\\\"alert(1)\")",
        "[<img src=x onerror=alert(1)>](https://x.example)",
        "**<script>**alert(1)**</script>**",
        "`<script>alert(1)</script>`",
        "```html\n<script>alert(1)</script>\n```",
        "```\"><script>alert(1)</script>\nx\n```",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
        "| a |\n|---|\n| <script>alert(1)</script> |",
        "| <img src=x onerror=alert(1)> |\n|:-:|\n| [x](javascript:alert(1)) |",
        "www.example.com/\"onmouseover=\"alert(1)",
        "https://x.example/<script>alert(1)</script>",
        "- [x](javascript:alert(1))\n  - ![y](vbscript:z)",
        "[x](javascript:alert(1)",
        "[x](javascript:alert(1)\n",
        "<a href='javascript:alert(1)'>x</a>",
        "<div style=\"background:url(javascript:alert(1))\">",
        "[a](%6Aavascript:alert(1))",
        "[a](java\\script:alert(1))",
        "[[a](javascript:1)](javascript:2)",
        "![[a](javascript:1)](javascript:2)",
        "*[a](javascript:alert(1))*",
        "```js\n\"<script>alert(1)</script>\" // <img src=x onerror=alert(1)>\n```",
        "```html\n<a href=\"javascript:alert(1)\" onclick='x'>\"</a> <!-- <script> -->\n```",
        "```css\na { background: url(\"javascript:alert(1)\") } /* </style><script> */\n```",
        "```sql\nSELECT '<b>' -- </pre><script>\n```",
        "- [ ] <img src=x onerror=alert(1)>\n- [x] [a](javascript:alert(1))",
        "x[^a]\n\n[^a]: <script>alert(1)</script> [b](javascript:alert(1))",
        "[^\"><script>]: x\n\ny[^\"><script>]",
        "javascript:alert(1)@example.com and ftp://x.example/\"onmouseover=\"alert(1)",
    };
    return corpus;
}

TEST(MarkdownSafety, CheckerRejectsExecutableMarkup) {
    // The corpus test below is only as good as this checker: it must catch what it looks for.
    EXPECT_EQ(check_safe_html("<p><a href=\"/x\" rel=\"nofollow\">x</a></p>"), "");
    EXPECT_NE(check_safe_html("<script>x</script>"), "");
    EXPECT_NE(check_safe_html("<img src=\"x\" onerror=\"y\" />"), "");
    EXPECT_NE(check_safe_html("<img src=x>"), "");
    EXPECT_NE(check_safe_html("<a href=\"jav&#x09;ascript:x\">"), "");
    EXPECT_NE(check_safe_html("<a href=\" JAVASCRIPT&#58;x\">"), "");
    EXPECT_NE(check_safe_html("<img src=\"data:image/svg+xml,x\" />"), "");
    EXPECT_NE(check_safe_html("<a href=\"vbscript:x\">"), "");
    EXPECT_NE(check_safe_html("<iframe>"), "");
}

TEST(MarkdownSafety, XssCorpusProducesNoExecutableMarkup) {
    for (const std::string& payload : xss_corpus()) {
        const std::string html = render_markdown(payload);
        EXPECT_EQ(check_safe_html(html), "") << "payload: " << payload << "\nhtml: " << html;
        // Mid-stream states must be safe too.
        StreamRenderer r;
        for (char c : payload) {
            r.append(std::string_view(&c, 1));
            ASSERT_EQ(check_safe_html(r.html()), "") << "payload: " << payload << "\nhtml: " << r.html();
        }
        r.finish();
        EXPECT_EQ(r.html(), html);
    }
}

TEST(MarkdownSafety, DroppedAndKeptUrls) {
    EXPECT_EQ(md("[a](jav&#x09;ascript:alert(1))"), "<p><a rel=\"nofollow noopener noreferrer\">a</a></p>\n");
    EXPECT_EQ(md("![i](javascript:alert(1))"), "<p><img alt=\"i\" /></p>\n");
    EXPECT_EQ(md("![ok](data:image/png;base64,AAAA)"), "<p><img src=\"data:image/png;base64,AAAA\" alt=\"ok\" /></p>\n");
    EXPECT_EQ(md("[x](https://ok.example/\"q)"),
              "<p><a href=\"https://ok.example/%22q\" rel=\"nofollow noopener noreferrer\">x</a></p>\n");
    EXPECT_EQ(md("[x](/a \"t\\\"onclick=\\\"y\")"),
              "<p><a href=\"/a\" title=\"t&quot;onclick=&quot;y\" rel=\"nofollow noopener noreferrer\">x</a></p>\n");
    EXPECT_TRUE(confab::markdown::is_safe_url("https://example.com/javascript:x", false));
    EXPECT_TRUE(confab::markdown::is_safe_url("/relative", false));
    EXPECT_FALSE(confab::markdown::is_safe_url(" \x01Java\tScript:x", false));
    EXPECT_FALSE(confab::markdown::is_safe_url("data:image/png;base64,AA", false));
    EXPECT_TRUE(confab::markdown::is_safe_url("data:image/webp;base64,AA", true));
    EXPECT_FALSE(confab::markdown::is_safe_url("data:image/svg+xml,<svg>", true));
    std::string escaped;
    confab::markdown::escape_html("<a href=\"x\">&", escaped);
    EXPECT_EQ(escaped, "&lt;a href=&quot;x&quot;&gt;&amp;");
}

// ---------------------------------------------------------------------------------------------
// Cost: a long reply streamed token by token renders each finished block exactly once.

// ---------------------------------------------------------------------------------------------
// GFM extensions: task lists, extended autolinks, footnotes

TEST(MarkdownGfm, TaskListItemsAreDisabledLabelledCheckboxes) {
    EXPECT_EQ(md("- [ ] open\n- [x] done\n- [X] also\n- [@] not a task\n- [ ]\n"),
              "<ul>\n<li><input type=\"checkbox\" disabled=\"\" aria-label=\"Task\" /> open</li>\n"
              "<li><input type=\"checkbox\" checked=\"\" disabled=\"\" aria-label=\"Task\" /> done</li>\n"
              "<li><input type=\"checkbox\" checked=\"\" disabled=\"\" aria-label=\"Task\" /> also</li>\n"
              "<li>[@] not a task</li>\n<li>[ ]</li>\n</ul>\n");
    // Loose list: the checkbox sits in the paragraph; nested and ordered lists work the same.
    EXPECT_EQ(md("1. [x] a\n\n2. b\n   - [ ] c\n"),
              "<ol>\n<li>\n<p><input type=\"checkbox\" checked=\"\" disabled=\"\" aria-label=\"Task\" /> a</p>\n</li>\n"
              "<li>\n<p>b</p>\n<ul>\n<li><input type=\"checkbox\" disabled=\"\" aria-label=\"Task\" /> c</li>\n</ul>\n"
              "</li>\n</ol>\n");
    // Only in list items.
    EXPECT_EQ(md("[ ] not a list\n"), "<p>[ ] not a list</p>\n");
}

TEST(MarkdownGfm, ExtendedAutolinks) {
    const std::string rel = " rel=\"nofollow noopener noreferrer\"";
    EXPECT_EQ(md("Mail me at jane.doe+chat@mail.example.com."),
              "<p>Mail me at <a href=\"mailto:jane.doe+chat@mail.example.com\"" + rel +
                  ">jane.doe+chat@mail.example.com</a>.</p>\n");
    EXPECT_EQ(md("a.b-c_d@a.b- and x@y_ and @a.b and n@. b"), "<p>a.b-c_d@a.b- and x@y_ and @a.b and n@. b</p>\n");
    EXPECT_EQ(md("ftp://files.example.com/a.txt, then \"https://q.example/x\" or 'www.w.example.org'."),
              "<p><a href=\"ftp://files.example.com/a.txt\"" + rel + ">ftp://files.example.com/a.txt</a>, then &quot;" +
                  "<a href=\"https://q.example/x\"" + rel + ">https://q.example/x</a>&quot; or 'www.w.example.org'.</p>\n");
    // Trailing punctuation and an unbalanced ')' stay outside; balanced parentheses stay inside.
    EXPECT_EQ(md("(see https://en.example.org/wiki/A_(b)).\n"),
              "<p>(see <a href=\"https://en.example.org/wiki/A_(b)\"" + rel + ">https://en.example.org/wiki/A_(b)</a>).</p>\n");
    // Not after a letter, '<' or '[' (a link's text).
    EXPECT_EQ(md("xhttps://a.example <https://a.example b>"),
              "<p>xhttps://a.example &lt;https://a.example b&gt;</p>\n");
    // Not inside code.
    EXPECT_EQ(md("`me@x.example`"), "<p><code>me@x.example</code></p>\n");
}

TEST(MarkdownGfm, FootnotesAsCmarkGfmRendersThem) {
    const std::string doc = "Claim[^1] and another[^note], again[^1].\n\nNo such[^nope].\n\n"
                            "[^note]: The *note*.\n\n[^1]: First.\n    More text.\n\n[^unused]: never shown\n";
    EXPECT_EQ(md(doc),
              "<p>Claim<sup class=\"footnote-ref\"><a href=\"#fn1\" id=\"fnref1\">1</a></sup> and another"
              "<sup class=\"footnote-ref\"><a href=\"#fn2\" id=\"fnref2\">2</a></sup>, again"
              "<sup class=\"footnote-ref\"><a href=\"#fn1\" id=\"fnref1-2\">1</a></sup>.</p>\n"
              "<p>No such[^nope].</p>\n"
              "<section class=\"footnotes\">\n<ol>\n"
              "<li id=\"fn1\">\n<p>First.\nMore text. <a href=\"#fnref1\" class=\"footnote-backref\" "
              "aria-label=\"Back to reference 1\">\xE2\x86\xA9</a> <a href=\"#fnref1-2\" class=\"footnote-backref\" "
              "aria-label=\"Back to reference 1-2\">\xE2\x86\xA9<sup class=\"footnote-ref\">2</sup></a></p>\n</li>\n"
              "<li id=\"fn2\">\n<p>The <em>note</em>. <a href=\"#fnref2\" class=\"footnote-backref\" "
              "aria-label=\"Back to reference 2\">\xE2\x86\xA9</a></p>\n</li>\n"
              "</ol>\n</section>\n");
    // No definition anywhere: the reference is its text, and there is no section.
    EXPECT_EQ(md("Only[^x] text.\n"), "<p>Only[^x] text.</p>\n");
    // A definition before its reference works the same; labels ignore case.
    EXPECT_EQ(md("[^A]: def\n\nuse[^a]\n"),
              "<p>use<sup class=\"footnote-ref\"><a href=\"#fn1\" id=\"fnref1\">1</a></sup></p>\n"
              "<section class=\"footnotes\">\n<ol>\n<li id=\"fn1\">\n<p>def <a href=\"#fnref1\" "
              "class=\"footnote-backref\" aria-label=\"Back to reference 1\">\xE2\x86\xA9</a></p>\n</li>\n</ol>\n"
              "</section>\n");
    // An inline link or a full reference wins over a footnote; a label with spaces is no footnote.
    EXPECT_EQ(md("[^1](/u) [^a b]\n\n[^1]: x\n"),
              "<p><a href=\"/u\" rel=\"nofollow noopener noreferrer\">^1</a> [^a b]</p>\n");
}

TEST(MarkdownGfm, LateFootnoteDefinitionHoldsOnlyWhatItMustAndRendersBlocksOnce) {
    // The common chat shape: references in the body, definitions at the end.
    std::string doc = "Intro without notes.\n\n";
    for (int i = 0; i < 20; ++i) doc += "Paragraph " + std::to_string(i) + " cites a source[^src].\n\n";
    doc += "| t | u |\n|---|---|\n| 1 | 2 |\n\n```js\nlet x = 1;\n```\n\n[^src]: The source.\n\nAfter the notes.\n";
    const std::string expected = render_markdown(doc);
    StreamRenderer r;
    std::string previous_stable;
    std::size_t stable_before_definition = 0;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        r.append(std::string_view(doc).substr(i, 1));
        const std::string& stable = r.stable_html();
        ASSERT_EQ(stable.compare(0, previous_stable.size(), previous_stable), 0) << "stable part changed at " << i;
        ASSERT_EQ(expected.compare(0, stable.size(), stable), 0) << "stable part is not final at " << i;
        ASSERT_EQ(check_safe_html(r.html()), "") << r.html();
        previous_stable = stable;
        if (doc.compare(i + 1, 6, "[^src]") == 0 && doc[i] == '\n' && doc[i - 1] == '\n') stable_before_definition = stable.size();
    }
    r.finish();
    EXPECT_EQ(r.html(), expected);
    // Before the definition arrived only the paragraph without a reference was stable: the rest
    // waited in the tail (it cannot be final: with no definition the references are plain text).
    EXPECT_EQ(std::string_view(expected).substr(0, stable_before_definition), "<p>Intro without notes.</p>\n");
    // Each finished block was rendered exactly once; the held ones were only filled in.
    EXPECT_EQ(r.finished_block_rerenders(), 0u);
    // 20 paragraphs + table + code block waited; the first paragraph, the definition and the
    // last paragraph did not.
    EXPECT_EQ(r.footnote_held_blocks(), 22u);
    EXPECT_EQ(r.finished_blocks(), 25u);
    EXPECT_NE(expected.find("<li id=\"fn1\">\n<p>The source. <a href=\"#fnref1\""), std::string::npos);
    EXPECT_NE(expected.find("id=\"fnref1-20\""), std::string::npos);
}

TEST(MarkdownGfm, GfmRepliesStreamLikeOneShotAtEverySplit) {
    expect_every_split_matches("Tasks:\n- [ ] write[^1]\n- [x] test www.example.com/a.\n\n"
                               "Contact ops@example.org (or ftp://f.example/x).\n\n[^1]: with `code` and *care*.\n");
    expect_every_split_matches("a[^x] b[^y]\n\n[^y]: why\n\nmid\n\n[^x]: ex\n    > quoted\n");
    expect_every_split_matches("```python\ndef f(x):  # note\n    return \"s\\\"q\" + 'x' * 0x1F\n```\n\nafter\n");
}

TEST(MarkdownGfm, EmailAutolinkRunsOfAtSignsAreLinear) {
    // A second '@' ends the domain: no email. Each local-part run is scanned to the next '@' only
    // (scanning on to the paragraph's end from every run took quadratic time).
    const std::string rel = " rel=\"nofollow noopener noreferrer\"";
    EXPECT_EQ(md("a@b.com@c.org x@y.io"), "<p>a@<a href=\"mailto:b.com@c.org\"" + rel + ">b.com@c.org</a> <a href=\"mailto:x@y.io\"" +
                                               rel + ">x@y.io</a></p>\n");
    EXPECT_EQ(md("a@a@a@a.com"), "<p>a@a@<a href=\"mailto:a@a.com\"" + rel + ">a@a.com</a></p>\n");
    expect_every_split_matches("mail a@a@b.c@d.com or me@example.org.\n\nx@y@z.io\n");
    std::string hostile;
    for (int i = 0; i < 50000; ++i) hostile += "a.b@";
    hostile += "c";
    const std::string html = md(hostile);
    EXPECT_TRUE(html == "<p>" + hostile + "</p>\n") << html.substr(0, 200);
}

// ---------------------------------------------------------------------------------------------
// Syntax highlighting (fenced code with a known language)

std::string hl(std::string_view lang, std::string_view code) {
    std::string html = md("```" + std::string(lang) + "\n" + std::string(code) + "\n```\n");
    const std::string open = "<pre><code class=\"language-" + std::string(lang) + "\">";
    EXPECT_EQ(html.substr(0, open.size()), open) << html;
    EXPECT_EQ(check_safe_html(html), "") << html;
    return html.substr(open.size(), html.size() - open.size() - std::string_view("\n</code></pre>\n").size());
}

TEST(MarkdownHighlight, JavaScriptAndTypeScript) {
    EXPECT_EQ(hl("js", "const s = \"a\\\"b\"; // x < y\nreturn f(0x1F, null);"),
              "<span class=\"hl-kw\">const</span> s = <span class=\"hl-str\">&quot;a\\&quot;b&quot;</span>; "
              "<span class=\"hl-com\">// x &lt; y</span>\n<span class=\"hl-kw\">return</span> "
              "<span class=\"hl-fn\">f</span>(<span class=\"hl-num\">0x1F</span>, <span class=\"hl-lit\">null</span>);");
    EXPECT_EQ(hl("ts", "let n: number = `t ${x}`; /* a */ new Map()"),
              "<span class=\"hl-kw\">let</span> n: <span class=\"hl-type\">number</span> = "
              "<span class=\"hl-str\">`t ${x}`</span>; <span class=\"hl-com\">/* a */</span> "
              "<span class=\"hl-kw\">new</span> <span class=\"hl-fn\">Map</span>()");
    EXPECT_EQ(hl("tsx", "x.if = true"), "x.if = <span class=\"hl-lit\">true</span>");  // a member is no keyword
}

TEST(MarkdownHighlight, Python) {
    EXPECT_EQ(hl("python", "def f(a):  # c<d\n    return 'it\\'s' if a else None, 3.5e-2"),
              "<span class=\"hl-kw\">def</span> <span class=\"hl-fn\">f</span>(a):  <span class=\"hl-com\"># c&lt;d</span>\n"
              "    <span class=\"hl-kw\">return</span> <span class=\"hl-str\">'it\\'s'</span> <span class=\"hl-kw\">if</span> a "
              "<span class=\"hl-kw\">else</span> <span class=\"hl-lit\">None</span>, <span class=\"hl-num\">3.5e-2</span>");
    EXPECT_EQ(hl("py", "\"\"\"doc\n\"line\"\"\"\nclass Foo: pass"),
              "<span class=\"hl-str\">&quot;&quot;&quot;doc\n&quot;line&quot;&quot;&quot;</span>\n"
              "<span class=\"hl-kw\">class</span> <span class=\"hl-type\">Foo</span>: <span class=\"hl-kw\">pass</span>");
}

TEST(MarkdownHighlight, JsonBashSql) {
    EXPECT_EQ(hl("json", "{\"k\\\"\": [1, -2.5, true, null, \"<v>\"]}"),
              "{<span class=\"hl-attr\">&quot;k\\&quot;&quot;</span>: [<span class=\"hl-num\">1</span>, "
              "<span class=\"hl-num\">-2.5</span>, <span class=\"hl-lit\">true</span>, <span class=\"hl-lit\">null</span>, "
              "<span class=\"hl-str\">&quot;&lt;v&gt;&quot;</span>]}");
    EXPECT_EQ(hl("bash", "if [ -f \"$f\" ]; then echo 'a\\' $HOME # done\nfi"),
              "<span class=\"hl-kw\">if</span> [ -f <span class=\"hl-str\">&quot;$f&quot;</span> ]; "
              "<span class=\"hl-kw\">then</span> <span class=\"hl-kw\">echo</span> <span class=\"hl-str\">'a\\'</span> "
              "<span class=\"hl-attr\">$HOME</span> <span class=\"hl-com\"># done</span>\n<span class=\"hl-kw\">fi</span>");
    EXPECT_EQ(hl("sh", "x=1 # c\necho ${x}#no"),
              "x=<span class=\"hl-num\">1</span> <span class=\"hl-com\"># c</span>\n<span class=\"hl-kw\">echo</span> "
              "<span class=\"hl-attr\">${x}</span>#no");
    EXPECT_EQ(hl("sql", "SELECT name FROM t WHERE n > 10 AND s = 'it''s' -- <c>"),
              "<span class=\"hl-kw\">SELECT</span> name <span class=\"hl-kw\">FROM</span> t <span class=\"hl-kw\">WHERE</span> "
              "n &gt; <span class=\"hl-num\">10</span> <span class=\"hl-kw\">AND</span> s = <span class=\"hl-str\">'it'</span>"
              "<span class=\"hl-str\">'s'</span> <span class=\"hl-com\">-- &lt;c&gt;</span>");
}

TEST(MarkdownHighlight, HtmlAndCss) {
    EXPECT_EQ(hl("html", "<a href=\"x?a=1&b\" data-x='y'>t &amp; <b>u</b></a><!-- c -->"),
              "&lt;<span class=\"hl-tag\">a</span> <span class=\"hl-attr\">href</span>=<span class=\"hl-str\">&quot;x?a=1&amp;b&quot;</span> "
              "<span class=\"hl-attr\">data-x</span>=<span class=\"hl-str\">'y'</span>&gt;t &amp;amp; &lt;<span class=\"hl-tag\">b</span>&gt;u"
              "&lt;/<span class=\"hl-tag\">b</span>&gt;&lt;/<span class=\"hl-tag\">a</span>&gt;<span class=\"hl-com\">&lt;!-- c --&gt;</span>");
    EXPECT_EQ(hl("css", "a.b > p { color: #fff; margin: 0 1.5em; } /* x */"),
              "<span class=\"hl-tag\">a</span>.b &gt; <span class=\"hl-tag\">p</span> { <span class=\"hl-attr\">color</span>: "
              "<span class=\"hl-num\">#fff</span>; <span class=\"hl-attr\">margin</span>: <span class=\"hl-num\">0</span> "
              "<span class=\"hl-num\">1.5em</span>; } <span class=\"hl-com\">/* x */</span>");
}

TEST(MarkdownHighlight, CGoRust) {
    EXPECT_EQ(hl("cpp", "#include <vector>\nint main() { return 0; } // \"x\""),
              "<span class=\"hl-kw\">#include</span> &lt;vector&gt;\n<span class=\"hl-type\">int</span> "
              "<span class=\"hl-fn\">main</span>() { <span class=\"hl-kw\">return</span> <span class=\"hl-num\">0</span>; } "
              "<span class=\"hl-com\">// &quot;x&quot;</span>");
    EXPECT_EQ(hl("go", "func f() string { return `raw` + \"s\\\"\" }"),
              "<span class=\"hl-kw\">func</span> <span class=\"hl-fn\">f</span>() <span class=\"hl-type\">string</span> { "
              "<span class=\"hl-kw\">return</span> <span class=\"hl-str\">`raw`</span> + <span class=\"hl-str\">&quot;s\\&quot;&quot;</span> }");
    EXPECT_EQ(hl("rust", "fn f<'a>(s: &'a str) -> u8 { println!(\"{}\", 'c'); 1 }"),
              "<span class=\"hl-kw\">fn</span> f&lt;'a&gt;(s: &amp;'a <span class=\"hl-type\">str</span>) -&gt; "
              "<span class=\"hl-type\">u8</span> { <span class=\"hl-fn\">println!</span>(<span class=\"hl-str\">&quot;{}&quot;</span>, "
              "<span class=\"hl-str\">'c'</span>); <span class=\"hl-num\">1</span> }");
}

TEST(MarkdownHighlight, UnknownLanguageAndOptionOffArePlainText) {
    EXPECT_EQ(md("```brainfuck\n+[<>]\n```"), "<pre><code class=\"language-brainfuck\">+[&lt;&gt;]\n</code></pre>\n");
    EXPECT_EQ(md_plain("```js\nlet x\n```"), "<pre><code class=\"language-js\">let x\n</code></pre>\n");
    // An open (streaming) code block is highlighted too, and ends as the finished one.
    StreamRenderer r;
    r.append("```py\nx = 'a");
    EXPECT_EQ(r.html(), "<pre><code class=\"language-py\">x = <span class=\"hl-str\">'a</span>\n</code></pre>\n");
    r.append("'\n```\n");
    r.finish();
    EXPECT_EQ(r.html(), md("```py\nx = 'a'\n```\n"));
}

TEST(MarkdownHighlight, SeveralCodeBlocksInTheOpenTailStreamLikeOneShot) {
    // A numbered list of steps, each with a code block: the list is one open block, so all its
    // code blocks are re-rendered per append (each keeps its own highlight cache entry).
    expect_every_split_matches("1. Install:\n\n   ```bash\n   npm i x # dep\n   ```\n\n2. Use:\n\n   ```JS\n"
                               "   const a = \"s\";\n   let b = 1;\n   ```\n3. Run:\n\n   ```py\n   print('x')\n   ```\n");
    std::string steps;  // more code blocks than the cache has entries
    for (int i = 1; i <= 11; ++i)
        steps += std::to_string(i) + ". Step:\n   ```" + (i % 2 ? "js" : "py") + "\n   x = " + std::to_string(i) + "\n   ```\n";
    expect_every_split_matches(steps);
    // Language names are matched ignoring case.
    EXPECT_NE(md("```JS\nconst a = 1;\n```\n").find("<span class=\"hl-kw\">const</span>"), std::string::npos);
    EXPECT_NE(md("```Python\nNone\n```\n").find("hl-lit"), std::string::npos);
}

TEST(MarkdownHighlight, StateSpanningLinesStreamsLikeOneShotAtEverySplit) {
    // The highlight cache resumes only after a token-free line end: comments, strings, template
    // literals, tags and rule blocks that span lines must come out as they do at once.
    expect_every_split_matches("```c\nint a; /* one\n   two */ int b;\n/* open\nx\n*/\n```\n");
    expect_every_split_matches("```js\nconst s = `line ${a +\n b} two\nthree`; // c\n/* x\n */ let y = 'q';\n```\n");
    expect_every_split_matches("```python\ndef f():\n    \"\"\"Doc\n    more \"quoted\" text\n    \"\"\"\n    return '''a\nb'''\n```\n");
    expect_every_split_matches("```html\n<div class=\"a\"\n     id=\"b\">text</div>\n<!-- a\ncomment -->\n<p\n>x</p>\n```\n");
    expect_every_split_matches("```css\n.a,\n.b {\n  color: red; /* x\n  y */\n  margin: 0 1px;\n}\n@media (x) {\n  p { top: 0 }\n}\n```\n");
    expect_every_split_matches("```rust\nlet s = \"a\n b\"; /* c\n /* nested */ d */\n```\n");
    // Inside a list: two code blocks share the open tail.
    expect_every_split_matches("1. a\n   ```go\n   s := `raw\n   str`\n   ```\n2. b\n   ```sql\n   SELECT 'a\n   b' /* c\n   d */\n   ```\n");
}

TEST(MarkdownCost, CodeBlocksOfAnOpenListAreHighlightedOnceEach) {
    // A numbered list of steps, each with a code block, streamed in small tokens: the list stays
    // the open tail, so all its code blocks are re-rendered per append. Each must resume from its
    // own cached lines (one shared cache entry made every block miss and start over).
    std::string doc = "Steps:\n\n";
    for (int step = 1; step <= 6; ++step) {
        doc += std::to_string(step) + ". Step:\n\n   ```js\n";
        for (int line = 0; line < 30; ++line) doc += "   const v" + std::to_string(line) + " = f(\"s\", " + std::to_string(line) + ");\n";
        doc += "   ```\n\n";
    }
    StreamRenderer r;
    for (std::size_t i = 0; i < doc.size(); i += 6) r.append(std::string_view(doc).substr(i, 6));
    r.finish();
    EXPECT_EQ(r.html(), render_markdown(doc));
    // Each append highlights only the lines after each block's cached prefix: a few lines per
    // block, not every block in full.
    EXPECT_LT(r.code_bytes_highlighted(), 20 * doc.size()) << doc.size();
}

TEST(MarkdownHighlight, LinearOnHostileInput) {
    // Unclosed comments, strings and tags, long runs: each byte is looked at a bounded number of
    // times (this would take minutes if a token rescanned the rest of the block).
    for (std::string_view lang : {"js", "py", "json", "bash", "html", "css", "cpp", "go", "rust", "sql"}) {
        std::string code;
        for (int i = 0; i < 20000; ++i) code += "/*\"'`<a $x 0x 'a #";
        const std::string html = md("```" + std::string(lang) + "\n" + code + "\n```\n");
        EXPECT_EQ(check_safe_html(html), "") << lang;
        EXPECT_GT(html.size(), code.size()) << lang;
    }
}

TEST(MarkdownCost, TwoThousandTokenReplyRendersFinishedBlocksOnce) {
    // A reply of varied blocks, about 2,200 word-sized tokens.
    std::string reply;
    std::size_t blocks = 0;
    for (int section = 0; section < 15; ++section) {
        reply += "## Section " + std::to_string(section) + "\n\n";
        ++blocks;
        for (int w = 0; w < 60; ++w) reply += (w % 7 == 3 ? "**word** " : "word ");
        reply += "end.\n\n";
        ++blocks;
        for (int item = 0; item < 6; ++item) reply += "- item *" + std::to_string(item) + "* with some text\n";
        reply += "\n";
        ++blocks;
        reply += "```cpp\n";
        for (int line = 0; line < 6; ++line) reply += "int value_" + std::to_string(line) + " = " + std::to_string(line) + ";\n";
        reply += "```\n\n";
        ++blocks;
        reply += "| k | v |\n|---|---|\n| a | 1 |\n| b | 2 |\n\n";
        ++blocks;
        reply += "> quoted [link](https://example.com/" + std::to_string(section) + ") text\n\n";
        ++blocks;
    }
    // Tokens: a word and the whitespace after it, as model streams usually cut them.
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < reply.size();) {
        std::size_t j = i;
        while (j < reply.size() && reply[j] != ' ' && reply[j] != '\n') ++j;
        while (j < reply.size() && (reply[j] == ' ' || reply[j] == '\n')) ++j;
        tokens.push_back(reply.substr(i, j - i));
        i = j;
    }
    ASSERT_GE(tokens.size(), 2000u);

    StreamRenderer r;
    std::uint64_t parsed_before = 0;
    std::size_t stable_before = 0;
    std::uint64_t finished_before = 0;
    std::string stable_seen;
    for (const std::string& token : tokens) {
        std::uint64_t renders_before = r.block_renders();
        r.append(token);
        // Each append parses only the unfinished part of the source...
        ASSERT_LE(r.bytes_parsed() - parsed_before, r.source().size() - stable_before);
        ASSERT_GE(r.stable_source_size(), stable_before);
        // ...and renders the newly finished blocks plus the open tail (at most two blocks).
        ASSERT_LE(r.block_renders() - renders_before, (r.finished_blocks() - finished_before) + 2);
        ASSERT_EQ(r.stable_html().compare(0, stable_seen.size(), stable_seen), 0);
        parsed_before = r.bytes_parsed();
        stable_before = r.stable_source_size();
        finished_before = r.finished_blocks();
        stable_seen = r.stable_html();
    }
    r.finish();
    EXPECT_EQ(r.html(), render_markdown(reply));
    EXPECT_EQ(r.finished_blocks(), blocks);
    EXPECT_EQ(r.finished_block_rerenders(), 0u);
    // Every block render beyond the finished blocks' single renders was a tail render.
    EXPECT_LE(r.block_renders(), r.finished_blocks() + 2 * r.tail_renders());
    EXPECT_EQ(r.tail_renders(), tokens.size());
    // No footnotes: the tail was rendered in place, never copied for post-processing.
    EXPECT_EQ(r.tail_bytes_resolved(), 0u);
    // Linear total work: nothing near re-parsing the whole reply on every token.
    EXPECT_LT(r.bytes_parsed(), reply.size() * 40);
    EXPECT_LT(r.bytes_parsed() * 10, static_cast<std::uint64_t>(reply.size()) * tokens.size());
}

TEST(MarkdownCost, HeldFootnoteBlocksAreNotResolvedAgainOnEveryAppend) {
    // The usual layout: a reference early, the definition at the end. Every block after the
    // reference waits in the tail; an append must not re-resolve (or copy) all of them.
    std::string doc = "Intro cites a source[^a].\n\n";
    for (int i = 0; i < 200; ++i) doc += "Paragraph " + std::to_string(i) + " with some words of text in it.\n\n";
    const std::size_t body_end = doc.size();
    doc += "[^a]: The note.\n\nTail.\n";
    const std::string expected = render_markdown(doc);
    StreamRenderer r;
    std::uint64_t before = 0;
    std::uint64_t max_step = 0;
    std::uint64_t max_step_at = 0;
    for (std::size_t i = 0; i < doc.size(); i += 8) {
        r.append(std::string_view(doc).substr(i, 8));
        const std::uint64_t step = r.tail_bytes_resolved() - before;
        before = r.tail_bytes_resolved();
        if (i + 8 <= body_end && step > max_step) {
            max_step = step;
            max_step_at = i;
        }
        ASSERT_EQ(expected.compare(0, r.stable_html().size(), r.stable_html()), 0) << i;
    }
    r.finish();
    EXPECT_EQ(r.html(), expected);
    EXPECT_EQ(r.footnote_held_blocks(), 201u);
    // One finished paragraph and the open one (each under 70 bytes of HTML), not the ~11 KB held.
    EXPECT_LE(max_step, 300u) << "at byte " << max_step_at;
}

// ---------------------------------------------------------------------------------------------
// Hostile input: deep nesting and long runs must neither crash (the wasm stack is small) nor
// produce unbalanced or unsafe markup.

TEST(MarkdownRobustness, DeepNestingIsCappedAndSafe) {
    std::vector<std::string> inputs;
    inputs.push_back(std::string(100000, '>') + " deep");
    std::string lists;
    for (int i = 0; i < 2000; ++i) lists += std::string(static_cast<std::size_t>(i) * 2, ' ') + "- item\n";
    inputs.push_back(lists);
    std::string emphasis;
    for (int i = 0; i < 20000; ++i) emphasis += "*a ";
    for (int i = 0; i < 20000; ++i) emphasis += "a* ";
    inputs.push_back(emphasis);
    inputs.push_back(std::string(50000, '[') + "x" + std::string(50000, ']') + "(/u)");
    inputs.push_back(std::string(30000, '`') + " x " + std::string(29999, '`'));
    std::string ticks;
    for (int i = 0; i < 20000; ++i) ticks += "` `` ";
    inputs.push_back(ticks);
    inputs.push_back("![" + std::string(20000, '[') + "](x)");
    for (const std::string& input : inputs) {
        std::string html = render_markdown(input);
        EXPECT_EQ(check_safe_html(html), "");
        EXPECT_FALSE(html.empty());
    }
    // The cap: 48 levels of quotes render as nested blockquotes, the rest is text.
    std::string html = render_markdown(std::string(100, '>') + " x");
    std::size_t quotes = 0;
    for (std::size_t at = html.find("<blockquote>"); at != std::string::npos; at = html.find("<blockquote>", at + 1))
        ++quotes;
    EXPECT_EQ(quotes, 47u);
    EXPECT_NE(html.find("&gt;&gt;&gt; x"), std::string::npos);
}

}  // namespace
