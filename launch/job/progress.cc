#include "launch/job/progress.h"

#include <cmath>
#include <cstdio>

#include "dist/base/format.h"
#include "dist/logging.h"

namespace psaq::job {

ProgressReporter::ProgressReporter(int rank, const ProgressOptions& options)
    : rank_(rank), options_(options) {}

void ProgressReporter::BeginPhase(const std::string& phase, int64_t total_units,
                                  double samples_per_unit, int64_t done_units) {
  phase_ = phase;
  total_ = total_units;
  done_ = done_units;
  resumed_ = done_units;
  samples_per_unit_ = samples_per_unit;
  first_done_ = Clock::now();
  last_line_ = Clock::now();
  since_line_ = 0;
}

double ProgressReporter::rate() const {
  // Units after the first of the phase over the time since the first finished.
  const int64_t counted = done_ - resumed_ - 1;
  const double elapsed = std::chrono::duration<double>(Clock::now() - first_done_).count();
  if (counted <= 0 || elapsed <= 0) return 0;
  return static_cast<double>(counted) * samples_per_unit_ / elapsed;
}

double ProgressReporter::eta_seconds() const {
  const double r = rate();
  if (r <= 0) return -1;
  return static_cast<double>(total_ - done_) * samples_per_unit_ / r;
}

std::string ProgressReporter::Line(const std::string& where, const gen::LossTerms* loss) const {
  char buffer[256];
  std::string line = phase_ + " " + where;
  if (loss != nullptr) {
    std::snprintf(buffer, sizeof(buffer), " | loss %.4g ent %.4g ce %.4g tv %.4g l2 %.4g D %.4g",
                  loss->total_value, loss->entropy, loss->cross_entropy, loss->tv, loss->l2,
                  loss->discrepancy);
    line += buffer;
  }
  std::snprintf(buffer, sizeof(buffer), " | %.1f samples*it/s | %lld/%lld | ETA %s", rate(),
                static_cast<long long>(done_), static_cast<long long>(total_),
                base::FormatSeconds(eta_seconds()).c_str());
  return line + buffer;
}

bool ProgressReporter::Update(const std::string& where, const gen::LossTerms* loss) {
  ++done_;
  ++since_line_;
  const Clock::time_point now = Clock::now();
  if (done_ - resumed_ == 1) first_done_ = now;
  const bool by_time =
      std::chrono::duration<double>(now - last_line_).count() >= options_.interval_seconds;
  const bool by_count = options_.every_n > 0 && since_line_ >= options_.every_n;
  if (!(by_time || by_count || done_ >= total_)) return false;
  last_line_ = now;
  since_line_ = 0;
  if (rank_ != 0) return false;
  LOG(INFO) << Line(where, loss);
  return true;
}

}  // namespace psaq::job
