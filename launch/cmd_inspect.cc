// psaq inspect: describe a weights file or a quantized export (quant/inspect.h).
#include <cstdio>

#include "launch/flags.h"
#include "launch/process.h"
#include "quant/inspect.h"

DEFINE_string(file, "",
              "The file to describe: a float weights file (.safetensors) or a quantized export "
              "written by 'psaq quantize' (its manifest is read from beside it).");
DEFINE_bool(tensors, false, "Also list every tensor: name, dtype, shape and bytes.");

namespace psaq::launch {

void CheckInspectFlags() {
  if (FLAGS_file.empty()) throw UsageError("--file is required");
}

int RunInspect(ProcessContext& process) {
  quant::InspectOptions options;
  options.list_tensors = FLAGS_tensors;
  // Every rank reads the header (cheap); rank 0 prints.
  const std::string text = quant::InspectFile(FLAGS_file, options);
  if (process.is_root()) std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace psaq::launch
