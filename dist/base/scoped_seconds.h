// Adds the wall-clock time of a scope to a running total (seconds spent in collectives).
//
//   double seconds = 0;
//   { ScopedSeconds timer(seconds); DoCollective(); }   // seconds += elapsed
#pragma once

#include <chrono>

namespace psaq::base {

class ScopedSeconds {
 public:
  explicit ScopedSeconds(double& total) : total_(total), start_(Clock::now()) {}
  ~ScopedSeconds() { total_ += std::chrono::duration<double>(Clock::now() - start_).count(); }

  ScopedSeconds(const ScopedSeconds&) = delete;
  ScopedSeconds& operator=(const ScopedSeconds&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  double& total_;
  Clock::time_point start_;
};

}  // namespace psaq::base
