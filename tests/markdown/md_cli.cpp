// Command-line front end of the core Markdown renderer for the CommonMark conformance runner.
//
//   md_cli < doc.md                 renders one document from stdin to stdout
//   md_cli --batch                  reads records "<byte length>\n<markdown bytes>" from stdin until EOF
//                                   and writes "<byte length>\n<html bytes>" for each (one process
//                                   for all 652 spec examples)
#include "confab/markdown.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
    std::ios::sync_with_stdio(false);
    bool batch = argc > 1 && std::string_view(argv[1]) == "--batch";
    if (argc > 1 && !batch) {
        std::cerr << "usage: md_cli [--batch] < input\n";
        return 2;
    }
    if (!batch) {
        std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
        std::cout << confab::markdown::render_markdown(input);
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
        std::string html = confab::markdown::render_markdown(input);
        std::cout << html.size() << '\n' << html;
        std::cout.flush();
    }
    return 0;
}
