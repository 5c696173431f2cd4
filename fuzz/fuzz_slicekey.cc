// libFuzzer target: slice keys (FORMAT.md 6.2) and their OrderedCode numbers
// (6.3): tfckpt::DecodeTensorNameSlice / EncodeTensorNameSlice.
//
// Input layout (fuzz_common.h Cursor; mirrored by tests/test_regressions.py):
//   u8 mode
//   mode even: rest = a key. If it decodes: re-encoding gives a key that
//     decodes to the same name and slice and is no longer; a reference
//     decoder written here from FORMAT.md's text agrees on every number; and
//     when every number is minimally encoded and every full extent is the
//     canonical (0, -1), re-encoding reproduces the key byte for byte.
//   mode odd: a name (Bytes), then u8 rank (mod 9), then per dimension two
//     u64 (start, length): the encoded key decodes to the name and the
//     normalized slice; then two more u64 a, b: the encodings of a and b as
//     signed and unsigned numbers sort as the numbers do, and decode back.
#include <cstdint>
#include <string>

#include "bundle.h"
#include "fuzz_common.h"

namespace {

// --- A reference reader, from the text of FORMAT.md 6.3 only. ---
struct Ref {
  const uint8_t* p;
  const uint8_t* end;
  bool canonical = true;

  bool Num(uint64_t* v) {  // WriteNumIncreasing
    if (p >= end) return false;
    unsigned n = *p;
    if (n > 8 || static_cast<size_t>(end - p) < 1 + n) return false;
    if (n > 0 && p[1] == 0) canonical = false;  // a leading zero byte
    uint64_t r = 0;
    for (unsigned i = 0; i < n; ++i) r = (r << 8) | p[1 + i];
    p += 1 + n;
    *v = r;
    return true;
  }
  static int MinimalLength(int64_t v) {
    uint64_t x = v < 0 ? ~static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    int bits = 0;
    while (x) { ++bits; x >>= 1; }
    return bits / 7 + 1;
  }
  bool Signed(int64_t* v) {  // WriteSignedNumIncreasing
    if (p >= end) return false;
    const bool negative = (p[0] & 0x80) == 0;
    auto at = [&](int i) { return static_cast<uint8_t>(negative ? p[i] ^ 0xff : p[i]); };
    int len;
    if (at(0) != 0xff) {
      unsigned t = at(0) ^ 0xff, log2 = 0;
      while (t >>= 1) ++log2;
      len = 7 - static_cast<int>(log2);
    } else {
      if (end - p < 2) return false;
      if (at(1) < 0x80) len = 8;
      else if (at(1) < 0xc0) len = 9;
      else if (at(1) == 0xc0 && end - p >= 3 && at(2) < 0x80) len = 10;
      else return false;
    }
    if (end - p < len) return false;
    static const uint64_t kMask[11] = {0, 0x80, 0xc000, 0xe00000, 0xf0000000, 0xf800000000,
                                       0xfc0000000000, 0xfe000000000000, 0xff00000000000000,
                                       0x8000000000000000, 0};
    uint64_t r = negative ? ~0ull : 0;
    for (int i = len > 8 ? len - 8 : 0; i < len; ++i) r = (r << 8) | p[i];
    r ^= kMask[len];
    *v = static_cast<int64_t>(r);
    if (len != MinimalLength(*v)) canonical = false;
    p += len;
    return true;
  }
  bool Name(std::string* s) {
    while (p < end) {
      uint8_t c = *p++;
      if (c != 0x00 && c != 0xff) { s->push_back(static_cast<char>(c)); continue; }
      if (p >= end) return false;
      uint8_t d = *p++;
      if (c == 0x00 && d == 0x01) return true;
      if (c == 0x00 && d == 0xff) s->push_back('\0');
      else if (c == 0xff && d == 0x00) s->push_back('\xff');
      else return false;
    }
    return false;
  }
};

bool SameSlice(const tfckpt::Slice& a, const tfckpt::Slice& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].start != b[i].start || a[i].length != b[i].length) return false;
  }
  return true;
}

void RawKey(const std::string& key) {
  std::string name;
  tfckpt::Slice slice;
  if (!tfckpt::DecodeTensorNameSlice(key, &name, &slice)) return;
  FUZZ_CHECK(slice.size() <= static_cast<size_t>(tfckpt::kMaxDims));
  for (const tfckpt::Extent& e : slice) FUZZ_CHECK(e.length >= 0 || (e.start == 0 && e.length == -1));

  // The reference reading of the same key.
  Ref ref{reinterpret_cast<const uint8_t*>(key.data()),
          reinterpret_cast<const uint8_t*>(key.data()) + key.size()};
  uint64_t lead = 1, rank = 0;
  std::string ref_name;
  FUZZ_CHECK(ref.Num(&lead) && lead == 0);
  FUZZ_CHECK(ref.Name(&ref_name) && ref_name == name);
  FUZZ_CHECK(ref.Num(&rank) && rank == slice.size());
  for (const tfckpt::Extent& e : slice) {
    int64_t start, length;
    FUZZ_CHECK(ref.Signed(&start) && ref.Signed(&length));
    if (length < 0) {
      FUZZ_CHECK(e.start == 0 && e.length == -1);
      if (start != 0 || length != -1) ref.canonical = false;
    } else {
      FUZZ_CHECK(e.start == start && e.length == length);
    }
  }
  FUZZ_CHECK(ref.p == ref.end);

  const std::string again = tfckpt::EncodeTensorNameSlice(name, slice);
  FUZZ_CHECK(again.size() <= key.size());
  if (ref.canonical) FUZZ_CHECK(again == key);
  std::string name2;
  tfckpt::Slice slice2;
  FUZZ_CHECK(tfckpt::DecodeTensorNameSlice(again, &name2, &slice2));
  FUZZ_CHECK(name2 == name && SameSlice(slice2, slice));
}

void Structured(fuzz::Cursor* in) {
  const std::string name = in->Bytes();
  const unsigned rank = in->U8() % 9;
  tfckpt::Slice slice;
  for (unsigned d = 0; d < rank; ++d) {
    tfckpt::Extent e;
    e.start = static_cast<int64_t>(in->U64());
    e.length = static_cast<int64_t>(in->U64());
    slice.push_back(e);
  }
  const std::string key = tfckpt::EncodeTensorNameSlice(name, slice);
  std::string name2;
  tfckpt::Slice slice2;
  FUZZ_CHECK(tfckpt::DecodeTensorNameSlice(key, &name2, &slice2));
  FUZZ_CHECK(name2 == name);
  tfckpt::Slice normalized = slice;
  for (tfckpt::Extent& e : normalized) {
    if (e.length < 0) { e.start = 0; e.length = -1; }
  }
  FUZZ_CHECK(SameSlice(slice2, normalized));
  FUZZ_CHECK(tfckpt::EncodeTensorNameSlice(name2, slice2) == key);

  // Order preservation and decoding of single numbers.
  const uint64_t ua = in->U64(), ub = in->U64();
  const int64_t a = static_cast<int64_t>(ua), b = static_cast<int64_t>(ub);
  std::string ea, eb;
  tfckpt::AppendSignedNumIncreasing(&ea, a);
  tfckpt::AppendSignedNumIncreasing(&eb, b);
  FUZZ_CHECK((a < b) == (ea < eb) && (a == b) == (ea == eb));
  FUZZ_CHECK(static_cast<int>(ea.size()) == Ref::MinimalLength(a));
  Ref ra{reinterpret_cast<const uint8_t*>(ea.data()),
         reinterpret_cast<const uint8_t*>(ea.data()) + ea.size()};
  int64_t va;
  FUZZ_CHECK(ra.Signed(&va) && va == a && ra.p == ra.end && ra.canonical);
  std::string na, nb;
  tfckpt::AppendNumIncreasing(&na, ua);
  tfckpt::AppendNumIncreasing(&nb, ub);
  FUZZ_CHECK((ua < ub) == (na < nb) && (ua == ub) == (na == nb));
  Ref rn{reinterpret_cast<const uint8_t*>(na.data()),
         reinterpret_cast<const uint8_t*>(na.data()) + na.size()};
  uint64_t vn;
  FUZZ_CHECK(rn.Num(&vn) && vn == ua && rn.p == rn.end && rn.canonical);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Cursor in(data, size);
  const uint8_t mode = in.U8();
  if (mode & 1) {
    Structured(&in);
  } else {
    RawKey(in.Rest());
  }
  return 0;
}
