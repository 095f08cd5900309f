// HTML output helpers for the Markdown renderer: escaping, entity references, URL encoding and the URL scheme check.
#include "markdown_internal.hpp"

#include <algorithm>

namespace confab::markdown {
namespace detail {
namespace {

// The entities chat text and the CommonMark spec use; others stay literal text (safe either way).
// One packed string, "<name><utf8>\n" per entity (a name is letters and digits, and no value
// starts with one): 0.95 KB gzip smaller in the widget's wasm than a table of string_view pairs,
// whose pointers and lengths gzip poorly. Found by a linear scan, as the table was.
constexpr std::string_view named_entities =
    "AElig\u00C6\nAacute\u00C1\nAgrave\u00C0\nAring\u00C5\nAtilde\u00C3\nAuml\u00C4\nCcedil\u00C7\n"
    "ClockwiseContourIntegral\u2232\nDcaron\u010E\nDelta\u0394\nDifferentialD\u2146\nEacute\u00C9\n"
    "Egrave\u00C8\nEuml\u00CB\nGamma\u0393\nHilbertSpace\u210B\nIacute\u00CD\nLambda\u039B\n"
    "Ntilde\u00D1\nOacute\u00D3\nOmega\u03A9\nOslash\u00D8\nOuml\u00D6\nPhi\u03A6\nPi\u03A0\n"
    "Prime\u2033\nPsi\u03A8\nSigma\u03A3\nTheta\u0398\nUacute\u00DA\nUuml\u00DC\naacute\u00E1\n"
    "acirc\u00E2\nacute\u00B4\naelig\u00E6\nagrave\u00E0\nalpha\u03B1\namp&\nand\u2227\napos'\n"
    "aring\u00E5\nasymp\u2248\natilde\u00E3\nauml\u00E4\nbeta\u03B2\nbrvbar\u00A6\nbull\u2022\n"
    "cap\u2229\nccedil\u00E7\ncedil\u00B8\ncent\u00A2\ncheck\u2713\nchi\u03C7\nclubs\u2663\n"
    "copy\u00A9\ncross\u2717\ncup\u222A\ncurren\u00A4\ndArr\u21D3\ndagger\u2020\ndarr\u2193\n"
    "deg\u00B0\ndelta\u03B4\ndiams\u2666\ndivide\u00F7\neacute\u00E9\necirc\u00EA\negrave\u00E8\n"
    "empty\u2205\nemsp\u2003\nensp\u2002\nepsilon\u03B5\nequiv\u2261\neta\u03B7\neuml\u00EB\n"
    "euro\u20AC\nexist\u2203\nforall\u2200\nfrac12\u00BD\nfrac14\u00BC\nfrac34\u00BE\ngamma\u03B3\n"
    "ge\u2265\ngt>\nhArr\u21D4\nharr\u2194\nhearts\u2665\nhellip\u2026\niacute\u00ED\nicirc\u00EE\n"
    "iexcl\u00A1\nigrave\u00EC\ninfin\u221E\nint\u222B\niquest\u00BF\nisin\u2208\niuml\u00EF\n"
    "kappa\u03BA\nlArr\u21D0\nlambda\u03BB\nlaquo\u00AB\nlarr\u2190\nldquo\u201C\nle\u2264\n"
    "lsquo\u2018\nlt<\nmacr\u00AF\nmdash\u2014\nmicro\u00B5\nmiddot\u00B7\nminus\u2212\nmu\u03BC\n"
    "nabla\u2207\nnbsp\u00A0\nndash\u2013\nne\u2260\nngE\u2267\u0338\nnot\u00AC\nnotin\u2209\n"
    "ntilde\u00F1\noacute\u00F3\nocirc\u00F4\nograve\u00F2\nomega\u03C9\nor\u2228\nordf\u00AA\n"
    "ordm\u00BA\noslash\u00F8\nouml\u00F6\npara\u00B6\npart\u2202\npermil\u2030\nphi\u03C6\n"
    "pi\u03C0\nplusmn\u00B1\npound\u00A3\nprime\u2032\nprod\u220F\nquot\"\nrArr\u21D2\nradic\u221A\n"
    "raquo\u00BB\nrarr\u2192\nrdquo\u201D\nreg\u00AE\nrsquo\u2019\nsect\u00A7\nshy\u00AD\n"
    "sigma\u03C3\nspades\u2660\nstar\u2606\nsum\u2211\nsup1\u00B9\nsup2\u00B2\nsup3\u00B3\n"
    "szlig\u00DF\ntheta\u03B8\ntimes\u00D7\ntrade\u2122\nuacute\u00FA\nuarr\u2191\numl\u00A8\n"
    "uuml\u00FC\nyen\u00A5\nzeta\u03B6\n";

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

}  // namespace

void append_utf8(std::uint32_t cp, std::string& out) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

void escape_into(std::string_view text, std::string& out) {
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
}

std::size_t decode_entity(std::string_view s, std::string& out) {
    if (s.size() < 3 || s[0] != '&') return 0;
    if (s[1] == '#') {
        std::size_t i = 2;
        bool hex = i < s.size() && (s[i] == 'x' || s[i] == 'X');
        if (hex) ++i;
        std::size_t digits_start = i;
        std::uint32_t value = 0;
        std::size_t max_digits = hex ? 6 : 7;
        while (i < s.size() && (hex ? is_hex(s[i]) : is_digit(s[i])) && i - digits_start < max_digits) {
            value = value * (hex ? 16 : 10) + static_cast<std::uint32_t>(hex ? hex_value(s[i]) : s[i] - '0');
            ++i;
        }
        if (i == digits_start || i >= s.size() || s[i] != ';') return 0;
        append_utf8(value, out);
        return i + 1;
    }
    std::size_t i = 1;
    if (!is_alpha(s[i])) return 0;
    while (i < s.size() && i <= 32 && (is_alpha(s[i]) || is_digit(s[i]))) ++i;
    if (i >= s.size() || s[i] != ';') return 0;
    std::string_view name = s.substr(1, i - 1);
    for (std::string_view rest = named_entities; !rest.empty();) {
        const std::size_t nl = std::min(rest.find('\n'), rest.size());
        const std::string_view entry = rest.substr(0, nl);
        rest.remove_prefix(std::min(nl + 1, rest.size()));
        std::size_t n = 0;
        while (n < entry.size() && (is_alpha(entry[n]) || is_digit(entry[n]))) ++n;
        if (entry.substr(0, n) == name) {
            out.append(entry.substr(n));
            return i + 1;
        }
    }
    return 0;
}

std::string unescape_string(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        char c = s[i];
        if (c == '\\' && i + 1 < s.size() && is_ascii_punct(s[i + 1])) {
            out += s[i + 1];
            i += 2;
        } else if (c == '&') {
            std::size_t n = decode_entity(s.substr(i), out);
            if (n == 0) {
                out += c;
                ++i;
            } else {
                i += n;
            }
        } else {
            out += c;
            ++i;
        }
    }
    return out;
}

std::string normalize_uri(std::string_view url) {
    static constexpr std::string_view safe = ";/?:@&=+$,-_.!~*'()#";
    static constexpr char hex_digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(url.size());
    for (std::size_t i = 0; i < url.size(); ++i) {
        char c = url[i];
        auto u = static_cast<unsigned char>(c);
        if (is_alpha(c) || is_digit(c) || safe.find(c) != std::string_view::npos) {
            out += c;
        } else if (c == '%' && i + 2 < url.size() && is_hex(url[i + 1]) && is_hex(url[i + 2])) {
            out += c;
        } else {
            out += '%';
            out += hex_digits[u >> 4];
            out += hex_digits[u & 0xF];
        }
    }
    return out;
}

}  // namespace detail

void escape_html(std::string_view text, std::string& out) { detail::escape_into(text, out); }

bool is_safe_url(std::string_view url, bool for_image) {
    // Browsers ignore leading C0 controls and spaces and drop tabs and newlines anywhere in a
    // scheme, so judge the URL with all of those removed.
    std::string folded;
    folded.reserve(url.size());
    for (char c : url) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F) continue;
        folded += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    std::string_view f = folded;
    if (f.starts_with("javascript:") || f.starts_with("vbscript:")) return false;
    if (f.starts_with("data:")) {
        if (!for_image) return false;
        for (std::string_view type : {"data:image/png", "data:image/gif", "data:image/jpeg", "data:image/webp"}) {
            if (f.starts_with(type) && f.size() > type.size() && (f[type.size()] == ';' || f[type.size()] == ','))
                return true;
        }
        return false;
    }
    return true;
}

}  // namespace confab::markdown
