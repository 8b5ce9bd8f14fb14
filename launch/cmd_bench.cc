// psaq bench: the speed of a generation step (not a test). For one model and batch it times V1
// steps (with and without the entropy term, for each entropy implementation) and V2 sample and
// student steps on every rank, and rank 0 prints ms per step, samples/s over all ranks, achieved
// TFLOP/s (launch/step_flops.h), the entropy term's share of the V1 step, and peak memory.
// launch/bench.sh runs it next to the Python/timm reference (launch/bench_timm.py).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "dist/logging.h"
#include "launch/job/run_report.h"
#include "launch/step_flops.h"
#include "gen/v1_generator.h"
#include "gen/v2_rounds.h"
#include "launch/flags.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "model/registry.h"
#include "quant/quantized_model.h"
#include "dist/base/text_table.h"

DEFINE_int32(steps, 10, "Timed steps per measurement (after the warm-up steps).");
DEFINE_int32(warmup_steps, 3, "Untimed steps before each measurement (>= 1).");
DEFINE_string(methods, "v1,v2", "What to time: v1, v2 or v1,v2.");
DEFINE_string(entropy_impls, "fused,reference",
              "Entropy implementations to time V1 with (fused, reference or both); V2 uses the "
              "first. The first one's peak memory is unaffected by the others.");
DEFINE_validator(steps, &psaq::launch::AtLeast<1>);
DEFINE_validator(warmup_steps, &psaq::launch::AtLeast<1>);

namespace psaq::launch {
namespace {

struct Timing {
  std::string what;
  double ms = 0;          // mean per step, max over ranks
  double flops = 0;       // per step on one rank
  double peak_mb = 0;     // process peak resident memory after the measurement, max over ranks
  std::string note;
};

double PeakResidentMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

gen::KdeImplementation ParseImpl(const std::string& name) {
  if (name == "fused") return gen::KdeImplementation::kFused;
  if (name == "reference") return gen::KdeImplementation::kReference;
  throw UsageError("--entropy_impls takes fused and/or reference, got '" + name + "'");
}

// The mean of the last `steps` durations between consecutive calls of Tick().
class StepClock {
 public:
  void Tick() { stamps_.push_back(job::NowSeconds()); }
  double MeanMs(int steps) const {
    TORCH_CHECK(static_cast<int>(stamps_.size()) > steps, "StepClock: too few steps");
    const size_t n = stamps_.size();
    return 1e3 * (stamps_[n - 1] - stamps_[n - 1 - static_cast<size_t>(steps)]) / steps;
  }

 private:
  std::vector<double> stamps_;
};

// FLOP/s of float32 matmuls on `device` ([n x n] @ [n x n], the best of a few runs): the rate a
// step could reach if it were all matmuls, for the "FLOP floor" column.
double MatmulFlopsPerSecond(const c10::Device& device) {
  const int64_t n = 512;
  const at::Tensor a = at::randn({n, n}, at::TensorOptions().device(device));
  const at::Tensor b = at::randn({n, n}, at::TensorOptions().device(device));
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double start = job::NowSeconds();
    at::Tensor c;
    for (int i = 0; i < 10; ++i) c = at::mm(a, b);
    c.sum().item<float>();  // waits for the device
    best = std::max(best, 10 * 2.0 * n * n * n / (job::NowSeconds() - start));
  }
  return best;
}

double MaxOverRanks(dist::Communicator& comm, double value) {
  at::Tensor t = at::tensor({value}, at::kDouble);
  comm.AllReduce(t, dist::ReduceOp::kMax);
  return t.item<double>();
}

Timing TimeV1(ProcessContext& process, model::VisionModel& teacher, gen::KdeImplementation impl,
              double entropy_weight, const std::string& what) {
  gen::V1Options o;
  o.batch_size = FLAGS_batch_size;
  o.epochs = 1;
  o.iterations_per_epoch = FLAGS_warmup_steps + FLAGS_steps;
  o.warmup_iterations = 0;
  o.kde.implementation = impl;
  o.weights.entropy = entropy_weight;
  gen::V1Generator generator(teacher, o, FLAGS_seed);
  gen::ImageBatch batch = generator.InitBatch(process.rank() * FLAGS_batch_size, FLAGS_batch_size);
  StepClock clock;
  clock.Tick();
  while (!generator.Done(batch)) {
    generator.Step(batch);  // reads the loss on the host: the step has finished on the device
    clock.Tick();
  }
  Timing t;
  t.what = what;
  t.ms = MaxOverRanks(process.comm(), clock.MeanMs(FLAGS_steps));
  t.flops = 2 * launch::ForwardFlopsPerImage(teacher.config()) * FLAGS_batch_size;
  t.peak_mb = MaxOverRanks(process.comm(), PeakResidentMb());
  return t;
}

std::vector<Timing> TimeV2(ProcessContext& process, model::VisionModel& teacher,
                           gen::KdeImplementation impl) {
  gen::V2Options o;
  o.batch_size = FLAGS_batch_size;
  o.rounds = 1;
  o.sample_iterations = FLAGS_warmup_steps + FLAGS_steps;
  o.image_warmup = 1;
  o.student_iterations = FLAGS_warmup_steps + FLAGS_steps;
  o.kde.implementation = impl;
  quant::QuantConfig bits;
  bits.weight_bits = 4;
  bits.act_bits = 8;
  quant::QuantizedModel student(model::CloneModel(teacher), bits);
  const int64_t n = FLAGS_batch_size;
  gen::V2Rounds rounds(teacher, student, o, FLAGS_seed, process.device_comm(),
                       {{process.rank() * n, n}}, n * process.size());
  StepClock sample, student_clock;
  rounds.set_progress_callback([&](const gen::V2Progress& p) {
    if (p.phase == "sample") sample.Tick();
    if (p.phase == "student") student_clock.Tick();
  });
  rounds.WarmupAndCalibrate();
  sample.Tick();  // the first sample step starts now
  rounds.RunRound();
  const double fwd = launch::ForwardFlopsPerImage(teacher.config()) * n;
  Timing s{"V2 sample step (teacher + W4/A8 student)", 0, 4 * fwd, 0, ""};
  s.ms = MaxOverRanks(process.comm(), sample.MeanMs(FLAGS_steps));
  // Student steps follow the last sample step: the first student interval starts there.
  Timing t{"V2 student step (grad all-reduce incl.)", 0, 4 * fwd, 0, ""};
  t.ms = MaxOverRanks(process.comm(), student_clock.MeanMs(FLAGS_steps));
  s.peak_mb = t.peak_mb = MaxOverRanks(process.comm(), PeakResidentMb());
  return {s, t};
}

}  // namespace

void CheckBenchFlags() {
  if (FLAGS_model.empty()) throw UsageError("--model is required");
  for (const std::string& m : SplitFlagList(FLAGS_methods)) {
    if (m != "v1" && m != "v2") throw UsageError("--methods takes v1 and/or v2, got '" + m + "'");
  }
  if (SplitFlagList(FLAGS_entropy_impls).empty()) throw UsageError("--entropy_impls is empty");
  for (const std::string& i : SplitFlagList(FLAGS_entropy_impls)) ParseImpl(i);
}

int RunBench(ProcessContext& process) {
  model::ModelPtr teacher = model::LoadModel(FLAGS_model);
  teacher->to(process.device());
  teacher->eval();
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
  const std::vector<std::string> impls = SplitFlagList(FLAGS_entropy_impls);
  const std::vector<std::string> methods = SplitFlagList(FLAGS_methods);
  const bool v1 = std::count(methods.begin(), methods.end(), "v1") > 0;
  const bool v2 = std::count(methods.begin(), methods.end(), "v2") > 0;
  if (process.is_root()) {
    LOG(INFO) << "bench: " << teacher->config().name << ", batch " << FLAGS_batch_size
              << " per rank, " << process.size() << " rank(s), " << process.device() << ", "
              << process.intra_op_threads() << " thread(s) per rank; " << FLAGS_warmup_steps
              << " + " << FLAGS_steps << " steps per measurement";
  }
  std::vector<Timing> rows;
  double entropy_share = -1;
  if (v1) {
    for (const std::string& impl : impls) {
      Timing on = TimeV1(process, *teacher, ParseImpl(impl), 1.0, "V1 step, " + impl + " entropy");
      if (impl == impls.front()) {
        Timing off = TimeV1(process, *teacher, ParseImpl(impl), 0.0, "V1 step without entropy");
        entropy_share = std::max(0.0, 1.0 - off.ms / on.ms);
        on.note = "entropy " + base::FormatFixed(100 * entropy_share, 1) + "% of the step";
        rows.push_back(on);
        rows.push_back(off);
      } else {
        rows.push_back(on);
      }
    }
  }
  if (v2) {
    for (const Timing& t : TimeV2(process, *teacher, ParseImpl(impls.front()))) rows.push_back(t);
  }
  if (!process.is_root()) return 0;
  const double matmul_rate = MatmulFlopsPerSecond(process.device());
  base::TextTable table(
      {"step", "ms/step", "samples/s", "TFLOP/s", "floor ms", "peak RSS MB", "note"});
  for (int c = 1; c <= 5; ++c) table.SetAlign(c, base::TextTable::Align::kRight);
  const double images = static_cast<double>(FLAGS_batch_size) * process.size();
  for (const Timing& t : rows) {
    table.AddRow({t.what, base::FormatFixed(t.ms, 1), base::FormatFixed(images / (t.ms / 1e3), 1),
                  base::FormatFixed(t.flops * process.size() / (t.ms / 1e3) / 1e12, 3),
                  base::FormatFixed(1e3 * t.flops / matmul_rate, 1),
                  base::FormatFixed(t.peak_mb, 0), t.note});
  }
  std::printf("\npsaq bench: %s, batch %d x %d rank(s), %s (forward %.3f GFLOP/image)\n%s",
              teacher->config().name.c_str(), FLAGS_batch_size, process.size(),
              process.device().str().c_str(),
              launch::ForwardFlopsPerImage(teacher->config()) / 1e9, table.Render(2).c_str());
  std::printf("  (ms/step: mean over %d steps, slowest rank; floor: the step's FLOPs at this rank's "
              "measured matmul rate, %.1f GFLOP/s; peak RSS: process high-water mark, cumulative "
              "over the rows)\n",
              FLAGS_steps, matmul_rate / 1e9);
  std::fflush(stdout);
  return 0;
}

}  // namespace psaq::launch
