// Raw Snappy block decompression (not the framed format), for table blocks of
// old checkpoints written with compression type 1. See FORMAT.md section 2.8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tfckpt {
namespace snappy {

// Reads the uncompressed length from the varint preamble. Returns false if
// the preamble is malformed or truncated.
bool UncompressedLength(const uint8_t* data, size_t n, uint64_t* length);

// Decompresses a raw Snappy block into *out. Every copy offset, length and
// literal is bounds-checked; the uncompressed length must not exceed
// max_output (the caller's bound, so a hostile preamble cannot force a huge
// allocation). On failure returns false and sets *error to a short reason.
bool Decompress(const uint8_t* data, size_t n, size_t max_output,
                std::string* out, std::string* error);

}  // namespace snappy
}  // namespace tfckpt
