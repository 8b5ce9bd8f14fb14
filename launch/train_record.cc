#include "launch/train_record.h"

#include <gflags/gflags.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "launch/flags.h"
#include "launch/subcommand.h"
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "dist/base/text_table.h"

namespace psaq::launch {
namespace {

using Json = nlohmann::json;

// timm's training-only kwargs that would change training: psaq's models implement none of them.
constexpr const char* kDropoutKwargs[] = {"drop_rate",      "pos_drop_rate",  "patch_drop_rate",
                                          "proj_drop_rate", "attn_drop_rate", "drop_path_rate"};

// "0.2860,0.3530" -> {0.286, 0.353}; throws std::invalid_argument naming the flag.
std::vector<double> ParseNumbers(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(v)) {
      throw std::invalid_argument("--" + flag + ": '" + item + "' is not a number");
    }
    values.push_back(v);
  }
  if (values.empty()) throw std::invalid_argument("--" + flag + " is empty");
  return values;
}

// Single-quotes `arg` for a POSIX shell unless it only holds safe characters.
std::string ShellQuote(const std::string& arg) {
  const bool safe = !arg.empty() && arg.find_first_not_of(
                                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_=./,:+@%") == std::string::npos;
  if (safe) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Fixed(double value, int decimals) { return base::FormatFixed(value, decimals); }

}  // namespace

model::ModelConfig TrainModelConfigFromFlags(const std::string& arch,
                                             const std::string& config_json,
                                             const std::string& mean, const std::string& std,
                                             const std::string& name, const std::string& output) {
  const Json kwargs = Json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!kwargs.is_object()) {
    throw std::invalid_argument("--config_json is not a JSON object: " + config_json);
  }
  for (const char* key : kDropoutKwargs) {
    if (kwargs.contains(key) && !(kwargs[key].is_number() && kwargs[key].get<double>() == 0)) {
      throw std::invalid_argument(std::string("--config_json: '") + key +
                                  "' = " + kwargs[key].dump() +
                                  ": psaq's models have no dropout or drop-path to train with");
    }
  }
  const Json preprocess = {
      {"mean", ParseNumbers("mean", mean)}, {"std", ParseNumbers("std", std)}, {"crop_pct", 1.0}};
  model::ModelConfig config = model::ConfigFromMetadata(
      {{"arch", arch}, {"config", config_json}, {"preprocess", preprocess.dump()}},
      "--arch/--config_json/--mean/--std");
  config.name = name.empty() ? std::filesystem::path(output).stem().string() : name;
  return config;
}

std::string TrainCommandLine(int world_size) {
  const std::vector<std::string>& argv = gflags::GetArgvs();
  std::string line = world_size > 1 ? "mpirun -np " + std::to_string(world_size) + " " : "";
  for (size_t i = 0; i < argv.size(); ++i) {
    line += ShellQuote(argv[i]);
    if (i == 0) line += " train";
    if (i + 1 < argv.size()) line += " ";
  }
  return line;
}

std::map<std::string, std::string> TrainMetadata(const model::VisionModel& model,
                                                 const TrainRecord& r) {
  std::map<std::string, std::string> meta = model::ConfigToMetadata(model.config());
  Json flags = Json::object();
  if (const Subcommand* train = FindSubcommand("train")) {
    for (const auto& info : FlagsOf(*train)) flags[info.name] = info.current_value;
  }
  Json history = Json::array();
  for (const train::EpochStats& e : r.result.epochs) {
    history.push_back({{"epoch", e.epoch},
                       {"loss", e.train_loss},
                       {"train_top1", e.train_top1},
                       {"test_top1", e.evaluated ? Json(e.test.top1()) : Json(nullptr)},
                       {"lr", e.lr},
                       {"seconds", e.seconds}});
  }
  meta["psaq_version"] = PSAQ_VERSION;
  meta["train_command"] = r.command;
  meta["train_flags"] = flags.dump();
  meta["train_world_size"] = std::to_string(r.world_size);
  meta["train_seed"] = std::to_string(r.options.seed);
  meta["train_epochs"] = std::to_string(r.result.epochs.size());
  meta["train_steps"] = std::to_string(r.result.steps);
  meta["train_seconds"] = Fixed(r.result.seconds, 1);
  meta["train_data"] = r.train_set->Describe();
  meta["train_data_checksum"] = model::FormatChecksum(r.train_set->ContentChecksum());
  meta["test_data"] = r.test_set->Describe();
  meta["test_data_checksum"] = model::FormatChecksum(r.test_set->ContentChecksum());
  meta["test_images"] = std::to_string(r.test_images);
  meta["test_top1"] = Fixed(r.test_top1_percent, 2);
  meta["train_history"] = history.dump();
  return meta;
}

void WriteTrainedModel(const std::string& path, const model::VisionModel& model,
                       const TrainRecord& record) {
  model::WriteSafetensors(path, model::StateDict(model), TrainMetadata(model, record));
}

std::string TrainSummary(const model::VisionModel& model, const TrainRecord& r) {
  base::TextTable table({"epoch", "lr", "loss", "train top-1", "test top-1", "time", "img/s"});
  for (int c = 0; c < 7; ++c) table.SetAlign(c, base::TextTable::Align::kRight);
  for (const train::EpochStats& e : r.result.epochs) {
    char lr[32];
    std::snprintf(lr, sizeof(lr), "%.3e", e.lr);
    table.AddRow({std::to_string(e.epoch), lr, Fixed(e.train_loss, 4), Fixed(e.train_top1, 2) + "%",
                  e.evaluated ? Fixed(e.test.top1(), 2) + "%" : "-",
                  base::FormatSeconds(e.seconds), Fixed(e.images_per_second, 0)});
  }
  int64_t params = 0;
  for (const at::Tensor& p : model.parameters()) params += p.numel();
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"model", model.config().name + " (" + model::ArchName(model.config().arch) + ", " +
                    base::FormatCount(params) + " parameters)"},
      {"trained on", r.train_set->Describe()},
      {"ranks", std::to_string(r.world_size)},
      {"time",
       base::FormatSeconds(r.result.seconds) + " (" + std::to_string(r.result.steps) + " steps)"},
      {"test top-1",
       Fixed(r.test_top1_percent, 2) + "% of " + base::FormatCount(r.test_images) + " images"},
  };
  return table.Render() + "\n" + base::RenderFields(fields);
}

}  // namespace psaq::launch
