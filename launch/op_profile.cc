#include "launch/op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <map>
#include <vector>

#include "dist/base/text_table.h"

namespace psaq::launch {
namespace {

namespace prof = torch::autograd::profiler;

struct OpTotals {
  int64_t calls = 0;
  double self_us = 0;
  double total_us = 0;
};

}  // namespace

OpProfile::~OpProfile() {
  if (running_) prof::disableProfilerLegacy();
}

void OpProfile::Start() {
  TORCH_CHECK(!running_, "OpProfile::Start: already started");
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(prof::ProfilerState::CPU));
  running_ = true;
}

std::string OpProfile::StopAndRender(int steps, int top) {
  TORCH_CHECK(running_, "OpProfile::StopAndRender: not started");
  TORCH_CHECK(steps >= 1, "OpProfile::StopAndRender: steps must be >= 1");
  running_ = false;
  const prof::thread_event_lists lists = prof::disableProfilerLegacy();
  std::map<std::string, OpTotals> ops;
  for (const auto& events : lists) {
    // Ranges nest per thread: a pop closes the latest push; the children's time is taken from
    // the parent's to get its self time.
    struct Open {
      const prof::LegacyEvent* push;
      double child_us;
    };
    std::vector<Open> stack;
    for (const prof::LegacyEvent& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double us = open.push->cpuElapsedUs(e);
        OpTotals& t = ops[open.push->name()];
        t.calls += 1;
        t.total_us += us;
        t.self_us += us - open.child_us;
        if (!stack.empty()) stack.back().child_us += us;
      }
    }
  }
  std::vector<std::pair<std::string, OpTotals>> sorted(ops.begin(), ops.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  double self_sum = 0;
  int64_t calls = 0;
  for (const auto& [name, t] : sorted) {
    self_sum += t.self_us;
    calls += t.calls;
  }
  base::TextTable table({"op", "calls/step", "self ms/step", "total ms/step", "self %"});
  for (int c = 1; c <= 4; ++c) table.SetAlign(c, base::TextTable::Align::kRight);
  for (size_t i = 0; i < sorted.size() && static_cast<int>(i) < top; ++i) {
    const OpTotals& t = sorted[i].second;
    table.AddRow({sorted[i].first, base::FormatFixed(static_cast<double>(t.calls) / steps, 1),
                  base::FormatFixed(t.self_us / 1e3 / steps, 2),
                  base::FormatFixed(t.total_us / 1e3 / steps, 2),
                  base::FormatFixed(100 * t.self_us / std::max(self_sum, 1e-9), 1)});
  }
  return table.Render(4) + "    all ops: " + base::FormatFixed(self_sum / 1e3 / steps, 2) +
         " ms self time and " + base::FormatFixed(static_cast<double>(calls) / steps, 0) +
         " op calls per step\n";
}

}  // namespace psaq::launch
