// HTML output helpers for the Markdown renderer: escaping, entity references, URL encoding and the URL scheme check.
#include "markdown_internal.hpp"

namespace confab::markdown {
namespace detail {
namespace {

struct NamedEntity {
    std::string_view name;
    std::string_view utf8;
};

// The entities chat text and the CommonMark spec use; others stay literal text (safe either way).
constexpr NamedEntity named_entities[] = {
    {"AElig", "\u00C6"}, {"Aacute", "\u00C1"}, {"Agrave", "\u00C0"}, {"Aring", "\u00C5"}, {"Atilde", "\u00C3"},
    {"Auml", "\u00C4"}, {"Ccedil", "\u00C7"}, {"ClockwiseContourIntegral", "\u2232"}, {"Dcaron", "\u010E"},
    {"Delta", "\u0394"}, {"DifferentialD", "\u2146"}, {"Eacute", "\u00C9"}, {"Egrave", "\u00C8"},
    {"Euml", "\u00CB"}, {"Gamma", "\u0393"}, {"HilbertSpace", "\u210B"}, {"Iacute", "\u00CD"},
    {"Lambda", "\u039B"}, {"Ntilde", "\u00D1"}, {"Oacute", "\u00D3"}, {"Omega", "\u03A9"}, {"Oslash", "\u00D8"},
    {"Ouml", "\u00D6"}, {"Phi", "\u03A6"}, {"Pi", "\u03A0"}, {"Prime", "\u2033"}, {"Psi", "\u03A8"},
    {"Sigma", "\u03A3"}, {"Theta", "\u0398"}, {"Uacute", "\u00DA"}, {"Uuml", "\u00DC"}, {"aacute", "\u00E1"},
    {"acirc", "\u00E2"}, {"acute", "\u00B4"}, {"aelig", "\u00E6"}, {"agrave", "\u00E0"}, {"alpha", "\u03B1"},
    {"amp", "&"}, {"and", "\u2227"}, {"apos", "'"}, {"aring", "\u00E5"}, {"asymp", "\u2248"}, {"atilde", "\u00E3"},
    {"auml", "\u00E4"}, {"beta", "\u03B2"}, {"brvbar", "\u00A6"}, {"bull", "\u2022"}, {"cap", "\u2229"},
    {"ccedil", "\u00E7"}, {"cedil", "\u00B8"}, {"cent", "\u00A2"}, {"check", "\u2713"}, {"chi", "\u03C7"},
    {"clubs", "\u2663"}, {"copy", "\u00A9"}, {"cross", "\u2717"}, {"cup", "\u222A"}, {"curren", "\u00A4"},
    {"dArr", "\u21D3"}, {"dagger", "\u2020"}, {"darr", "\u2193"}, {"deg", "\u00B0"}, {"delta", "\u03B4"},
    {"diams", "\u2666"}, {"divide", "\u00F7"}, {"eacute", "\u00E9"}, {"ecirc", "\u00EA"}, {"egrave", "\u00E8"},
    {"empty", "\u2205"}, {"emsp", "\u2003"}, {"ensp", "\u2002"}, {"epsilon", "\u03B5"}, {"equiv", "\u2261"},
    {"eta", "\u03B7"}, {"euml", "\u00EB"}, {"euro", "\u20AC"}, {"exist", "\u2203"}, {"forall", "\u2200"},
    {"frac12", "\u00BD"}, {"frac14", "\u00BC"}, {"frac34", "\u00BE"}, {"gamma", "\u03B3"}, {"ge", "\u2265"},
    {"gt", ">"}, {"hArr", "\u21D4"}, {"harr", "\u2194"}, {"hearts", "\u2665"}, {"hellip", "\u2026"},
    {"iacute", "\u00ED"}, {"icirc", "\u00EE"}, {"iexcl", "\u00A1"}, {"igrave", "\u00EC"}, {"infin", "\u221E"},
    {"int", "\u222B"}, {"iquest", "\u00BF"}, {"isin", "\u2208"}, {"iuml", "\u00EF"}, {"kappa", "\u03BA"},
    {"lArr", "\u21D0"}, {"lambda", "\u03BB"}, {"laquo", "\u00AB"}, {"larr", "\u2190"}, {"ldquo", "\u201C"},
    {"le", "\u2264"}, {"lsquo", "\u2018"}, {"lt", "<"}, {"macr", "\u00AF"}, {"mdash", "\u2014"},
    {"micro", "\u00B5"}, {"middot", "\u00B7"}, {"minus", "\u2212"}, {"mu", "\u03BC"}, {"nabla", "\u2207"},
    {"nbsp", "\u00A0"}, {"ndash", "\u2013"}, {"ne", "\u2260"}, {"ngE", "\u2267\u0338"}, {"not", "\u00AC"},
    {"notin", "\u2209"}, {"ntilde", "\u00F1"}, {"oacute", "\u00F3"}, {"ocirc", "\u00F4"}, {"ograve", "\u00F2"},
    {"omega", "\u03C9"}, {"or", "\u2228"}, {"ordf", "\u00AA"}, {"ordm", "\u00BA"}, {"oslash", "\u00F8"},
    {"ouml", "\u00F6"}, {"para", "\u00B6"}, {"part", "\u2202"}, {"permil", "\u2030"}, {"phi", "\u03C6"},
    {"pi", "\u03C0"}, {"plusmn", "\u00B1"}, {"pound", "\u00A3"}, {"prime", "\u2032"}, {"prod", "\u220F"},
    {"quot", "\""}, {"rArr", "\u21D2"}, {"radic", "\u221A"}, {"raquo", "\u00BB"}, {"rarr", "\u2192"},
    {"rdquo", "\u201D"}, {"reg", "\u00AE"}, {"rsquo", "\u2019"}, {"sect", "\u00A7"}, {"shy", "\u00AD"},
    {"sigma", "\u03C3"}, {"spades", "\u2660"}, {"star", "\u2606"}, {"sum", "\u2211"}, {"sup1", "\u00B9"},
    {"sup2", "\u00B2"}, {"sup3", "\u00B3"}, {"szlig", "\u00DF"}, {"theta", "\u03B8"}, {"times", "\u00D7"},
    {"trade", "\u2122"}, {"uacute", "\u00FA"}, {"uarr", "\u2191"}, {"uml", "\u00A8"}, {"uuml", "\u00FC"},
    {"yen", "\u00A5"}, {"zeta", "\u03B6"},
};

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
    for (const NamedEntity& e : named_entities) {
        if (e.name == name) {
            out.append(e.utf8);
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
