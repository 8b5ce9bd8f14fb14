// psaq bench: the speed of a generation step (not a test). For one model and batch it times V1
// steps (with and without the entropy term, for each entropy implementation) and V2 sample and
// student steps on every rank, and rank 0 prints ms per step, samples/s over all ranks, achieved
// TFLOP/s (launch/step_flops.h), the entropy term's share of the V1 step, and peak memory.
// It also times the evaluation forward (no grad). With --profile, each measurement runs --steps
// more steps under the autograd profiler (launch/op_profile.h) after the timed ones and prints
// their per-op self times. launch/bench.sh runs it next to the Python/timm reference
// (launch/bench_timm.py).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "dist/logging.h"
#include "launch/job/run_report.h"
#include "launch/op_profile.h"
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
DEFINE_string(methods, "v1,v2,eval", "What to time: any of v1, v2 and eval.");
DEFINE_string(entropy_impls, "fused,reference",
              "Entropy implementations to time V1 with (fused, reference or both); V2 uses the "
              "first. The first one's peak memory is unaffected by the others.");
DEFINE_bool(profile, false,
            "After each measurement, run --steps more steps under the autograd profiler and print "
            "the ops with the largest self time (rank 0). The timings exclude these steps.");
DEFINE_int32(profile_top, 25, "Ops listed per --profile table.");
DEFINE_validator(steps, &psaq::launch::AtLeast<1>);
DEFINE_validator(warmup_steps, &psaq::launch::AtLeast<1>);
DEFINE_validator(profile_top, &psaq::launch::AtLeast<1>);

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

// --profile: records the steps between Begin() and End() on rank 0 and prints their op table.
class MaybeProfile {
 public:
  MaybeProfile(const ProcessContext& process, std::string what)
      : on_(FLAGS_profile && process.is_root()), what_(std::move(what)) {}
  int extra_steps() const { return FLAGS_profile ? FLAGS_steps : 0; }
  void Begin() {
    if (on_) profile_.Start();
  }
  void End() {
    if (!on_) return;
    std::printf("\nprofile: %s, %d steps\n%s", what_.c_str(), FLAGS_steps,
                profile_.StopAndRender(FLAGS_steps, FLAGS_profile_top).c_str());
    std::fflush(stdout);
  }

 private:
  bool on_;
  std::string what_;
  OpProfile profile_;
};

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
  MaybeProfile profile(process, what);
  const int timed = FLAGS_warmup_steps + FLAGS_steps;
  o.iterations_per_epoch = timed + profile.extra_steps();
  o.warmup_iterations = 0;
  o.kde.implementation = impl;
  o.weights.entropy = entropy_weight;
  gen::V1Generator generator(teacher, o, FLAGS_seed);
  gen::ImageBatch batch = generator.InitBatch(process.rank() * FLAGS_batch_size, FLAGS_batch_size);
  StepClock clock;
  clock.Tick();
  for (int i = 0; i < timed; ++i) {
    generator.Step(batch);  // reads the loss on the host: the step has finished on the device
    clock.Tick();
  }
  profile.Begin();
  while (!generator.Done(batch)) generator.Step(batch);
  profile.End();
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
  MaybeProfile sample_profile(process, "V2 sample step");
  MaybeProfile student_profile(process, "V2 student step");
  const int timed = FLAGS_warmup_steps + FLAGS_steps;
  o.sample_iterations = timed + sample_profile.extra_steps();
  o.image_warmup = 1;
  o.student_iterations = timed + student_profile.extra_steps();
  o.kde.implementation = impl;
  quant::QuantConfig bits;
  bits.weight_bits = 4;
  bits.act_bits = 8;
  quant::QuantizedModel student(model::CloneModel(teacher), bits);
  const int64_t n = FLAGS_batch_size;
  gen::V2Rounds rounds(teacher, student, o, FLAGS_seed, process.device_comm(),
                       {{process.rank() * n, n}}, n * process.size());
  StepClock sample, student_clock;
  // Steps 1..timed are timed; the profiled ones (if any) follow in each phase.
  int sample_steps = 0;
  int student_steps = 0;
  rounds.set_progress_callback([&](const gen::V2Progress& p) {
    if (p.phase == "sample") {
      ++sample_steps;
      if (sample_steps <= timed) sample.Tick();
      if (sample_steps == timed && sample_profile.extra_steps() > 0) sample_profile.Begin();
      if (sample_steps == timed + sample_profile.extra_steps() && sample_steps > timed) {
        sample_profile.End();
      }
    }
    if (p.phase == "student") {
      // The first student interval starts at the last sample step, profiled or not.
      if (student_steps == 0) student_clock.Tick();
      ++student_steps;
      if (student_steps <= timed) student_clock.Tick();
      if (student_steps == timed && student_profile.extra_steps() > 0) student_profile.Begin();
      if (student_steps == timed + student_profile.extra_steps() && student_steps > timed) {
        student_profile.End();
      }
    }
  });
  rounds.WarmupAndCalibrate();
  sample.Tick();  // the first sample step starts now
  rounds.RunRound();
  const double fwd = launch::ForwardFlopsPerImage(teacher.config()) * n;
  Timing s{"V2 sample step (teacher + W4/A8 student)", 0, 4 * fwd, 0, ""};
  s.ms = MaxOverRanks(process.comm(), sample.MeanMs(FLAGS_steps));
  Timing t{"V2 student step (grad all-reduce incl.)", 0, 4 * fwd, 0, ""};
  t.ms = MaxOverRanks(process.comm(), student_clock.MeanMs(FLAGS_steps));
  s.peak_mb = t.peak_mb = MaxOverRanks(process.comm(), PeakResidentMb());
  return {s, t};
}

// The evaluation forward: the teacher on a batch of random images, no grad (as quant::Evaluate).
Timing TimeEval(ProcessContext& process, model::VisionModel& teacher) {
  const model::ModelConfig& c = teacher.config();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({FLAGS_batch_size, c.in_chans(), c.img_size(), c.img_size()},
                                 at::TensorOptions().device(process.device()));
  MaybeProfile profile(process, "eval forward");
  StepClock clock;
  clock.Tick();
  for (int i = 0; i < FLAGS_warmup_steps + FLAGS_steps; ++i) {
    teacher.forward(x).sum().item<float>();  // waits for the device
    clock.Tick();
  }
  profile.Begin();
  for (int i = 0; i < profile.extra_steps(); ++i) teacher.forward(x).sum().item<float>();
  profile.End();
  Timing t{"eval forward (no grad)", 0, launch::ForwardFlopsPerImage(c) * FLAGS_batch_size, 0, ""};
  t.ms = MaxOverRanks(process.comm(), clock.MeanMs(FLAGS_steps));
  t.peak_mb = MaxOverRanks(process.comm(), PeakResidentMb());
  return t;
}

}  // namespace

void CheckBenchFlags() {
  if (FLAGS_model.empty()) throw UsageError("--model is required");
  for (const std::string& m : SplitFlagList(FLAGS_methods)) {
    if (m != "v1" && m != "v2" && m != "eval") {
      throw UsageError("--methods takes v1, v2 and/or eval, got '" + m + "'");
    }
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
  const bool eval = std::count(methods.begin(), methods.end(), "eval") > 0;
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
  if (eval) rows.push_back(TimeEval(process, *teacher));
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
