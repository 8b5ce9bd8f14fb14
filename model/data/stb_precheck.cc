#include "model/data/stb_precheck.h"

#include <algorithm>
#include <cctype>

namespace psaq::model {
namespace {

constexpr uint8_t kSoi = 0xD8, kEoi = 0xD9, kSos = 0xDA, kDht = 0xC4, kTem = 0x01;

bool IsRestart(uint8_t marker) { return marker >= 0xD0 && marker <= 0xD7; }

bool IsStandalone(uint8_t marker) {
  return marker == kSoi || marker == kEoi || marker == kTem || IsRestart(marker);
}

// Checks the tables of one DHT segment's payload [begin, end); `at` is the segment's offset for
// the message.
bool CheckDhtSegment(const uint8_t* p, size_t begin, size_t end, size_t at, std::string* error) {
  int table = 0;
  size_t i = begin;
  while (i < end) {
    ++table;
    const std::string where = "Huffman table " + std::to_string(table) +
                              " of the DHT segment at byte " + std::to_string(at);
    const int cls = p[i] >> 4, dest = p[i] & 15;
    if (cls > 1 || dest > 3) {
      *error = "corrupt JPEG: " + where + " has class " + std::to_string(cls) + " and destination " +
               std::to_string(dest) + " (class 0 or 1, destination 0 to 3)";
      return false;
    }
    if (end - i < 17) {
      *error = "corrupt JPEG: " + where + " is cut off by the end of its segment";
      return false;
    }
    size_t codes = 0;
    for (size_t k = 1; k <= 16; ++k) codes += p[i + k];
    if (codes > 256) {
      *error = "corrupt JPEG: " + where + " declares " + std::to_string(codes) +
               " codes, more than 256";
      return false;
    }
    if (end - i - 17 < codes) {
      *error = "corrupt JPEG: " + where + " declares " + std::to_string(codes) +
               " codes but its segment holds " + std::to_string(end - i - 17) + " symbols";
      return false;
    }
    i += 17 + codes;
  }
  return true;
}

}  // namespace

bool CheckJpegHuffmanTables(const uint8_t* p, size_t size, std::string* error) {
  // stb_image recognises a JPEG by its SOI marker after any number of 0xFF fill bytes.
  if (size < 2 || p[0] != 0xFF) return true;
  size_t i = 1;
  while (i < size && p[i] == 0xFF) ++i;
  if (i >= size || p[i] != kSoi) return true;  // not a JPEG
  ++i;
  while (i < size) {
    // A marker: 0xFF, any number of 0xFF fill bytes, then the marker code. stb_image skips other
    // bytes between markers while it reads the header (looking for the next 0xFF), so the walk
    // does too: a table after such garbage still reaches stb.
    if (p[i] != 0xFF) {
      ++i;
      continue;
    }
    while (i < size && p[i] == 0xFF) ++i;
    if (i >= size) return true;
    const uint8_t marker = p[i];
    const size_t at = i - 1;
    ++i;
    if (marker == kEoi) return true;
    if (marker == 0x00 || IsStandalone(marker)) continue;
    if (size - i < 2) return true;
    const size_t length = (size_t{p[i]} << 8) | p[i + 1];  // includes its own two bytes
    if (length < 2) return true;
    if (length > size - i) {
      // stb reads what the segment claims; refuse a table it would read past the file's end.
      if (marker == kDht) {
        *error = "corrupt JPEG: the DHT segment at byte " + std::to_string(at) + " declares " +
                 std::to_string(length) + " bytes, past the end of the file";
        return false;
      }
      return true;
    }
    const size_t end = i + length;
    if (marker == kDht && !CheckDhtSegment(p, i + 2, end, at, error)) return false;
    i = end;
    if (marker == kSos) {
      // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart marker inside
      // it; anything else starts the next marker (a progressive file has DHTs between scans).
      while (i + 1 < size) {
        if (p[i] == 0xFF && p[i + 1] != 0x00 && !IsRestart(p[i + 1]) && p[i + 1] != 0xFF) {
          break;
        }
        ++i;
      }
      if (i + 1 >= size) return true;
    }
  }
  return true;
}

bool CheckPngChunkLengths(const uint8_t* p, size_t size, std::string* error) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size < 8 || !std::equal(kSignature, kSignature + 8, p)) return true;  // not a PNG
  size_t i = 8;
  while (size - i >= 8) {  // a chunk header: 4-byte big-endian length, 4-byte type
    const uint32_t length = (uint32_t{p[i]} << 24) | (uint32_t{p[i + 1]} << 16) |
                            (uint32_t{p[i + 2]} << 8) | uint32_t{p[i + 3]};
    std::string type;
    for (size_t k = 4; k < 8; ++k) {
      const char c = static_cast<char>(p[i + k]);
      type += std::isalpha(static_cast<unsigned char>(c)) ? std::string(1, c) : "?";
    }
    const size_t left = size - i - 8;  // the chunk's data and its 4-byte CRC must fit here
    if (length > 0x7FFFFFFFu || length > left || left - length < 4) {
      *error = "corrupt PNG: the " + type + " chunk at byte " + std::to_string(i) + " declares " +
               std::to_string(length) + " bytes, past the end of the file";
      return false;
    }
    if (type == "IEND") return true;
    i += 8 + size_t{length} + 4;
  }
  return true;  // ends without IEND: stb reports it
}

bool PrecheckForStb(const uint8_t* bytes, size_t size, std::string* error) {
  return CheckJpegHuffmanTables(bytes, size, error) && CheckPngChunkLengths(bytes, size, error);
}

}  // namespace psaq::model
