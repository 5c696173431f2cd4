// The LevelDB-style table that a checkpoint's .index file is (FORMAT.md
// section 2): data blocks of prefix-compressed entries with restart points,
// a 5-byte trailer per block (type, masked CRC32C), an index block of block
// handles and a 48-byte footer ending in the table magic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tfckpt {

constexpr uint64_t kTableMagic = 0xdb4775248b80fb57ull;
constexpr size_t kFooterSize = 48;
constexpr size_t kBlockTrailerSize = 5;
constexpr size_t kMaxBlockHandleSize = 20;
constexpr uint8_t kNoCompression = 0;
constexpr uint8_t kSnappyCompression = 1;

struct BlockHandle {
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct TableEntry {
  std::string_view key;    // into the table's own key storage (keys are prefix-compressed)
  std::string_view value;  // into the file, or into a decompressed block
};

struct TableStats {
  size_t data_blocks = 0;
  size_t snappy_blocks = 0;
  BlockHandle index_handle;
  BlockHandle metaindex_handle;
};

// A fully decoded table. Values point into the caller's buffer (which must
// outlive this object) or into blocks this object decompressed.
class Table {
 public:
  // Reads every block of the table in `data`, verifying each block CRC.
  // `name` is the file name used in error messages. Throws tfckpt::Error.
  Table(const uint8_t* data, size_t size, std::string name);

  const std::vector<TableEntry>& entries() const { return entries_; }
  const TableStats& stats() const { return stats_; }
  const std::string& name() const { return name_; }

 private:
  std::string_view ReadBlock(const uint8_t* data, size_t size,
                             const BlockHandle& handle, const char* what);
  // Appends the entries of `block` to *out. With `check_order`, every key must be
  // greater than the one before it in *out (checked as each entry is decoded, so a
  // hostile block of repeated entries stops at the first repeat). At most
  // `max_entries` entries in *out.
  void ParseBlock(std::string_view block, const char* what, std::vector<TableEntry>* out,
                  bool check_order, size_t max_entries);

  // Stores a key, the first `shared` bytes of `prev` then `rest`, in memory the table owns
  // (chunks that never move: the first 4 KiB, each next one twice the last up to 64 KiB;
  // one allocation per chunk, not one per key).
  std::string_view StoreKey(std::string_view prev, size_t shared, std::string_view rest);

  std::string name_;
  std::vector<TableEntry> entries_;
  std::vector<std::unique_ptr<char[]>> key_chunks_;
  char* key_free_ = nullptr;  // the unused part of the last chunk
  size_t key_free_size_ = 0;
  size_t key_chunk_size_ = 0;  // the size of the last shared chunk
  std::vector<std::unique_ptr<std::string>> owned_blocks_;
  TableStats stats_;
  size_t key_bytes_ = 0;
  size_t key_byte_limit_ = 0;
};

// Builds tables byte for byte as TensorFlow's TableBuilder does with the
// options BundleWriter uses (no compression; FORMAT.md section 2.8).
class TableBuilder {
 public:
  explicit TableBuilder(size_t block_size = 262144, int restart_interval = 16);
  // Keys must be strictly increasing in bytewise order.
  void Add(std::string_view key, std::string_view value);
  // Returns the complete file contents.
  std::string Finish();

 private:
  struct BlockBuilder {
    explicit BlockBuilder(int interval) : interval(interval) { Reset(); }
    void Reset();
    void Add(std::string_view key, std::string_view value);
    size_t EstimatedSize() const { return buffer.size() + restarts.size() * 4 + 4; }
    std::string Finish();
    int interval;
    std::string buffer;
    std::vector<uint32_t> restarts;
    int counter = 0;
    std::string last_key;
    bool empty() const { return buffer.empty(); }
  };
  void FlushDataBlock();
  BlockHandle WriteBlock(const std::string& contents);

  size_t block_size_;
  std::string out_;
  BlockBuilder data_block_;
  BlockBuilder index_block_;
  std::string last_key_;
  bool pending_index_entry_ = false;
  BlockHandle pending_handle_;
  uint64_t num_entries_ = 0;
};

// Shortest separator / successor rules of the index block (FORMAT.md 2.7).
void FindShortestSeparator(std::string* start, std::string_view limit);
void FindShortSuccessor(std::string* key);

}  // namespace tfckpt
