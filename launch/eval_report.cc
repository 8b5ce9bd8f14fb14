#include "launch/eval_report.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "dist/base/text_table.h"

namespace psaq::launch {
namespace {

std::string Percent(int64_t count, int64_t total) {
  return base::FormatFixed(total > 0 ? 100.0 * static_cast<double>(count) / total : 0.0, 2) + "%";
}

}  // namespace

std::string FormatEvalSummary(const EvalReport& report) {
  const quant::EvalResult& r = report.result;
  const double rate = r.seconds > 0 ? static_cast<double>(r.images) / r.seconds : 0.0;
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"model", report.model_description},
      {"dataset", report.dataset_description},
      {"images", base::FormatCount(r.images) + " (" + base::FormatCount(r.skipped) + " skipped)"},
      {"top-1",
       Percent(r.top1_correct, r.images) + " (" + base::FormatCount(r.top1_correct) + ")"},
      {"top-" + std::to_string(r.topk),
       Percent(r.top5_correct, r.images) + " (" + base::FormatCount(r.top5_correct) + ")"},
      {"time", base::FormatSeconds(r.seconds) + " (" + base::FormatFixed(rate, 1) +
                   " images/s on " + std::to_string(report.ranks) + " rank" +
                   (report.ranks == 1 ? ")" : "s)")},
  };
  return base::RenderFields(fields);
}

std::string EvalReportJson(const EvalReport& report) {
  const quant::EvalResult& r = report.result;
  nlohmann::json json = {
      {"top1", r.top1()},
      {"top5", r.top5()},
      {"images", r.images},
      {"top1_correct", r.top1_correct},
      {"top5_correct", r.top5_correct},
      {"topk", r.topk},
      {"skipped", r.skipped},
      {"seconds", r.seconds},
      {"ranks", report.ranks},
      {"model", report.model},
      {"model_description", report.model_description},
      {"dataset", report.dataset_description},
      {"batch_size", report.batch_size},
      {"max_images", report.max_images},
      {"psaq_version", PSAQ_VERSION},
  };
  if (!report.quantization.empty()) json["quantization"] = report.quantization;
  for (const quant::TapError& e : report.layers) {
    nlohmann::json layer = {{"name", e.name}, {"cosine", e.cosine}};
    // JSON has no infinity: an exact layer (infinite SQNR) is null.
    layer["sqnr_db"] = std::isfinite(e.sqnr_db) ? nlohmann::json(e.sqnr_db) : nlohmann::json();
    json["layers"].push_back(std::move(layer));
  }
  return json.dump(2) + "\n";
}

}  // namespace psaq::launch
