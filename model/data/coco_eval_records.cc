// CocoImageEval records as bytes, for the cross-rank merge (quant/detection_eval.h):
//   u64 magic, u64 count, then per record: i64 image_id, i64 category_id, u64 D, i64 num_gt[A],
//   f64 scores[D], u8 matches[A * T * D]; native endianness (the ranks of one job).
#include <cstring>
#include <stdexcept>
#include <string>

#include "model/data/coco_eval.h"

namespace psaq::data {
namespace {

constexpr int kT = kCocoIouThresholds;
constexpr int kA = kCocoAreaRanges;
constexpr int64_t kMaxDet = kCocoMaxDets[kCocoMaxDetsCount - 1];

// Little byte writer/reader for the serialised records.
template <typename T>
void Put(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  void Read(void* dst, size_t n) {
    if (n > size_ - pos_) {
      throw std::runtime_error("coco_eval: serialized image evaluations truncated at byte " +
                               std::to_string(pos_) + " of " + std::to_string(size_));
    }
    if (n == 0) return;  // dst may be an empty vector's null data(): no memcpy (UBSan nonnull)
    std::memcpy(dst, data_ + pos_, n);
    pos_ += n;
  }
  template <typename T>
  T Get() {
    T v;
    Read(&v, sizeof(T));
    return v;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

constexpr uint64_t kMagic = 0x31455643'51415350ull;  // "PSAQCVE1"

}  // namespace

std::vector<uint8_t> SerializeCocoImageEvals(const std::vector<CocoImageEval>& evals) {
  std::vector<uint8_t> out;
  Put(out, kMagic);
  Put(out, static_cast<uint64_t>(evals.size()));
  for (const CocoImageEval& e : evals) {
    Put(out, e.image_id);
    Put(out, e.category_id);
    Put(out, static_cast<uint64_t>(e.scores.size()));
    for (int64_t n : e.num_gt) Put(out, n);
    for (double s : e.scores) Put(out, s);
    out.insert(out.end(), e.matches.begin(), e.matches.end());
  }
  return out;
}

std::vector<CocoImageEval> DeserializeCocoImageEvals(const uint8_t* data, size_t size) {
  Reader in(data, size);
  if (in.Get<uint64_t>() != kMagic) {
    throw std::runtime_error("coco_eval: serialized image evaluations do not start with the magic");
  }
  const auto count = in.Get<uint64_t>();
  std::vector<CocoImageEval> evals;
  for (uint64_t i = 0; i < count; ++i) {
    CocoImageEval e;
    e.image_id = in.Get<int64_t>();
    e.category_id = in.Get<int64_t>();
    const size_t at = in.pos();
    const auto num_dt = in.Get<uint64_t>();
    if (num_dt > static_cast<uint64_t>(kMaxDet)) {
      throw std::runtime_error(
          "coco_eval: serialized image evaluations: " + std::to_string(num_dt) +
          " detections at byte " + std::to_string(at) + " (at most 100)");
    }
    for (int64_t& n : e.num_gt) n = in.Get<int64_t>();
    e.scores.resize(num_dt);
    in.Read(e.scores.data(), num_dt * sizeof(double));
    e.matches.resize(static_cast<size_t>(kA) * kT * num_dt);
    in.Read(e.matches.data(), e.matches.size());
    for (uint8_t m : e.matches) {
      if (m > CocoImageEval::kIgnored) {
        throw std::runtime_error("coco_eval: serialized image evaluations: bad match value " +
                                 std::to_string(m) + " before byte " + std::to_string(in.pos()));
      }
    }
    evals.push_back(std::move(e));
  }
  if (in.left() != 0) {
    throw std::runtime_error(
        "coco_eval: serialized image evaluations: " + std::to_string(in.left()) +
        " bytes left over after " + std::to_string(count) + " records");
  }
  return evals;
}

}  // namespace psaq::data
