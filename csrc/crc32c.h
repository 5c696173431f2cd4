// CRC-32C (Castagnoli), as the TensorBundle format uses it for block trailers,
// entry checksums, string length checksums and variant element checksums.
// See FORMAT.md section 2.9.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tfckpt {
namespace crc32c {

// Returns crc32c(A || data[0, n)) given crc = crc32c(A). Extend(0, ...) is the
// plain CRC of the data. Uses SSE4.2 / ARMv8 CRC instructions when the running
// CPU has them (checked once, at first use), else a portable table method.
uint32_t Extend(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// The portable implementation, exposed so tests can compare it with the
// hardware path on the same machine.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);

// crc32c(A || B) from crc32c(A), crc32c(B) and the length of B in bytes.
uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// The CRC-32C of bytes [offset, offset + size) of file descriptor `fd`, read with pread in
// pieces into buffers of its own (never a mapping: a file truncated meanwhile gives a short
// count, not SIGBUS); large ranges are split between `threads` threads and their CRCs
// combined. Sets *read_bytes to the bytes read (less than `size` when the file ends first)
// and *error to an errno (0 if none).
uint32_t FileRange(int fd, uint64_t offset, uint64_t size, int threads, uint64_t* read_bytes,
                   int* error);

// Name of the implementation Extend uses on this CPU: "sse4.2", "armv8-crc"
// or "portable".
const char* Implementation();

constexpr uint32_t kMaskDelta = 0xa282ead8u;

// Masked CRCs are stored in the format: rotate right by 15, add a constant.
inline uint32_t Mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace crc32c
}  // namespace tfckpt
