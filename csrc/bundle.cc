#include "bundle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "coding.h"
#include "crc32c.h"
#include "errors.h"

namespace tfckpt {
namespace {

// Protobuf's default recursion limit, which TensorFlow's parser applies: each
// nested message, and each nested group, takes one level.
constexpr int kRecursionLimit = 100;

// A minimal protobuf wire-format cursor: enough for the format's messages,
// bounds-checked, skipping unknown fields as protobuf does. `depth_left` is
// what remains of the recursion limit inside this message.
class Wire {
 public:
  explicit Wire(std::string_view s, int depth_left = kRecursionLimit)
      : p_(reinterpret_cast<const uint8_t*>(s.data())), end_(p_ + s.size()),
        depth_left_(depth_left) {}
  bool done() const { return p_ >= end_; }
  int depth_left() const { return depth_left_; }
  // A tag is a varint of at most 5 bytes; as protobuf does, bits past 32 in the
  // fifth byte are dropped, and a longer tag does not parse.
  bool Tag(uint32_t* field, uint32_t* wire_type) {
    uint32_t tag = 0;
    for (int i = 0;; ++i) {
      if (i == 5 || p_ >= end_) return false;
      const uint8_t byte = *p_++;
      tag |= static_cast<uint32_t>(byte & 0x7f) << (7 * i);
      if (!(byte & 0x80)) break;
    }
    *field = tag >> 3;
    *wire_type = tag & 7;
    return *field != 0;
  }
  bool Varint(uint64_t* v) { return GetVarint(&p_, end_, v); }
  bool Fixed32(uint32_t* v) {
    if (end_ - p_ < 4) return false;
    *v = DecodeFixed32(p_);
    p_ += 4;
    return true;
  }
  bool Bytes(std::string_view* v) {
    uint64_t len;
    if (!GetVarint(&p_, end_, &len) || len > static_cast<uint64_t>(end_ - p_)) return false;
    *v = std::string_view(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    return true;
  }
  // Skips one field's value. A group (wire type 3) is skipped up to its
  // matching end tag, however deeply nested, without recursion.
  bool Skip(uint32_t wire_type, uint32_t field = 0) {
    if (wire_type == 3) return SkipGroup(field);
    return SkipScalar(wire_type);
  }

 private:
  bool SkipScalar(uint32_t wire_type) {
    uint64_t v;
    std::string_view s;
    switch (wire_type) {
      case 0: return Varint(&v);
      case 1: if (end_ - p_ < 8) return false; p_ += 8; return true;
      case 2: return Bytes(&s);
      case 5: if (end_ - p_ < 4) return false; p_ += 4; return true;
      default: return false;
    }
  }
  bool SkipGroup(uint32_t field) {
    if (depth_left_ < 1) return false;
    std::vector<uint32_t> open{field};
    while (!open.empty()) {
      uint32_t f, wt;
      if (!Tag(&f, &wt)) return false;
      if (wt == 3) {
        if (static_cast<int>(open.size()) >= depth_left_) return false;
        open.push_back(f);
      } else if (wt == 4) {
        if (f != open.back()) return false;
        open.pop_back();
      } else if (!SkipScalar(wt)) {
        return false;
      }
    }
    return true;
  }

 public:

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  int depth_left_;
};

// TensorFlow's MultiplyWithoutOverflow: -1 when the product overflows int64.
int64_t MultiplyWithoutOverflow(int64_t x, int64_t y) {
  const uint64_t ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y);
  const uint64_t product = ux * uy;
  if ((ux | uy) >> 32 != 0) {
    if (ux != 0 && product / ux != uy) return -1;
  }
  const int64_t result = static_cast<int64_t>(product);
  return result < 0 ? -1 : result;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Returns an error text, or "" when the shape parsed.
std::string DecodeShape(std::string_view bytes, std::vector<int64_t>* shape) {
  Wire w(bytes, kRecursionLimit - 1);  // a message nested in an entry
  uint32_t field, wt;
  while (!w.done()) {
    if (!w.Tag(&field, &wt)) return "unparseable shape";
    if (field == 2 && wt == 2) {
      std::string_view dim_bytes;
      if (!w.Bytes(&dim_bytes)) return "unparseable shape dimension";
      Wire d(dim_bytes, kRecursionLimit - 2);
      int64_t size = 0;
      while (!d.done()) {
        uint32_t f2, wt2;
        if (!d.Tag(&f2, &wt2)) return "unparseable shape dimension";
        if (f2 == 1 && wt2 == 0) {
          uint64_t v;
          if (!d.Varint(&v)) return "unparseable shape dimension";
          size = static_cast<int64_t>(v);
        } else if (!d.Skip(wt2, f2)) {
          return "unparseable shape dimension";
        }
      }
      if (shape->size() >= static_cast<size_t>(kMaxDims)) {
        return "shape has more than " + std::to_string(kMaxDims) + " dimensions";
      }
      if (shape->capacity() == 0) shape->reserve(4);  // one allocation for most shapes
      shape->push_back(size);
    } else if (field == 3 && wt == 0) {
      // unknown_rank: bundles never set it, and TensorFlow's reader ignores it.
      uint64_t v;
      if (!w.Varint(&v)) return "unparseable shape";
    } else if (!w.Skip(wt, field)) {
      return "unparseable shape";
    }
  }
  return "";
}

std::string DecodeSlice(std::string_view bytes, Slice* slice) {
  Wire w(bytes, kRecursionLimit - 1);  // a message nested in an entry
  uint32_t field, wt;
  while (!w.done()) {
    if (!w.Tag(&field, &wt)) return "unparseable slice";
    if (field == 1 && wt == 2) {
      std::string_view extent_bytes;
      if (!w.Bytes(&extent_bytes)) return "unparseable slice extent";
      Wire e(extent_bytes, kRecursionLimit - 2);
      Extent extent;
      bool has_length = false;
      while (!e.done()) {
        uint32_t f2, wt2;
        uint64_t v;
        if (!e.Tag(&f2, &wt2)) return "unparseable slice extent";
        if ((f2 == 1 || f2 == 2) && wt2 == 0) {
          if (!e.Varint(&v)) return "unparseable slice extent";
          if (f2 == 1) extent.start = static_cast<int64_t>(v);
          else { extent.length = static_cast<int64_t>(v); has_length = true; }
        } else if (!e.Skip(wt2, f2)) {
          return "unparseable slice extent";
        }
      }
      if (!has_length) {
        extent.start = 0;
        extent.length = -1;
      } else if (extent.start < 0 || extent.length <= 0 ||
                 extent.length > INT64_MAX - extent.start) {
        return "invalid slice extent (start " + std::to_string(extent.start) +
               ", length " + std::to_string(extent.length) + ")";
      }
      if (slice->size() >= static_cast<size_t>(kMaxDims)) return "slice has too many dimensions";
      slice->push_back(extent);
    } else if (!w.Skip(wt, field)) {
      return "unparseable slice";
    }
  }
  return "";
}

}  // namespace

int DtypeSize(int32_t dtype) {
  // Bytes per element in a data file (FORMAT.md section 4.4).
  static const int kSizes[34] = {
      -1, 4, 8, 4, 1, 2, 1, 0, 8, 8, 1, 1, 1, 4, 2, 2, 2,
      2, 16, 2, -1, 0, 4, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  if (dtype < 0 || dtype >= 34) return -1;
  return kSizes[dtype];
}

Header DecodeHeader(std::string_view value, const std::string& where) {
  Header h;
  Wire w(value);
  uint32_t field, wt;
  auto fail = [&]() {
    return Corrupt(where + ": unable to parse the bundle header");
  };
  while (!w.done()) {
    if (!w.Tag(&field, &wt)) throw fail();
    uint64_t v;
    if ((field == 1 || field == 2) && wt == 0) {
      if (!w.Varint(&v)) throw fail();
      if (field == 1) h.num_shards = static_cast<int32_t>(v);
      else h.endianness = static_cast<int32_t>(v);
    } else if (field == 3 && wt == 2) {
      std::string_view version;
      if (!w.Bytes(&version)) throw fail();
      Wire vw(version, kRecursionLimit - 1);
      uint32_t f2, wt2;
      while (!vw.done()) {
        if (!vw.Tag(&f2, &wt2)) throw fail();
        if (f2 >= 1 && f2 <= 3 && wt2 == 0) {
          if (!vw.Varint(&v)) throw fail();
          if (f2 == 1) h.producer = static_cast<int32_t>(v);
          else if (f2 == 2) h.min_consumer = static_cast<int32_t>(v);
          else h.bad_consumers.push_back(static_cast<int32_t>(v));
        } else if (f2 == 3 && wt2 == 2) {  // packed bad_consumers
          std::string_view packed;
          if (!vw.Bytes(&packed)) throw fail();
          const uint8_t* p = reinterpret_cast<const uint8_t*>(packed.data());
          const uint8_t* end = p + packed.size();
          while (p < end) {
            if (!GetVarint(&p, end, &v)) throw fail();
            h.bad_consumers.push_back(static_cast<int32_t>(v));
          }
        } else if (!vw.Skip(wt2, f2)) {
          throw fail();
        }
      }
    } else if (!w.Skip(wt, field)) {
      throw fail();
    }
  }
  return h;
}

Entry DecodeEntry(std::string_view value, std::string_view key) {
  Entry e;
  Wire w(value);
  uint32_t field, wt;
  static const char* const unparseable = "entry is not parseable";
  bool has_shape = false;
  while (!w.done()) {
    if (!w.Tag(&field, &wt)) { e.error = unparseable; return e; }
    uint64_t v;
    uint32_t f32;
    std::string_view bytes;
    if (wt == 0 && (field == 1 || field == 3 || field == 4 || field == 5)) {
      if (!w.Varint(&v)) { e.error = unparseable; return e; }
      switch (field) {
        case 1: e.dtype = static_cast<int32_t>(v); break;
        case 3: e.shard_id = static_cast<int32_t>(v); break;
        case 4: e.offset = static_cast<int64_t>(v); break;
        case 5: e.size = static_cast<int64_t>(v); break;
      }
    } else if (field == 6 && wt == 5) {
      if (!w.Fixed32(&f32)) { e.error = unparseable; return e; }
      e.crc32c = f32;
    } else if (field == 2 && wt == 2) {
      if (!w.Bytes(&bytes)) { e.error = unparseable; return e; }
      // A repeated occurrence of a message field merges; dims accumulate.
      std::string err = DecodeShape(bytes, &e.shape);
      if (!err.empty()) { e.error = err; return e; }
      has_shape = true;
    } else if (field == 7 && wt == 2) {
      if (!w.Bytes(&bytes)) { e.error = unparseable; return e; }
      Slice slice;
      std::string err = DecodeSlice(bytes, &slice);
      if (!err.empty()) { e.error = err; return e; }
      e.slices.push_back(std::move(slice));
    } else if (!w.Skip(wt, field)) {
      e.error = unparseable;
      return e;
    }
  }
  (void)has_shape;  // an absent shape is a scalar, as protobuf reads it
  int64_t n = 1;
  for (int64_t d : e.shape) {
    if (d < 0) { e.error = "invalid tensor shape " + ShapeText(e.shape); return e; }
    n = MultiplyWithoutOverflow(n, d);
    if (n < 0) {
      e.error = "invalid tensor shape " + ShapeText(e.shape) + " (element count overflows)";
      return e;
    }
  }
  e.num_elements = n;
  if (e.offset < 0 || e.size < 0 || e.size > INT64_MAX - e.offset) {
    e.error = "invalid offset " + std::to_string(e.offset) + " / size " + std::to_string(e.size);
    return e;
  }
  if (e.shard_id < 0) {
    e.error = "invalid shard id " + std::to_string(e.shard_id);
    return e;
  }
  for (const Slice& s : e.slices) {
    if (s.size() != e.shape.size()) {
      e.error = "slice of rank " + std::to_string(s.size()) + " for a tensor of shape " +
                ShapeText(e.shape);
      return e;
    }
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d].length >= 0 && s[d].start + s[d].length > e.shape[d]) {
        e.error = "slice extent " + std::to_string(s[d].start) + "," +
                  std::to_string(s[d].length) + " lies outside dimension " +
                  std::to_string(d) + " of shape " + ShapeText(e.shape);
        return e;
      }
    }
  }
  return e;
}

// --- OrderedCode -----------------------------------------------------------

void AppendNumIncreasing(std::string* out, uint64_t v) {
  unsigned char buf[9];
  int n = 0;
  while (v) {
    buf[8 - n] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
    ++n;
  }
  out->push_back(static_cast<char>(n));
  out->append(reinterpret_cast<const char*>(buf + 9 - n), n);
}

void AppendSignedNumIncreasing(std::string* out, int64_t v) {
  const uint64_t x = v < 0 ? ~static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  if (x < 64) {
    out->push_back(static_cast<char>((static_cast<uint64_t>(v) ^ 0x80) & 0xff));
    return;
  }
  int bits = 0;
  for (uint64_t t = x; t; t >>= 1) ++bits;
  const int len = bits / 7 + 1;
  // Ten-byte big-endian two's complement of v, sign-extended.
  unsigned char buf[10];
  const unsigned char fill = v < 0 ? 0xff : 0x00;
  buf[0] = fill;
  buf[1] = fill;
  for (int i = 0; i < 8; ++i) buf[9 - i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
  static const unsigned char kH1[11] = {0, 0, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc, 0xfe, 0xff, 0xff, 0xff};
  static const unsigned char kH2[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xc0};
  unsigned char* p = buf + 10 - len;
  p[0] ^= kH1[len];
  p[1] ^= kH2[len];
  out->append(reinterpret_cast<const char*>(p), len);
}

void AppendOrderedString(std::string* out, std::string_view s) {
  for (char c : s) {
    out->push_back(c);
    if (c == '\x00') out->push_back('\xff');
    else if (c == '\xff') out->push_back('\x00');
  }
  out->push_back('\x00');
  out->push_back('\x01');
}

namespace {

// A slice key is a prefix that encodes the name and a suffix that encodes the slice.
std::string SliceKeyPrefix(std::string_view name) {
  std::string key;
  AppendNumIncreasing(&key, 0);
  AppendOrderedString(&key, name);
  return key;
}

void AppendSliceKeySuffix(std::string* key, const Slice& slice) {
  AppendNumIncreasing(key, slice.size());
  for (const Extent& e : slice) {
    AppendSignedNumIncreasing(key, e.length < 0 ? 0 : e.start);
    AppendSignedNumIncreasing(key, e.length < 0 ? -1 : e.length);
  }
}

}  // namespace

std::string EncodeTensorNameSlice(std::string_view name, const Slice& slice) {
  std::string key = SliceKeyPrefix(name);
  AppendSliceKeySuffix(&key, slice);
  return key;
}

namespace {

bool ReadNumIncreasing(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  if (*p >= end) return false;
  unsigned n = **p;
  if (n > 8 || static_cast<size_t>(end - *p) < n + 1u) return false;
  uint64_t r = 0;
  for (unsigned i = 1; i <= n; ++i) r = (r << 8) | (*p)[i];
  *p += n + 1;
  *v = r;
  return true;
}

bool ReadSignedNumIncreasing(const uint8_t** p, const uint8_t* end, int64_t* v) {
  if (*p >= end) return false;
  const uint8_t first = **p;
  const bool negative = (first & 0x80) == 0;
  const uint8_t inv = negative ? 0xff : 0x00;
  const uint8_t b0 = first ^ inv;
  int len;
  if (b0 != 0xff) {
    // L is the number of leading zero bits of (b0 ^ 0xff), which is non-zero here.
    len = 0;
    for (uint8_t t = static_cast<uint8_t>(b0 ^ 0xff); !(t & 0x80); t = static_cast<uint8_t>(t << 1)) ++len;
    if (len < 1 || len > 7) return false;
  } else {
    if (end - *p < 2) return false;
    const uint8_t b1 = (*p)[1] ^ inv;
    if (b1 < 0x80) len = 8;
    else if (b1 < 0xc0) len = 9;
    else if (b1 == 0xc0) {
      if (end - *p < 3) return false;
      const uint8_t b2 = (*p)[2] ^ inv;
      if (b2 >= 0x80) return false;
      len = 10;
    } else {
      return false;
    }
  }
  if (end - *p < len) return false;
  uint64_t r = negative ? ~0ull : 0ull;
  const int start = len > 8 ? len - 8 : 0;
  for (int i = start; i < len; ++i) r = (r << 8) | (*p)[i];
  static const uint64_t kMask[11] = {0, 0x80ull, 0xc000ull, 0xe00000ull, 0xf0000000ull,
                                     0xf800000000ull, 0xfc0000000000ull,
                                     0xfe000000000000ull, 0xff00000000000000ull,
                                     0x8000000000000000ull, 0ull};
  r ^= kMask[len];
  *p += len;
  *v = static_cast<int64_t>(r);
  return true;
}

}  // namespace

bool DecodeTensorNameSlice(std::string_view key, std::string* name, Slice* slice) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(key.data());
  const uint8_t* end = p + key.size();
  uint64_t lead;
  if (!ReadNumIncreasing(&p, end, &lead) || lead != 0) return false;
  name->clear();
  while (true) {
    if (p >= end) return false;
    uint8_t c = *p++;
    if (c == 0x00 || c == 0xff) {
      if (p >= end) return false;
      uint8_t d = *p++;
      if (c == 0x00 && d == 0x01) break;
      if (c == 0x00 && d == 0xff) name->push_back('\x00');
      else if (c == 0xff && d == 0x00) name->push_back('\xff');
      else return false;
    } else {
      name->push_back(static_cast<char>(c));
    }
  }
  uint64_t rank;
  if (!ReadNumIncreasing(&p, end, &rank) || rank > static_cast<uint64_t>(kMaxDims)) return false;
  slice->clear();
  for (uint64_t d = 0; d < rank; ++d) {
    Extent e;
    if (!ReadSignedNumIncreasing(&p, end, &e.start) ||
        !ReadSignedNumIncreasing(&p, end, &e.length)) {
      return false;
    }
    if (e.length < 0) { e.start = 0; e.length = -1; }
    slice->push_back(e);
  }
  return p == end;
}

// --- Bundle ------------------------------------------------------------------

Bundle::Bundle(const uint8_t* data, size_t size, std::string name)
    : table_(data, size, std::move(name)) {
  const auto& entries = table_.entries();
  const std::string& fname = table_.name();
  if (entries.empty()) {
    throw Corrupt(fname + ": the index holds no entries, not even the bundle header");
  }
  if (!entries[0].key.empty()) {
    throw Corrupt(fname + ": the index has no bundle header (key \"\"); its first key is \"" +
                  Printable(entries[0].key) + "\"");
  }
  header_ = DecodeHeader(entries[0].value, fname);
  const size_t n = entries.size() - 1;
  entries_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    entries_.push_back(DecodeEntry(entries[i + 1].value, entries[i + 1].key));
  }
  hidden_.assign(n, false);
  // The slice keys of one entry share the prefix that encodes its name: find the keys
  // that start with it once, then look each slice's suffix up among them. (Encoding and
  // looking up whole keys would cost the name's length per slice: quadratic time for a
  // long name with many slices.)
  const auto first = entries.begin() + 1;
  for (size_t i = 0; i < n; ++i) {
    if (entries_[i].slices.empty()) continue;
    const std::string prefix = SliceKeyPrefix(key(i));
    const auto lo = std::lower_bound(first, entries.end(), prefix,
                                     [](const TableEntry& e, const std::string& k) {
                                       return e.key < k;
                                     });
    const auto hi = std::partition_point(lo, entries.end(), [&](const TableEntry& e) {
      return e.key.compare(0, prefix.size(), prefix) == 0;
    });
    if (lo == hi) continue;
    auto suffix_of = [&](const TableEntry& e) {
      return std::string_view(e.key).substr(prefix.size());
    };
    std::string suffix;
    for (const Slice& s : entries_[i].slices) {
      suffix.clear();
      AppendSliceKeySuffix(&suffix, s);
      auto it = std::lower_bound(lo, hi, suffix, [&](const TableEntry& e, const std::string& x) {
        return suffix_of(e) < std::string_view(x);
      });
      if (it != hi && suffix_of(*it) == suffix) hidden_[it - first] = true;
    }
  }
}

ptrdiff_t Bundle::Find(std::string_view k) const {
  const auto& entries = table_.entries();
  auto it = std::lower_bound(entries.begin() + 1, entries.end(), k,
                             [](const TableEntry& e, std::string_view key) { return e.key < key; });
  if (it == entries.end() || it->key != k) return -1;
  return (it - entries.begin()) - 1;
}

// --- Data payloads -------------------------------------------------------------

namespace {

inline uint32_t ByteSwap32(uint32_t v) { return __builtin_bswap32(v); }
inline uint64_t ByteSwap64(uint64_t v) { return __builtin_bswap64(v); }

}  // namespace

uint32_t DecodeStrings(std::string_view data, uint64_t n, bool swap_lengths, bool verify,
                       const std::string& key, std::vector<std::string_view>* out) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  const uint8_t* end = p + data.size();
  if (n > data.size()) {
    throw Corrupt("Invalid size in bundle entry: key " + key + "; stored size " +
                  std::to_string(data.size()) + "; expected size is at least " +
                  std::to_string(n));
  }
  std::vector<uint64_t> lengths;
  lengths.reserve(n);
  uint32_t crc = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len;
    if (!GetVarint(&p, end, &len)) {
      throw Corrupt("string tensor " + key + ": string lengths run past the end of the entry (" +
                    std::to_string(data.size()) + " bytes)");
    }
    lengths.push_back(len);
    if (verify) {
      if (len <= 0xffffffffull) {
        uint32_t v = static_cast<uint32_t>(len);
        if (swap_lengths) v = ByteSwap32(v);
        uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
        crc = crc32c::Extend(crc, b, 4);
      } else {
        uint64_t v = swap_lengths ? ByteSwap64(len) : len;
        uint8_t b[8];
        for (int k = 0; k < 8; ++k) b[k] = uint8_t(v >> (8 * k));
        crc = crc32c::Extend(crc, b, 8);
      }
    }
  }
  if (end - p < 4) {
    throw Corrupt("string tensor " + key + ": the length checksum is missing (entry of " +
                  std::to_string(data.size()) + " bytes)");
  }
  uint32_t stored = DecodeFixed32(p);
  if (swap_lengths) stored = ByteSwap32(stored);
  if (verify) {
    uint32_t expected = crc32c::Mask(crc);
    if (stored != expected) {
      char buf[160];
      snprintf(buf, sizeof buf,
               "The length checksum does not match: expected %08u but actual is %08u",
               expected, stored);
      Error err(ErrorKind::kChecksum, "string tensor " + key + ": " + buf);
      err.key = key;
      err.stored = stored;
      err.computed = expected;
      throw err;
    }
    crc = crc32c::Extend(crc, p, 4);
  }
  p += 4;
  for (uint64_t len : lengths) {
    if (len > static_cast<uint64_t>(end - p)) {
      throw Corrupt("string tensor " + key + ": string bytes run past the end of the entry (" +
                    std::to_string(data.size()) + " bytes)");
    }
    out->emplace_back(reinterpret_cast<const char*>(p), len);
    p += len;
  }
  if (p != end) {
    throw Corrupt("string tensor " + key + ": " + std::to_string(end - p) +
                  " bytes follow the last string in the entry");
  }
  if (verify) {
    // The string bytes are contiguous and end the entry: hash them in one pass.
    size_t total = 0;
    for (uint64_t len : lengths) total += len;
    crc = crc32c::Extend(crc, end - total, total);
  }
  return crc;
}

uint32_t DecodeVariants(std::string_view data, uint64_t n, bool verify, const std::string& key,
                        std::vector<std::string_view>* out) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  const uint8_t* end = p + data.size();
  // Each element takes at least 5 bytes: a length varint and its checksum.
  if (n > data.size() / 5) {
    throw Corrupt("Invalid size in bundle entry: key " + key + "; stored size " +
                  std::to_string(data.size()) + " cannot hold " + std::to_string(n) +
                  " variant elements");
  }
  uint32_t crc = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len;
    if (!GetVarint(&p, end, &len) || len > static_cast<uint64_t>(end - p) ||
        static_cast<uint64_t>(end - p) - len < 4) {
      throw Corrupt("variant tensor " + key + ": element " + std::to_string(i) +
                    " runs past the end of the entry (" + std::to_string(data.size()) +
                    " bytes)");
    }
    if (verify) {
      uint8_t b[8];
      for (int k = 0; k < 8; ++k) b[k] = uint8_t(len >> (8 * k));
      crc = crc32c::Extend(crc, b, 8);
      crc = crc32c::Extend(crc, p, len);
    }
    out->emplace_back(reinterpret_cast<const char*>(p), len);
    p += len;
    if (verify) {
      uint32_t stored = DecodeFixed32(p);
      if (stored != crc32c::Mask(crc)) {
        char buf[160];
        snprintf(buf, sizeof buf,
                 "The checksum after Variant %llu does not match. Expected: %08u Actual: %08u",
                 static_cast<unsigned long long>(i), crc32c::Mask(crc), stored);
        Error err(ErrorKind::kChecksum, "variant tensor " + key + ": " + buf);
        err.key = key;
        err.stored = stored;
        err.computed = crc32c::Mask(crc);
        throw err;
      }
      crc = crc32c::Extend(crc, p, 4);
    }
    p += 4;
  }
  if (p != end) {
    throw Corrupt("variant tensor " + key + ": " + std::to_string(end - p) +
                  " bytes follow the last element in the entry");
  }
  return crc;
}

}  // namespace tfckpt
