// Bounds-checked readers for the primitive encodings of the format: LEB128
// varints and little-endian fixed-width integers (FORMAT.md section 2.2).
// Every reader takes the end of the buffer and fails instead of reading past it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace tfckpt {

// Reads a varint of at most max_bytes bytes (5 for varint32, 10 for varint64)
// from [*p, end). Advances *p and returns true on success.
inline bool GetVarint(const uint8_t** p, const uint8_t* end, uint64_t* value,
                      int max_bytes = 10) {
  uint64_t result = 0;
  const uint8_t* q = *p;
  for (int i = 0; i < max_bytes && q < end; ++i) {
    uint64_t byte = *q++;
    result |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      // A varint32's fifth byte may carry bits past 32; LevelDB (and so TensorFlow)
      // drops them.
      if (max_bytes == 5) result &= 0xffffffffull;
      *p = q;
      *value = result;
      return true;
    }
  }
  return false;
}

inline bool GetVarint32(const uint8_t** p, const uint8_t* end, uint32_t* value) {
  uint64_t v;
  if (!GetVarint(p, end, &v, 5)) return false;
  *value = static_cast<uint32_t>(v);
  return true;
}

inline uint32_t DecodeFixed32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

inline uint64_t DecodeFixed64(const uint8_t* p) {
  return static_cast<uint64_t>(DecodeFixed32(p)) |
         (static_cast<uint64_t>(DecodeFixed32(p + 4)) << 32);
}

inline void PutFixed32(std::string* out, uint32_t v) {
  char buf[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
                 static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out->append(buf, 4);
}

inline void PutFixed64(std::string* out, uint64_t v) {
  PutFixed32(out, static_cast<uint32_t>(v));
  PutFixed32(out, static_cast<uint32_t>(v >> 32));
}

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Renders bytes for an error message: control bytes and backslashes as \xNN,
// everything else as is (so UTF-8 names stay readable; the binding layer
// escapes bytes that are not valid UTF-8).
inline std::string Printable(std::string_view s, size_t max_len = 200) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  if (s.size() > max_len) out += "...";
  return out;
}

}  // namespace tfckpt
