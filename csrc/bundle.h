// The TensorBundle layer on top of the table (FORMAT.md sections 3-6): the
// header entry, BundleEntryProto decoding, slice keys (OrderedCode), and the
// string and variant payload encodings of the data shards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "table.h"

namespace tfckpt {

constexpr int kMaxDims = 254;
constexpr int32_t kDtString = 7;
constexpr int32_t kDtVariant = 21;
constexpr int32_t kDtResource = 20;

struct Extent {
  int64_t start = 0;
  int64_t length = -1;  // -1: the whole dimension (kFullExtent)
};
using Slice = std::vector<Extent>;

struct Header {
  int32_t num_shards = 0;
  int32_t endianness = 0;  // 0 little, 1 big
  int32_t producer = 0;
  int32_t min_consumer = 0;
  std::vector<int32_t> bad_consumers;
};

struct Entry {
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  int32_t shard_id = 0;
  int64_t offset = 0;
  int64_t size = 0;
  uint32_t crc32c = 0;  // masked, as stored
  std::vector<Slice> slices;
  int64_t num_elements = 0;
  std::string error;  // non-empty if the entry could not be decoded or is invalid
};

// Decoders; throw tfckpt::Error (kCorrupt) naming `where`.
Header DecodeHeader(std::string_view value, const std::string& where);
// Never throws: a bad entry comes back with `error` set.
Entry DecodeEntry(std::string_view value, std::string_view key);

// OrderedCode (FORMAT.md section 6.3) and slice keys (section 6.2).
void AppendNumIncreasing(std::string* out, uint64_t v);
void AppendSignedNumIncreasing(std::string* out, int64_t v);
void AppendOrderedString(std::string* out, std::string_view s);
std::string EncodeTensorNameSlice(std::string_view name, const Slice& slice);
// Returns false if `key` is not a well-formed slice key.
bool DecodeTensorNameSlice(std::string_view key, std::string* name, Slice* slice);

// An opened index: the table, the header and every entry, decoded once.
class Bundle {
 public:
  Bundle(const uint8_t* data, size_t size, std::string name);

  const Header& header() const { return header_; }
  const Table& table() const { return table_; }
  // All keys after the header, in table order (bytewise sorted).
  size_t size() const { return entries_.size(); }
  std::string_view key(size_t i) const { return table_.entries()[i + 1].key; }
  std::string_view raw_value(size_t i) const { return table_.entries()[i + 1].value; }
  const Entry& entry(size_t i) const { return entries_[i]; }
  // True for slice entries that TensorFlow hides from listings (section 10.3).
  bool hidden(size_t i) const { return hidden_[i]; }
  // Index of `key`, or -1.
  ptrdiff_t Find(std::string_view key) const;

 private:
  Table table_;
  Header header_;
  std::vector<Entry> entries_;
  std::vector<bool> hidden_;
};

// Data shard payload decoders. `data` is exactly the entry's [offset,
// offset+size) bytes. Each checks every length against `data` and, when
// `verify`, the CRCs; on success returns the masked CRC of the payload as
// TensorFlow computes it. Errors throw tfckpt::Error naming `key`.
// Strings: appends n elements to *out as (pointer, length) into `data`.
uint32_t DecodeStrings(std::string_view data, uint64_t n, bool swap_lengths,
                       bool verify, const std::string& key,
                       std::vector<std::string_view>* out);
// Variants: appends the n serialized VariantTensorDataProto messages.
uint32_t DecodeVariants(std::string_view data, uint64_t n, bool verify,
                        const std::string& key, std::vector<std::string_view>* out);

// Element size in the data file for memcpy dtypes, 0 for string/variant and
// -1 for dtypes that cannot be stored.
int DtypeSize(int32_t dtype);

}  // namespace tfckpt
