// Reader for IDX files (the MNIST / Fashion-MNIST format, http://yann.lecun.com/exdb/mnist/):
//   bytes 0-1  zero
//   byte  2    element type (0x08 = unsigned byte; the only type supported here)
//   byte  3    number of dimensions D
//   then D big-endian uint32 dimension sizes, then prod(dims) elements, row-major, nothing after.
// So an image file starts with magic 0x00000803 ([N, rows, cols]) and a label file with
// 0x00000801 ([N]). Files may be plain or gzip-compressed (detected from the content, not the
// name).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "model/data/dataset.h"  // DatasetError

namespace psaq::model {

// Reads the uint8 IDX file `path` and returns its contents as a CPU uint8 tensor of the file's
// dims. REQUIRES: expected_dims >= 1.
// Throws DatasetError("<path>: <reason>") when the file cannot be opened or is not a regular file
// (a FIFO is refused, not waited on), the gzip stream is corrupt, the magic is wrong (non-zero
// leading bytes, a type other than 0x08, or a dimension count other than expected_dims), a
// dimension is 0 or the element count exceeds 2^36, the data is shorter than the dims say
// (truncated) or followed by extra bytes. Never returns partial data.
// The declared count is checked against the file's size before anything is allocated: a plain
// file must hold exactly that many bytes after the header, a gzip file can hold at most 1032
// times its size (deflate's largest expansion). Memory then grows with the bytes actually
// present, so a corrupt header cannot force a huge allocation.
at::Tensor ReadIdxUint8(const std::string& path, int expected_dims);

}  // namespace psaq::model
