// Plain-text tables with aligned columns, for the reports psaq prints (evaluation summaries, the
// per-layer SQNR table, `psaq inspect`). No colours, no box drawing: the output is meant for logs
// and terminals alike, and for grep.
//
//   TextTable table({"layer", "SQNR dB", "cosine"});
//   table.SetAlign(1, TextTable::Align::kRight);
//   table.AddRow({"blocks.0.attn.qkv", FormatFixed(31.2, 2), FormatFixed(0.9996, 4)});
//   LOG(INFO) << "\n" << table.Render();
//
// Rendered:
//   layer              SQNR dB  cosine
//   -----------------  -------  ------
//   blocks.0.attn.qkv    31.20  0.9996
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dist/base/format.h"  // FormatFixed etc. for the cells

namespace psaq::base {

class TextTable {
 public:
  enum class Align { kLeft, kRight };

  // One column per header entry; every column starts left-aligned.
  explicit TextTable(std::vector<std::string> headers);

  // REQUIRES: 0 <= column < number of columns (TORCH_CHECK).
  void SetAlign(int column, Align align);

  // REQUIRES: cells.size() == number of columns (TORCH_CHECK).
  void AddRow(std::vector<std::string> cells);

  int64_t num_rows() const { return static_cast<int64_t>(rows_.size()); }

  // The header, a rule of dashes under each header, then the rows; columns separated by two
  // spaces, each as wide as its widest cell (in bytes: cells are expected to be ASCII). Every line
  // ends in '\n' and carries no trailing spaces. `indent` spaces are put before every line.
  std::string Render(int indent = 0) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

// "key  value" lines with the values aligned, e.g. for a summary:
//   model   vit_fmnist
//   top-1   81.20%
// Every line ends in '\n'; `indent` spaces before each. A multi-line value continues under the
// value column.
std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields,
                         int indent = 0);

}  // namespace psaq::base
