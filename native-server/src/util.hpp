// Small server helpers: wall-clock time, random ids, and writing whole lines to stderr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace confab::server {

std::int64_t now_ms();       // Unix milliseconds (system clock)
std::int64_t now_seconds();  // Unix seconds
double monotonic_seconds();  // for durations

// "<prefix>" + 32 lowercase hex chars from the OS CSPRNG (getrandom): unguessable 128-bit ids,
// because an execution id of an anonymous run is all that protects it.
std::string random_id(std::string_view prefix);

// ASCII-only lower case (header names, URL schemes): other bytes are kept as they are.
std::string ascii_lower(std::string_view s);

// One write(2) per line, so lines from several threads do not interleave.
void log_line(std::string_view line);

}  // namespace confab::server
