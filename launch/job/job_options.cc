#include "launch/job/job_options.h"

#include <c10/util/Exception.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "dist/base/format.h"
#include "quant/granularity.h"
#include "quant/range_observer.h"

namespace psaq::job {

std::string CalibrationSourceName(CalibrationSource source) {
  switch (source) {
    case CalibrationSource::kV1:
      return "v1";
    case CalibrationSource::kV2:
      return "v2";
    case CalibrationSource::kNoise:
      return "noise";
    case CalibrationSource::kReal:
      return "real";
    case CalibrationSource::kSampleFiles:
      return "files";
  }
  return "?";
}

CalibrationSource ParseCalibrationSource(const std::string& name) {
  for (CalibrationSource s :
       {CalibrationSource::kV1, CalibrationSource::kV2, CalibrationSource::kNoise,
        CalibrationSource::kReal, CalibrationSource::kSampleFiles}) {
    if (CalibrationSourceName(s) == name) return s;
  }
  throw std::invalid_argument("unknown calibration source '" + name +
                              "' (expected v1, v2, noise, real or files)");
}

std::string MethodName(CalibrationSource source) {
  switch (source) {
    case CalibrationSource::kV1:
      return "psaq_v1";
    case CalibrationSource::kV2:
      return "psaq_v2";
    default:
      return CalibrationSourceName(source);
  }
}

namespace {

// The offset of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), or npos when `s` is valid.
size_t InvalidUtf8At(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = p[i];
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;  // cut short
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string::npos;
}

// `value` with every byte outside printable ASCII written as \xNN.
std::string Escaped(const std::string& value) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : value) {
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
    }
  }
  return out;
}

// Every string psaq records in report.json, sample shards and checkpoints must be UTF-8 (JSON
// cannot hold anything else); found now, not when the report is written at the end of the job.
void CheckUtf8(const std::string& field, const std::string& value) {
  const size_t at = InvalidUtf8At(value);
  TORCH_CHECK(at == std::string::npos, "QuantizeJobOptions.", field, " is not valid UTF-8 (byte ",
              at, " of '", Escaped(value),
              "'); psaq records it in report.json, which must be UTF-8: use a UTF-8 name");
}

}  // namespace

void ValidateJobOptions(const QuantizeJobOptions& o) {
  CheckUtf8("output_dir", o.output_dir);
  CheckUtf8("model", o.model);
  CheckUtf8("model_fallback_preset", o.model_fallback_preset);
  for (const std::string& f : o.sample_files) CheckUtf8("sample_files", f);
  CheckUtf8("real.dataset", o.real.dataset);
  CheckUtf8("real.dataset_dir", o.real.dataset_dir);
  CheckUtf8("real.split", o.real.split);
  CheckUtf8("eval.dataset", o.eval.dataset);
  CheckUtf8("eval.dataset_dir", o.eval.dataset_dir);
  CheckUtf8("device", o.device);
  CheckUtf8("v1_teacher", o.v1_teacher);
  for (const auto& entry : o.quant.bits_overrides) CheckUtf8("quant.bits_overrides", entry.first);
  TORCH_CHECK(!o.model.empty(), "QuantizeJobOptions.model is empty");
  TORCH_CHECK(!o.output_dir.empty(), "QuantizeJobOptions.output_dir is empty");
  TORCH_CHECK(o.source == CalibrationSource::kSampleFiles || o.num_samples >= 1,
              "QuantizeJobOptions.num_samples must be >= 1, got ", o.num_samples);
  TORCH_CHECK(o.source != CalibrationSource::kSampleFiles || !o.sample_files.empty(),
              "QuantizeJobOptions.sample_files is empty for the 'files' source");
  TORCH_CHECK(o.batch_size >= 1, "QuantizeJobOptions.batch_size must be >= 1, got ", o.batch_size);
  TORCH_CHECK(o.checkpoint_every >= -1,
              "QuantizeJobOptions.checkpoint_every must be >= 0, or -1 for none");
  quant::ValidateQuantConfig(o.quant);
  if (o.source == CalibrationSource::kV1) {
    gen::V1Options v1 = o.v1;
    v1.batch_size = o.batch_size;
    gen::ValidateV1Options(v1);
  }
  if (o.source == CalibrationSource::kV2) {
    gen::V2Options v2 = o.v2;
    v2.batch_size = o.batch_size;
    gen::ValidateV2Options(v2);
  }
}

namespace {

int64_t Saturate(double bytes) {
  constexpr auto kMax = std::numeric_limits<int64_t>::max();
  return bytes >= static_cast<double>(kMax) ? kMax : static_cast<int64_t>(bytes);
}

bool Generated(CalibrationSource source) {
  return source == CalibrationSource::kV1 || source == CalibrationSource::kV2;
}

}  // namespace

int64_t SampleMemoryBytes(const QuantizeJobOptions& o, int world, const model::ModelConfig& c) {
  TORCH_CHECK(world >= 1, "SampleMemoryBytes: world must be >= 1, got ", world);
  if (o.source == CalibrationSource::kSampleFiles) return 0;
  const int64_t per_rank = o.num_samples / world + (o.num_samples % world != 0 ? 1 : 0);
  // Doubles: 10^12 samples of 224 px overflow no int64 here, 10^18 would.
  const double image = 4.0 * c.in_chans() * c.img_size() * c.img_size();
  double bytes = image * static_cast<double>(per_rank);
  if (Generated(o.source)) {
    bytes += 4.0 * image * static_cast<double>(std::min(o.batch_size, per_rank));
  }
  return Saturate(bytes);
}

void CheckSampleMemory(const QuantizeJobOptions& o, int world, const model::ModelConfig& c,
                       int64_t memory_bytes) {
  const int64_t need = SampleMemoryBytes(o, world, c);
  if (need <= memory_bytes) return;
  const int64_t per_rank = o.num_samples / world + (o.num_samples % world != 0 ? 1 : 0);
  std::string text = "num_samples=" + std::to_string(o.num_samples) + " needs " +
                     base::FormatBytes(need) + " of memory per rank (" + std::to_string(per_rank) +
                     " samples of " + std::to_string(c.in_chans()) + "x" +
                     std::to_string(c.img_size()) + "x" + std::to_string(c.img_size()) +
                     " float32 on each of " + std::to_string(world) + " rank(s)";
  if (Generated(o.source)) {
    text += ", plus a batch of samples_per_batch=" + std::to_string(o.batch_size) +
            " with its Adam state";
  }
  throw std::runtime_error(text + "), more than the " + base::FormatBytes(memory_bytes) +
                           " of this machine");
}

int64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::numeric_limits<int64_t>::max();
  return Saturate(static_cast<double>(pages) * static_cast<double>(page));
}

nlohmann::json JobOptionsToJson(const QuantizeJobOptions& o, bool for_checkpoint) {
  nlohmann::json j = {{"source", CalibrationSourceName(o.source)},
                      {"model", o.model},
                      {"model_fallback_preset", o.model_fallback_preset},
                      {"num_samples", o.num_samples},
                      {"batch_size", o.batch_size},
                      {"seed", o.seed}};
  nlohmann::json quant = {
      {"weight_bits", o.quant.weight_bits},
      {"act_bits", o.quant.act_bits},
      {"weight_granularity", quant::GranularityName(o.quant.weight_granularity)},
      {"act_observer", quant::ObserverKindName(o.quant.act_observer)},
      {"fold_prior", quant::FoldPriorName(o.quant.fold_prior)},
      {"bits_overrides", o.quant.bits_overrides},
      {"input_range", quant::InputRangeName(o.quant.input_range)},
      {"quantizer", quant::QuantizerKindName(o.quant.quantizer)}};
  switch (o.source) {
    case CalibrationSource::kV1:
      j["v1"] = gen::V1OptionsToJson(o.v1);
      j["v1"]["batch_size"] = o.batch_size;
      break;
    case CalibrationSource::kV2:
      j["v2"] = gen::V2OptionsToJson(o.v2);
      j["v2"]["batch_size"] = o.batch_size;
      break;
    case CalibrationSource::kReal:
      j["real"] = {{"dataset", o.real.dataset},
                   {"dataset_dir", o.real.dataset_dir},
                   {"split", o.real.split},
                   {"on_bad_image", quant::BadImagePolicyName(o.real.on_bad_image)}};
      break;
    case CalibrationSource::kSampleFiles:
      j["sample_files"] = o.sample_files;
      break;
    case CalibrationSource::kNoise:
      break;
  }
  // V1 samples do not depend on the quantizer; V2's student does.
  if (!for_checkpoint || o.source == CalibrationSource::kV2) j["quant"] = quant;
  if (!for_checkpoint) {
    j["output_dir"] = o.output_dir;
    j["resume"] = o.resume;
    j["overwrite"] = o.overwrite;
    j["checkpoint_every"] = o.checkpoint_every;
    j["device"] = o.device;
  }
  return j;
}

}  // namespace psaq::job
