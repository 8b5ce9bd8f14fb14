#include "launch/job/job_options.h"

#include <c10/util/Exception.h>

#include <stdexcept>

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

void ValidateJobOptions(const QuantizeJobOptions& o) {
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
      {"bits_overrides", o.quant.bits_overrides},
      {"input_range", quant::InputRangeName(o.quant.input_range)}};
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
                   {"split", o.real.split}};
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
