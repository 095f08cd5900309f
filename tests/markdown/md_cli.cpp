// Command-line front end of the core Markdown renderer for the conformance runners.
//
//   md_cli [--no-highlight] < doc.md     renders one document from stdin to stdout
//   md_cli --batch [--no-highlight]      reads records "<byte length>\n<markdown bytes>" from stdin until
//                                        EOF and writes "<byte length>\n<html bytes>" for each (one
//                                        process for all the spec examples)
//   md_cli --batch --stream-check        for each record, streams it in many chunkings (every split
//                                        point, byte by byte, fixed sizes) and answers "" when each gave
//                                        the one-shot HTML with a stable part that only grew, else what
//                                        differed first
#include "confab/markdown.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

namespace {

using confab::markdown::RenderOptions;
using confab::markdown::StreamRenderer;

std::string stream_check(std::string_view input, const RenderOptions& options) {
    const std::string expected = confab::markdown::render_markdown(input, options);
    auto feed = [&](std::size_t chunk, std::size_t split) -> std::string {
        StreamRenderer r(options);
        std::string stable;
        auto step = [&](std::string_view piece) -> bool {
            r.append(piece);
            if (r.stable_html().compare(0, stable.size(), stable) != 0) return false;
            stable = r.stable_html();
            return expected.compare(0, stable.size(), stable) == 0;
        };
        if (chunk == 0) {
            if (!step(input.substr(0, split)) || !step(input.substr(split))) return "stable part changed or is not final";
        } else {
            for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
                if (!step(input.substr(pos, chunk))) return "stable part changed or is not final";
            }
        }
        r.finish();
        if (r.html() != expected) return "streamed HTML differs: " + r.html();
        return "";
    };
    for (std::size_t split = 0; split <= input.size(); ++split) {
        if (std::string e = feed(0, split); !e.empty()) return "split at " + std::to_string(split) + ": " + e;
    }
    for (std::size_t chunk : {1, 2, 3, 5, 7, 16}) {
        if (std::string e = feed(chunk, 0); !e.empty()) return "chunks of " + std::to_string(chunk) + ": " + e;
    }
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    std::ios::sync_with_stdio(false);
    bool batch = false;
    bool check = false;
    RenderOptions options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--batch") {
            batch = true;
        } else if (arg == "--stream-check") {
            check = true;
        } else if (arg == "--no-highlight") {
            options.highlight = false;
        } else {
            std::cerr << "usage: md_cli [--batch] [--no-highlight] [--stream-check] < input\n";
            return 2;
        }
    }
    if (!batch) {
        std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
        std::cout << (check ? stream_check(input, options) : confab::markdown::render_markdown(input, options));
        return std::cout.good() ? 0 : 1;
    }
    std::string header;
    while (std::getline(std::cin, header)) {
        char* end = nullptr;
        unsigned long long length = std::strtoull(header.c_str(), &end, 10);
        if (header.empty() || end == nullptr || *end != '\0') {
            std::cerr << "md_cli: bad record header: " << header << "\n";
            return 2;
        }
        std::string input(length, '\0');
        if (length > 0 && !std::cin.read(input.data(), static_cast<std::streamsize>(length))) {
            std::cerr << "md_cli: truncated record\n";
            return 2;
        }
        std::string html = check ? stream_check(input, options) : confab::markdown::render_markdown(input, options);
        std::cout << html.size() << '\n' << html;
        std::cout.flush();
    }
    return 0;
}
