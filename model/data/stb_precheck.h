// Structural checks run on an image file's bytes before stb_image sees them: the two places where
// psaq's fuzzing found stb_image 2.27 (Debian 12's libstb, which psaq links) trusting a file.
//
// JPEG Huffman tables: stb_image 2.27 (Debian 12's libstb, which psaq links) trusts the 16 code counts of a DHT
// segment and writes one entry per counted code into tables of 257 and 256 entries: a crafted
// file whose counts sum to more than 256 writes past them (found by psaq's image fuzz target,
// tests/fuzz/regressions/image/jpeg-dht-counts-over-256; upstream stb_image later refused such a
// table as "bad DHT header"). This check refuses the same tables before stb sees them, so psaq is
// safe with either version.
//
// PNG chunk lengths: stb grows its IDAT buffer to the length a chunk declares before reading the
// chunk, so a 246-byte file declaring a 1 GiB IDAT made it allocate 2 GiB (the fuzzer's
// out-of-memory finding, tests/fuzz/regressions/image/png-idat-length-past-end). Every chunk
// must fit in the file, which bounds stb's buffer by the file's size.
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

// Walks the chunks of `bytes` (when they start with the 8-byte PNG signature; any other format
// passes unchanged) up to IEND and returns false with the reason in *error (e.g. "corrupt PNG:
// the IDAT chunk at byte 33 declares 1073741824 bytes, past the end of the file") when a chunk's
// length exceeds 2^31 - 1 (the PNG limit) or the bytes left in the file.
bool CheckPngChunkLengths(const uint8_t* bytes, size_t size, std::string* error);

// Both checks: what every decode through stb_image runs first.
bool PrecheckForStb(const uint8_t* bytes, size_t size, std::string* error);

}  // namespace psaq::model
