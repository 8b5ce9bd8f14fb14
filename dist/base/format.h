// Numbers, byte sizes and durations as psaq prints them (summaries, progress lines, tables).
#pragma once

#include <cstdint>
#include <string>

namespace psaq::base {

// `value` with `decimals` digits after the point ("%.*f"); "inf" / "-inf" / "nan" as such.
std::string FormatFixed(double value, int decimals);

// A count with thousands separators: 1234567 -> "1,234,567".
std::string FormatCount(int64_t value);

// A byte size in binary units with one decimal: 999 -> "999 B", 81464 -> "79.6 KiB".
std::string FormatBytes(int64_t bytes);

// A duration as "1h02m03s", "2m05s" or "4.2s" (below a minute, one decimal); "?" when negative,
// NaN or infinite (an ETA not known yet). The one duration format of psaq's output.
std::string FormatSeconds(double seconds);

}  // namespace psaq::base
