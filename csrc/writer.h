// Writing bundles as TensorFlow's BundleWriter does (FORMAT.md sections 1.2, 5, 6.1,
// 10.1): data shards in Add order with a running CRC32C, then the index table of
// sorted entries with TensorFlow's block size, restart interval and field order.
// Files are written under temporary names and renamed into place by Finish; the
// index rename is the commit point, so no half-written checkpoint is ever visible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bundle.h"

namespace tfckpt {

class BundleWriter {
 public:
  // max_shard_bytes == 0: one data shard. Otherwise a new shard is started
  // before a tensor that would take the current one past the limit.
  BundleWriter(std::string prefix, uint64_t max_shard_bytes, bool big_endian = false);
  ~BundleWriter();  // aborts if not finished
  BundleWriter(const BundleWriter&) = delete;
  BundleWriter& operator=(const BundleWriter&) = delete;

  // A numeric tensor whose bytes are given exactly as they go to the file.
  void Add(const std::string& key, int32_t dtype, const std::vector<int64_t>& shape,
           const uint8_t* data, size_t size);
  void AddStrings(const std::string& key, const std::vector<int64_t>& shape,
                  const std::vector<std::string_view>& strings);
  void AddVariants(const std::string& key, const std::vector<int64_t>& shape,
                   const std::vector<std::string_view>& serialized);
  // Copies a stored payload through unchanged. `masked_crc` is the entry's CRC
  // as stored; the bytes are hashed while written and must match it.
  void AddRaw(const std::string& key, int32_t dtype, const std::vector<int64_t>& shape,
              const uint8_t* data, size_t size, uint32_t masked_crc);
  // Registers `slice` of the partitioned tensor `full_key` of `full_shape`; the
  // slice's payload must be added next under SliceKey(full_key, slice).
  void AddSliceMeta(const std::string& full_key, int32_t dtype,
                    const std::vector<int64_t>& full_shape, const Slice& slice);

  // Writes the index and renames every file into place; returns num_shards.
  // Data files never overwrite existing files (num_shards grows past any
  // existing names, with empty padding shards), so the index rename is the
  // single commit point; the caller removes a replaced checkpoint's old shards.
  int Finish();
  void Abort();

  uint64_t bytes_written() const { return total_bytes_; }
  int num_shards() const { return static_cast<int>(shards_.size()); }

 private:
  struct PendingEntry {
    int32_t dtype = 0;
    std::vector<int64_t> shape;
    int32_t shard_id = 0;
    int64_t offset = 0;
    int64_t size = 0;
    uint32_t crc = 0;  // masked
    std::vector<Slice> slices;
    bool has_data = false;
  };
  struct Shard {
    std::string temp_path;
    int fd = -1;
    std::string buffer;  // bytes not yet written: small payloads are gathered
    uint64_t size = 0;   // bytes of the shard so far, the buffer included
  };

  PendingEntry& NewEntry(const std::string& key, int32_t dtype,
                         const std::vector<int64_t>& shape, uint64_t size);
  void Write(const void* data, size_t n, uint32_t* crc);
  void Put(const void* data, size_t n);
  void Flush(Shard& s);
  void WriteFully(Shard& s, const void* data, size_t n);
  Shard OpenShard(const std::string& temp_path);
  [[noreturn]] void Mismatch(const std::string& key, uint32_t masked_crc, uint32_t computed);
  void CheckOpen() const;
  [[noreturn]] void Fail(const std::string& message);

  std::string prefix_;
  uint64_t max_shard_bytes_;
  bool big_endian_;
  std::map<std::string, PendingEntry> entries_;
  std::vector<Shard> shards_;
  std::string index_temp_;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
  bool failed_ = false;
};

// Serializes entries exactly as TensorFlow's C++ protobuf serializer does:
// ascending field numbers, proto3 defaults omitted, shape always present.
std::string SerializeEntry(int32_t dtype, const std::vector<int64_t>& shape, int32_t shard_id,
                           int64_t offset, int64_t size, uint32_t masked_crc,
                           const std::vector<Slice>& slices);
std::string SerializeHeader(int32_t num_shards, bool big_endian);

}  // namespace tfckpt
