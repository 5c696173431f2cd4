// Shared helpers of the libFuzzer targets (fuzz/*.cc).
//
// * FUZZ_CHECK: an invariant that must hold whatever the input; its failure
//   aborts, so libFuzzer records the input as a crash.
// * Cursor: a tiny reader of fuzzer bytes. Every target that splits its input
//   into fields uses only this, and tests/test_regressions.py mirrors it in
//   Python, so regression files replay through the Python API as well.
// * Touch: reads every byte of a view (ASan then reports a view that points
//   outside live memory).
// * FixTableChecksums: rewrites the block trailers of a table so that its
//   CRCs are right. Mutated inputs almost never carry valid CRCs; the targets
//   parse the input as is and, when that fails on a checksum, once more with
//   fixed checksums so that the parsing code behind the CRC check is reached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "coding.h"
#include "crc32c.h"
#include "errors.h"
#include "snappy.h"
#include "table.h"

#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__,      \
                   __LINE__, #cond);                                              \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

namespace fuzz {

// Reads fields from the front of the input. Past the end, numbers read as 0
// and byte strings as empty, so every input is a valid field sequence.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const uint8_t* pos() const { return p_; }
  uint64_t Uint(int nbytes) {  // little-endian, nbytes in 1..8
    uint64_t v = 0;
    for (int i = 0; i < nbytes; ++i) {
      if (p_ < end_) v |= static_cast<uint64_t>(*p_++) << (8 * i);
    }
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(Uint(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Uint(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Uint(4)); }
  uint64_t U64() { return Uint(8); }
  // A byte string of length U8() (or of length U16() when `wide`).
  std::string Bytes(bool wide = false) {
    size_t n = wide ? U16() : U8();
    if (n > remaining()) n = remaining();
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  std::string Rest() {
    std::string s(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Reads every byte of `v`; the result only keeps the compiler from dropping
// the reads.
inline uint32_t Touch(std::string_view v, uint32_t acc = 0) {
  return tfckpt::crc32c::ExtendPortable(acc, v.data(), v.size());
}

namespace detail {

inline bool Handle(const uint8_t** p, const uint8_t* end, tfckpt::BlockHandle* h) {
  return tfckpt::GetVarint(p, end, &h->offset) && tfckpt::GetVarint(p, end, &h->size);
}

// Rewrites the trailer of the block at `h`; returns false if it is out of bounds.
inline bool FixBlock(std::vector<uint8_t>* buf, const tfckpt::BlockHandle& h) {
  const uint64_t limit = buf->size() - tfckpt::kFooterSize;
  if (h.offset > limit || h.size > limit - h.offset ||
      tfckpt::kBlockTrailerSize > limit - h.offset - h.size) {
    return false;
  }
  uint8_t* contents = buf->data() + h.offset;
  uint8_t* trailer = contents + h.size;
  uint32_t crc = tfckpt::crc32c::Extend(tfckpt::crc32c::Value(contents, h.size), trailer, 1);
  uint32_t m = tfckpt::crc32c::Mask(crc);
  for (int i = 0; i < 4; ++i) trailer[1 + i] = static_cast<uint8_t>(m >> (8 * i));
  return true;
}

}  // namespace detail

// Fixes the CRC of the index block and of every data block the index block
// names (as far as the index block can be walked; its own entry encoding is
// read leniently here, the real checks are the parser's).
inline void FixTableChecksums(std::vector<uint8_t>* buf) {
  using namespace tfckpt;
  if (buf->size() < kFooterSize) return;
  const uint8_t* footer = buf->data() + buf->size() - kFooterSize;
  const uint8_t* p = footer;
  BlockHandle meta, index;
  if (!detail::Handle(&p, footer + 40, &meta) || !detail::Handle(&p, footer + 40, &index)) return;
  detail::FixBlock(buf, meta);
  if (!detail::FixBlock(buf, index)) return;
  std::string block(reinterpret_cast<const char*>(buf->data() + index.offset), index.size);
  if (buf->data()[index.offset + index.size] == kSnappyCompression) {
    std::string out, error;
    if (!snappy::Decompress(reinterpret_cast<const uint8_t*>(block.data()), block.size(),
                            block.size() * 24 + 64, &out, &error)) {
      return;
    }
    block.swap(out);
  }
  if (block.size() < 4) return;
  const uint8_t* b = reinterpret_cast<const uint8_t*>(block.data());
  uint32_t num_restarts = DecodeFixed32(b + block.size() - 4);
  if (num_restarts > (block.size() - 4) / 4) return;
  const uint8_t* end = b + block.size() - 4 - 4 * static_cast<size_t>(num_restarts);
  while (b < end) {
    uint32_t shared, unshared, vlen;
    if (!GetVarint32(&b, end, &shared) || !GetVarint32(&b, end, &unshared) ||
        !GetVarint32(&b, end, &vlen)) {
      return;
    }
    if (unshared > static_cast<size_t>(end - b) || vlen > static_cast<size_t>(end - b) - unshared) {
      return;
    }
    b += unshared;
    const uint8_t* hp = b;
    BlockHandle h;
    if (detail::Handle(&hp, b + vlen, &h)) detail::FixBlock(buf, h);
    b += vlen;
  }
}

// Runs `check(data, size)` on the input as it is and, when that fails on a block
// checksum, once more with the table's checksums repaired (FixTableChecksums), so that
// the parsing behind the CRC check is reached. Other tfckpt::Errors are expected outcomes.
template <typename Check>
int CheckTableInput(Check check, const uint8_t* data, size_t size) {
  try {
    check(data, size);
    return 0;
  } catch (const tfckpt::Error& e) {
    if (e.kind() != tfckpt::ErrorKind::kChecksum) return 0;
  }
  std::vector<uint8_t> fixed(data, data + size);
  FixTableChecksums(&fixed);
  try {
    check(fixed.data(), fixed.size());
  } catch (const tfckpt::Error&) {
  }
  return 0;
}

}  // namespace fuzz
