// A structural check of JPEG Huffman tables, run before a file is handed to stb_image.
//
// Why: stb_image 2.27 (Debian 12's libstb, which psaq links) trusts the 16 code counts of a DHT
// segment and writes one entry per counted code into tables of 257 and 256 entries: a crafted
// file whose counts sum to more than 256 writes past them (found by psaq's image fuzz target,
// tests/fuzz/regressions/image/jpeg-dht-counts-over-256; upstream stb_image later refused such a
// table as "bad DHT header"). This check refuses the same tables before stb sees them, so psaq is
// safe with either version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace psaq::model {

// Walks the JPEG markers of `bytes` (when they start with the SOI marker FFD8; any other format
// passes unchanged), including the markers between the scans of a progressive file and those
// after bytes that are not a marker (skipped, as stb_image skips them), and checks
// every Huffman table of every DHT segment: table class 0 or 1, destination 0..3, the 16 counts
// summing to at most 256, the table inside its segment and the segment inside the file. Returns
// false with the reason in *error (e.g. "corrupt JPEG: Huffman table 1 of the DHT segment at byte
// 4 declares 435 codes, more than 256") on the first bad table. A file that ends early or has
// other damage passes: the decoder reports that itself.
bool CheckJpegHuffmanTables(const uint8_t* bytes, size_t size, std::string* error);

}  // namespace psaq::model
