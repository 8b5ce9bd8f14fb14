#include "dist/base/text_table.h"

#include <c10/util/Exception.h>

#include <algorithm>

namespace psaq::base {

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

}  // namespace psaq::base
