// Raw Snappy block decompression. Format (see FORMAT.md section 2.8 and
// snappy's format_description.txt):
//
//   varint32 uncompressed_length
//   element*
//
// Each element starts with a tag byte whose low two bits give its kind:
//   00 literal: length-1 in the upper 6 bits; 60..63 mean the length-1 is in
//      the next 1..4 bytes, little-endian. The literal bytes follow.
//   01 copy, 1-byte offset: length 4..11 = ((tag >> 2) & 7) + 4, offset has
//      11 bits: (tag >> 5) are the high 3 bits, the next byte the low 8.
//   10 copy, 2-byte offset: length 1..64 = (tag >> 2) + 1, offset LE16.
//   11 copy, 4-byte offset: length 1..64 = (tag >> 2) + 1, offset LE32.
// A copy repeats `length` bytes starting `offset` bytes back in the output;
// offset < length is legal and repeats a pattern (run-length encoding).
//
// Everything is bounds-checked against the input and the declared output
// length, so no input can make this read or write out of bounds.

#include "snappy.h"

#include <cstring>

namespace tfckpt {
namespace snappy {
namespace {

// Parses the varint32 preamble. On success stores the value and the number of
// bytes it used.
bool ParsePreamble(const uint8_t* data, size_t n, uint32_t* value,
                   size_t* used) {
  uint32_t result = 0;
  for (size_t i = 0; i < 5; ++i) {
    if (i >= n) return false;  // truncated
    const uint8_t b = data[i];
    if (i == 4 && b > 0x0f) return false;  // more than 32 bits, or > 5 bytes
    result |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      *value = result;
      *used = i + 1;
      return true;
    }
  }
  return false;  // unreachable: the fifth byte has no continuation bit
}

inline uint32_t LoadLE(const uint8_t* p, size_t nbytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < nbytes; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

bool Fail(std::string* out, std::string* error, const char* reason) {
  out->clear();
  if (error != nullptr) *error = reason;
  return false;
}

}  // namespace

bool UncompressedLength(const uint8_t* data, size_t n, uint64_t* length) {
  uint32_t value;
  size_t used;
  if (!ParsePreamble(data, n, &value, &used)) return false;
  *length = value;
  return true;
}

bool Decompress(const uint8_t* data, size_t n, size_t max_output,
                std::string* out, std::string* error) {
  uint32_t declared;
  size_t used;
  if (data == nullptr && n != 0) return Fail(out, error, "null input");
  if (!ParsePreamble(data, n, &declared, &used)) {
    return Fail(out, error, "bad length preamble");
  }
  if (declared > max_output) {
    return Fail(out, error, "declared length exceeds limit");
  }
  const uint8_t* ip = data + used;
  const uint8_t* const ip_end = data + n;
  // No element produces more than 64 output bytes from 3 input bytes, so a
  // longer claim cannot be honest; reject it before allocating.
  if (static_cast<uint64_t>(declared) >
      static_cast<uint64_t>(ip_end - ip) * 22) {
    return Fail(out, error, "declared length too large for input");
  }

  const size_t total = declared;
  out->clear();
  out->resize(total);
  uint8_t* const op = reinterpret_cast<uint8_t*>(out->data());
  size_t produced = 0;

  while (ip < ip_end) {
    const uint8_t tag = *ip++;
    const size_t avail = static_cast<size_t>(ip_end - ip);
    const size_t room = total - produced;

    if ((tag & 3) == 0) {
      uint64_t length = tag >> 2;
      if (length >= 60) {
        const size_t nbytes = static_cast<size_t>(length) - 59;  // 1..4
        if (avail < nbytes) return Fail(out, error, "truncated literal length");
        length = LoadLE(ip, nbytes);
        ip += nbytes;
      }
      // In 32 bits, as the reference decoder (and so TensorFlow) computes it: a 4-byte
      // length of 0xffffffff wraps to a literal of 0 bytes, not 2^32.
      length = static_cast<uint32_t>(length + 1);
      if (length > static_cast<uint64_t>(ip_end - ip)) {
        return Fail(out, error, "truncated literal");
      }
      if (length > room) {
        return Fail(out, error, "literal exceeds declared length");
      }
      std::memcpy(op + produced, ip, static_cast<size_t>(length));
      ip += length;
      produced += static_cast<size_t>(length);
      continue;
    }

    size_t length;
    size_t offset;
    switch (tag & 3) {
      case 1:
        if (avail < 1) return Fail(out, error, "truncated copy");
        length = ((tag >> 2) & 7) + 4;
        offset = (static_cast<size_t>(tag >> 5) << 8) | ip[0];
        ip += 1;
        break;
      case 2:
        if (avail < 2) return Fail(out, error, "truncated copy");
        length = (tag >> 2) + 1;
        offset = LoadLE(ip, 2);
        ip += 2;
        break;
      default:  // 3
        if (avail < 4) return Fail(out, error, "truncated copy");
        length = (tag >> 2) + 1;
        offset = LoadLE(ip, 4);
        ip += 4;
        break;
    }
    if (offset == 0 || offset > produced) {
      return Fail(out, error, "copy offset out of range");
    }
    if (length > room) {
      return Fail(out, error, "copy exceeds declared length");
    }
    uint8_t* dst = op + produced;
    const uint8_t* src = dst - offset;
    if (offset >= length) {
      std::memcpy(dst, src, length);  // source ends at or before dst
    } else {
      for (size_t i = 0; i < length; ++i) dst[i] = src[i];  // repeats pattern
    }
    produced += length;
  }

  if (produced != total) return Fail(out, error, "output length mismatch");
  return true;
}

}  // namespace snappy
}  // namespace tfckpt
