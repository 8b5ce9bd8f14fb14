#include "quant/detection_eval.h"

#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "dist/collective_util.h"

namespace psaq::quant {
namespace {

// What one rank sends: a status byte, then either its error message or
// [int64 #images][int64 image ids...][int64 detections][int64 left out][records].
constexpr char kOk = 0;
constexpr char kFailed = 1;

void PutInt(std::string& out, int64_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

int64_t GetInt(const std::string& in, size_t& pos) {
  if (in.size() - pos < sizeof(int64_t)) {
    throw std::runtime_error("EvaluateCocoSharded: a rank's message is truncated");
  }
  int64_t v = 0;
  std::memcpy(&v, in.data() + pos, sizeof(v));
  pos += sizeof(v);
  return v;
}

struct RankPart {
  std::vector<int64_t> image_ids;
  int64_t detections = 0;
  int64_t left_out = 0;
  std::vector<data::CocoImageEval> evals;
};

}  // namespace

data::CocoStats EvaluateCocoSharded(dist::Communicator& comm, const data::CocoGroundTruth& gt,
                                    const std::vector<int64_t>& image_ids,
                                    const std::vector<data::CocoDetection>& detections,
                                    data::CocoIouType type, const c10::Device& device) {
  // A bad input on one rank must not leave the others in the all-gather: the error travels in
  // the message and every rank throws it.
  std::string message(1, kOk);
  try {
    int64_t left_out = 0;
    const std::vector<data::CocoImageEval> evals =
        data::EvaluateCocoImages(gt, image_ids, detections, type, &left_out);
    PutInt(message, static_cast<int64_t>(image_ids.size()));
    for (int64_t id : image_ids) PutInt(message, id);
    PutInt(message, static_cast<int64_t>(detections.size()) - left_out);
    PutInt(message, left_out);
    const std::vector<uint8_t> bytes = data::SerializeCocoImageEvals(evals);
    message.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } catch (const std::exception& e) {
    message = std::string(1, kFailed) + e.what();
  }
  const std::vector<std::string> all =
      dist::AllGatherStrings(comm, message, dist::CollectiveDevice(comm, device));

  for (int r = 0; r < comm.size(); ++r) {
    if (all[r].empty() || all[r][0] != kOk) {
      throw std::runtime_error("rank " + std::to_string(r) + ": " +
                               (all[r].empty() ? std::string("empty message") : all[r].substr(1)));
    }
  }
  std::map<int64_t, int> owner;  // image id -> the rank that evaluated it
  std::vector<data::CocoImageEval> evals;
  data::CocoStats totals;
  for (int r = 0; r < comm.size(); ++r) {
    const std::string& in = all[r];
    size_t pos = 1;
    const int64_t n = GetInt(in, pos);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t id = GetInt(in, pos);
      const auto [it, fresh] = owner.emplace(id, r);
      if (!fresh) {
        throw std::runtime_error("EvaluateCocoSharded: image " + std::to_string(id) +
                                 " was evaluated by rank " + std::to_string(it->second) +
                                 " and by rank " + std::to_string(r));
      }
    }
    totals.detections += GetInt(in, pos);
    totals.left_out += GetInt(in, pos);
    std::vector<data::CocoImageEval> part = data::DeserializeCocoImageEvals(
        reinterpret_cast<const uint8_t*>(in.data()) + pos, in.size() - pos);
    evals.insert(evals.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
  }
  // Images no rank evaluated would silently lose their ground truth (missed objects).
  for (int64_t id : data::CocoImageIds(gt)) {
    if (owner.count(id) == 0) {
      throw std::runtime_error("EvaluateCocoSharded: image " + std::to_string(id) +
                               " of the ground truth was evaluated by no rank");
    }
  }
  data::CocoStats stats = data::SummarizeCoco(data::AccumulateCoco(evals, gt.category_ids), type);
  stats.images = static_cast<int64_t>(owner.size());
  stats.detections = totals.detections;
  stats.left_out = totals.left_out;
  return stats;
}

}  // namespace psaq::quant
