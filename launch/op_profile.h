// Per-operator CPU self time of a region of code, from LibTorch's autograd profiler (the legacy
// CPU profiler: every ATen op and autograd backward node records a range on the calling thread).
// For `psaq bench --profile`: the same op names and the same "self time" (an op's time minus the
// ops it called) as Python's torch.autograd.profiler key_averages(), so the two sides of
// launch/bench.sh can be compared op by op.
//
//   OpProfile profile;
//   profile.Start();
//   ... steps ...
//   std::string table = profile.StopAndRender(10, 20);   // per step, top 20 ops
//
// Profiling adds a few microseconds per op: time the steps without it. Not thread-safe; only
// ranges on the thread that called Start() and the threads it propagates to are recorded.
#pragma once

#include <string>

namespace psaq::launch {

class OpProfile {
 public:
  OpProfile() = default;
  ~OpProfile();
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  // Starts recording. REQUIRES: not started.
  void Start();
  // Stops recording and returns a table of the `top` ops with the largest self time: name,
  // calls, self ms and total ms, each divided by `steps` (REQUIRES >= 1), and the share of the
  // summed self time; a last line gives the sum and the op count per step.
  std::string StopAndRender(int steps, int top);

 private:
  bool running_ = false;
};

}  // namespace psaq::launch
