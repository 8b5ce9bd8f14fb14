#include "launch/study/study_file.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "dist/base/atomic_file.h"

namespace psaq::study {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Every error names the file and the key, so a user with several study files knows where to look.
[[noreturn]] void Fail(const std::string& path, const std::string& key, const std::string& why) {
  throw std::runtime_error(path + ": " + key + ": " + why);
}

void CheckKeys(const json& object, const std::set<std::string>& known, const std::string& path,
               const std::string& where) {
  for (const auto& item : object.items()) {
    if (known.count(item.key()) == 0) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      Fail(path, where + item.key(), "unknown key (known: " + list + ")");
    }
  }
}

// The grid list at grid.<key>: a non-empty array of distinct values, or `fallback` when absent
// and `fallback` is non-empty.
const json& GridList(const json& grid, const std::string& key, const std::string& path,
                     const json& fallback) {
  const std::string where = "grid." + key;
  if (!grid.contains(key)) {
    if (fallback.is_null()) Fail(path, where, "required (a list)");
    return fallback;
  }
  const json& list = grid.at(key);
  if (!list.is_array()) Fail(path, where, "must be a list, got " + list.dump());
  if (list.empty()) Fail(path, where, "must not be empty");
  for (size_t i = 0; i < list.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (list[i] == list[j]) Fail(path, where, "lists " + list[i].dump() + " twice");
    }
  }
  return list;
}

std::vector<int> IntList(const json& grid, const std::string& key, const std::string& path, int min,
                         int max, const json& fallback = json()) {
  std::vector<int> out;
  for (const json& v : GridList(grid, key, path, fallback)) {
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      Fail(path, "grid." + key,
           v.dump() + " is not an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
               "]");
    }
    out.push_back(v.get<int>());
  }
  return out;
}

std::vector<std::string> StringList(const json& grid, const std::string& key,
                                    const std::string& path, const json& fallback = json()) {
  std::vector<std::string> out;
  for (const json& v : GridList(grid, key, path, fallback)) {
    if (!v.is_string() || v.get<std::string>().empty()) {
      Fail(path, "grid." + key, v.dump() + " is not a non-empty string");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Cell names and the plan file (tab-separated, one line per cell) need these characters only.
bool IsLabel(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

StudyModel ResolveModel(const std::string& value, const fs::path& study_dir,
                        const std::string& zoo_dir, const std::string& path) {
  const bool is_path = value.find('/') != std::string::npos ||
                       (value.size() > 12 && value.substr(value.size() - 12) == ".safetensors");
  StudyModel model;
  if (is_path) {
    fs::path p = fs::path(value).is_absolute() ? fs::path(value) : study_dir / value;
    p = p.lexically_normal();
    if (!fs::is_regular_file(p))
      Fail(path, "grid.model", "'" + value + "': no such file " + p.string());
    model.label = p.stem().string();
    model.path = p.string();
  } else if (!zoo_dir.empty() &&
             fs::is_regular_file(fs::path(zoo_dir) / (value + ".safetensors"))) {
    model.label = value;
    model.path = (fs::path(zoo_dir) / (value + ".safetensors")).lexically_normal().string();
  } else {
    model.label = value;  // a preset name; psaq refuses unknown ones when the cell runs
    model.path = value;
  }
  if (model.path.find_first_of("\t\n\r") != std::string::npos) {
    Fail(path, "grid.model", "'" + value + "': the path must not contain tabs or line breaks");
  }
  if (!IsLabel(model.label)) {
    Fail(path, "grid.model",
         "'" + value + "': its name '" + model.label +
             "' must use only letters, digits, '_', '-' and '.' (it names the cells)");
  }
  return model;
}

// A flag value as psaq's command line spells it.
std::string FlagText(const json& v, const std::string& path, const std::string& key) {
  std::string text;
  if (v.is_string()) {
    text = v.get<std::string>();
  } else if (v.is_boolean()) {
    text = v.get<bool>() ? "true" : "false";
  } else if (v.is_number()) {
    text = v.dump();
  } else {
    Fail(path, key, "must be a string, number or boolean, got " + v.dump());
  }
  if (text.find_first_of("\t\n\r") != std::string::npos) {
    Fail(path, key, "must not contain tabs or line breaks");
  }
  return text;
}

// The flags object at `where` ("flags" or "method_flags.<method>") as (name, text) pairs.
std::vector<std::pair<std::string, std::string>> Flags(const json& flags, const std::string& where,
                                                       const std::string& path,
                                                       const StudyParseOptions& options) {
  if (!flags.is_object()) Fail(path, where, "must be an object of flag: value");
  static const std::set<std::string> kReserved = {"model",      "method", "num_samples",
                                                  "w_bits",     "a_bits", "seed",
                                                  "output_dir", "resume", "overwrite"};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& item : flags.items()) {
    const std::string& key = item.key();
    if (kReserved.count(key) != 0) {
      Fail(path, where + "." + key, "is set per cell by the study (grid or output_dir)");
    }
    if (!options.allowed_flags.empty() &&
        std::find(options.allowed_flags.begin(), options.allowed_flags.end(), key) ==
            options.allowed_flags.end()) {
      Fail(path, where + "." + key, "not a flag of psaq quantize (see psaq quantize --help)");
    }
    out.emplace_back(key, FlagText(item.value(), path, where + "." + key));
  }
  return out;
}

}  // namespace

bool Study::evaluates() const {
  for (const auto& [name, value] : flags) {
    if (name == "eval_dataset" && !value.empty()) return true;
  }
  return false;
}

bool ParseBits(const std::string& text, Bits* bits) {
  if (text.size() != 4 || text[0] != 'w' || text[2] != 'a') return false;
  const int w = text[1] - '0', a = text[3] - '0';
  if (w < 2 || w > 8 || a < 2 || a > 8) return false;
  *bits = Bits{w, a};
  return true;
}

std::string BitsName(const Bits& bits) {
  return "w" + std::to_string(bits.weight) + "a" + std::to_string(bits.activation);
}

Study ParseStudy(const std::string& text, const std::string& path,
                 const StudyParseOptions& options) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    Fail(path, "(file)", std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) Fail(path, "(file)", "must be a JSON object");
  CheckKeys(root, {"output_dir", "grid", "flags", "method_flags"}, path, "");

  Study study;
  const fs::path file = fs::absolute(path).lexically_normal();
  study.file = file.string();
  const fs::path dir = file.parent_path();

  if (!root.contains("output_dir") || !root["output_dir"].is_string() ||
      root["output_dir"].get<std::string>().empty()) {
    Fail(path, "output_dir", "required (a non-empty string)");
  }
  const fs::path out = root["output_dir"].get<std::string>();
  study.output_dir = (out.is_absolute() ? out : dir / out).lexically_normal().string();
  if (study.output_dir.find_first_of("\t\n\r") != std::string::npos) {
    Fail(path, "output_dir", "must not contain tabs or line breaks");
  }

  if (!root.contains("grid") || !root["grid"].is_object()) {
    Fail(path, "grid", "required (an object of lists)");
  }
  const json& grid = root["grid"];
  CheckKeys(grid, {"ranks", "num_samples", "method", "bits", "model", "seed"}, path, "grid.");
  study.ranks = IntList(grid, "ranks", path, 1, 1 << 20);
  study.num_samples = IntList(grid, "num_samples", path, 1, 1 << 30);
  study.seeds = IntList(grid, "seed", path, 0, (1 << 30), json::array({0}));
  for (const std::string& m : StringList(grid, "method", path)) {
    if (m != "v1" && m != "v2" && m != "noise" && m != "real") {
      Fail(path, "grid.method", "'" + m + "' is not one of v1, v2, noise, real");
    }
    study.methods.push_back(m);
  }
  for (const std::string& b : StringList(grid, "bits", path, json::array({"w4a8"}))) {
    Bits bits;
    if (!ParseBits(b, &bits)) {
      Fail(path, "grid.bits", "'" + b + "' is not w<bits>a<bits> with bits in 2..8 (e.g. w4a8)");
    }
    study.bits.push_back(bits);
  }
  for (const std::string& m : StringList(grid, "model", path)) {
    StudyModel model = ResolveModel(m, dir, options.zoo_dir, path);
    for (const StudyModel& other : study.models) {
      if (other.label == model.label) {
        Fail(path, "grid.model",
             "two models are named '" + model.label + "' (" + other.path + ", " + model.path +
                 "): cell names would collide");
      }
    }
    study.models.push_back(std::move(model));
  }

  if (root.contains("flags")) study.flags = Flags(root["flags"], "flags", path, options);
  if (root.contains("method_flags")) {
    const json& per_method = root["method_flags"];
    if (!per_method.is_object()) Fail(path, "method_flags", "must be an object of method: flags");
    CheckKeys(per_method, {"v1", "v2", "noise", "real"}, path, "method_flags.");
    for (const auto& item : per_method.items()) {
      const std::string where = "method_flags." + item.key();
      auto flags = Flags(item.value(), where, path, options);
      for (const auto& [name, value] : flags) {
        if (name == "eval_dataset") {
          Fail(path, where + "." + name, "belongs in flags: a study evaluates every cell or none");
        }
        for (const auto& shared : study.flags) {
          if (shared.first == name) Fail(path, where + "." + name, "is also in flags");
        }
      }
      if (!flags.empty()) study.method_flags[item.key()] = std::move(flags);
    }
  }
  return study;
}

Study ReadStudyFile(const std::string& path, const StudyParseOptions& options) {
  return ParseStudy(base::ReadTextFile(path), path, options);
}

}  // namespace psaq::study
