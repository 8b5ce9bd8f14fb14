#include "quant/text_table.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace psaq::quant {

TextTable::TextTable(std::vector<std::string> headers)
    : headers_(std::move(headers)), align_(headers_.size(), Align::kLeft) {
  TORCH_CHECK(!headers_.empty(), "TextTable: at least one column");
}

void TextTable::SetAlign(int column, Align align) {
  TORCH_CHECK(column >= 0 && column < static_cast<int>(align_.size()), "TextTable: column ", column,
              " out of range [0, ", align_.size(), ")");
  align_[column] = align;
}

void TextTable::AddRow(std::vector<std::string> cells) {
  TORCH_CHECK(cells.size() == headers_.size(), "TextTable: a row has ", cells.size(),
              " cells but the table has ", headers_.size(), " columns");
  rows_.push_back(std::move(cells));
}

std::string TextTable::Render(int indent) const {
  const size_t columns = headers_.size();
  std::vector<size_t> width(columns);
  for (size_t c = 0; c < columns; ++c) {
    width[c] = headers_[c].size();
    for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text(static_cast<size_t>(std::max(indent, 0)), ' ');
    for (size_t c = 0; c < columns; ++c) {
      const std::string pad(width[c] - cells[c].size(), ' ');
      if (c > 0) text += "  ";
      text += align_[c] == Align::kRight ? pad + cells[c] : cells[c] + pad;
    }
    // Left-aligned last columns leave padding behind; drop it.
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  };
  line(headers_);
  std::vector<std::string> rule(columns);
  for (size_t c = 0; c < columns; ++c) rule[c] = std::string(width[c], '-');
  line(rule);
  for (const auto& row : rows_) line(row);
  return out;
}

std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields,
                         int indent) {
  size_t width = 0;
  for (const auto& field : fields) width = std::max(width, field.first.size());
  const std::string margin(static_cast<size_t>(std::max(indent, 0)), ' ');
  const std::string hanging(width + 2, ' ');
  std::string out;
  for (const auto& [key, value] : fields) {
    std::string text = margin + key + std::string(width - key.size() + 2, ' ');
    for (const char c : value) text += c == '\n' ? "\n" + margin + hanging : std::string(1, c);
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  }
  return out;
}

std::string FormatFixed(double value, int decimals) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string FormatCount(int64_t value) {
  const std::string digits =
      std::to_string(value < 0 ? -static_cast<uint64_t>(value) : static_cast<uint64_t>(value));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  return FormatFixed(value, 1) + " " + kUnits[unit];
}

std::string FormatSeconds(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "?";
  if (seconds < 60) return FormatFixed(seconds, 1) + "s";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  char buf[64];
  if (h > 0) {
    std::snprintf(buf, sizeof(buf), "%" PRId64 "h%02" PRId64 "m%02" PRId64 "s", h, m, s);
  } else {
    std::snprintf(buf, sizeof(buf), "%" PRId64 "m%02" PRId64 "s", m, s);
  }
  return buf;
}

}  // namespace psaq::quant
