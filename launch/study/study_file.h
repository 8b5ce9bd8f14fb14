// A scaling study: a grid of `psaq quantize` runs (cells) read from a small JSON file.
//
//   {
//     "output_dir": "runs/swin-scaling",          required; relative to the study file's folder
//     "grid": {
//       "ranks":       [1, 2, 4],                 required; MPI ranks of a cell, >= 1
//       "num_samples": [32, 128],                 required; --num_samples, >= 1
//       "method":      ["v1", "v2"],              required; v1, v2, noise or real
//       "bits":        ["w4a8", "w8a8"],          default ["w4a8"]; w<2..8>a<2..8>
//       "model":       ["fmnist_swin"],           required; a model/zoo name, a .safetensors path
//                                                 (relative to the study file) or a preset name
//       "seed":        [0, 1]                     default [0]; >= 0
//     },
//     "flags": {"samples_per_batch": 4, "eval_dataset": "fashion_mnist"},   default {}
//     "method_flags": {"v1": {"v1_iterations": 20}, "v2": {"v2_rounds": 2}}  default {}
//   }
//
// "flags" are further `psaq quantize` flags shared by every cell, "method_flags" those of the
// cells of one method only (psaq refuses a flag that does not apply to the method, e.g.
// --v2_rounds with --method=v1), as JSON strings, numbers or booleans, passed as written (give
// absolute paths). The grid's own flags (model, method, num_samples, w_bits, a_bits, seed) and
// output_dir, resume, overwrite are refused there: the study sets them per cell. A flag may not
// be in both "flags" and a method's "method_flags"; eval_dataset only in "flags" (a study
// evaluates every cell or none).
//
// Errors: every problem is one std::runtime_error "<study file>: <key>: <reason>" (unknown key,
// wrong type, empty or duplicate list, value out of range, unknown flag), thrown before any work.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace psaq::study {

struct Bits {
  int weight = 4;      // --w_bits
  int activation = 8;  // --a_bits
  bool operator==(const Bits& o) const { return weight == o.weight && activation == o.activation; }
};

// A model of the grid, resolved.
struct StudyModel {
  std::string label;  // in cell names and the CSV: the zoo name, file stem or preset name
  std::string path;   // --model: an absolute file path, or the preset name as given
};

struct Study {
  std::string file;        // the study file, absolute
  std::string output_dir;  // absolute; cells go to <output_dir>/cells/<cell name>/
  std::vector<int> ranks;
  std::vector<int> num_samples;
  std::vector<std::string> methods;
  std::vector<Bits> bits;
  std::vector<StudyModel> models;
  std::vector<int> seeds;
  // The shared flags as (name, value), sorted by name.
  std::vector<std::pair<std::string, std::string>> flags;
  // Per method ("v1", ...): its own flags, sorted by name; methods without any are absent.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> method_flags;
  // True when "flags" asks for an evaluation (eval_dataset non-empty): a cell then is finished
  // only when its report holds the quantized model's top-1.
  bool evaluates() const;
};

struct StudyParseOptions {
  // Where zoo names are looked up: "<zoo_dir>/<name>.safetensors". Default "" (no zoo).
  std::string zoo_dir;
  // The flag names "flags" may use (those of `psaq quantize`). Empty: any name is accepted.
  std::vector<std::string> allowed_flags;
};

// Parses the study text of `path` (for messages and relative paths). Throws std::runtime_error as
// described above.
Study ParseStudy(const std::string& text, const std::string& path,
                 const StudyParseOptions& options = {});

// Reads and parses the file at `path` (base::ReadTextFile; throws naming the path).
Study ReadStudyFile(const std::string& path, const StudyParseOptions& options = {});

// "w4a8" -> {4, 8}; false for anything else, or bits outside [2, 8].
bool ParseBits(const std::string& text, Bits* bits);
std::string BitsName(const Bits& bits);  // {4, 8} -> "w4a8"

}  // namespace psaq::study
