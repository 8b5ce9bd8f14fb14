#include "dist/base/utc_time.h"

#include <ctime>

namespace psaq::base {

std::string UtcNow() { return UtcString(std::time(nullptr)); }

std::string UtcString(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace psaq::base
