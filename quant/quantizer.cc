#include "quant/quantizer.h"

#include <c10/util/Exception.h>

#include "quant/uniform.h"

namespace psaq::quant {

bool IsValidBits(int bits) { return (bits >= kMinBits && bits <= kMaxBits) || bits == kBitsOff; }

std::optional<int> BitsFromText(const std::string& text) {
  if (text.empty() || text.size() > 2 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int bits = std::stoi(text);
  if (!IsValidBits(bits)) return std::nullopt;
  return bits;
}

Quantizer::Quantizer(int bits) : bits_(bits) {
  TORCH_CHECK(IsValidBits(bits), "quantizer bit width must be ", kMinBits, "..", kMaxBits, " or ",
              kBitsOff, " (off), got ", bits);
}

at::Tensor Quantizer::FakeQuantize(const at::Tensor& x) const {
  if (!enabled()) return x;
  TORCH_CHECK(ready(), "FakeQuantize: the quantizer has no range yet (calibrate first)");
  return FakeQuantizeSte(x, Grid(x), ste());
}

}  // namespace psaq::quant
