#include "table.h"

#include <algorithm>
#include <cstring>

#include "coding.h"
#include "crc32c.h"
#include "errors.h"
#include "snappy.h"

namespace tfckpt {
namespace {

bool DecodeHandle(const uint8_t** p, const uint8_t* end, BlockHandle* h) {
  return GetVarint(p, end, &h->offset) && GetVarint(p, end, &h->size);
}

std::string HandleText(const BlockHandle& h) {
  return "offset " + std::to_string(h.offset) + ", size " + std::to_string(h.size);
}

}  // namespace

Table::Table(const uint8_t* data, size_t size, std::string name)
    : name_(std::move(name)) {
  if (size < kFooterSize) {
    throw Corrupt(name_ + ": file is too short to be an sstable (" +
                  std::to_string(size) + " bytes; a table ends in a 48-byte footer)");
  }
  const uint8_t* footer = data + size - kFooterSize;
  uint64_t magic = DecodeFixed64(footer + 40);
  if (magic != kTableMagic) {
    throw Corrupt(name_ + ": not an sstable (bad magic number)");
  }
  const uint8_t* p = footer;
  const uint8_t* handles_end = footer + 40;
  if (!DecodeHandle(&p, handles_end, &stats_.metaindex_handle) ||
      !DecodeHandle(&p, handles_end, &stats_.index_handle)) {
    throw Corrupt(name_ + ": bad block handle in the footer");
  }
  // Keys are rebuilt from shared prefixes; a hostile table could make them
  // expand without bound. TensorFlow's own tables stay far below this limit.
  key_byte_limit_ = size * 32 + (1u << 20);

  std::string_view index = ReadBlock(data, size, stats_.index_handle, "index block");
  std::vector<TableEntry> index_entries;
  // Each index entry names a data block, and data blocks do not overlap: each takes at
  // least its 5-byte trailer of the file. (A Snappy index block could otherwise expand
  // into millions of entries before any handle is looked at.)
  ParseBlock(index, "index block", &index_entries, /*check_order=*/false,
             size / kBlockTrailerSize + 1);

  // Data blocks must follow one another without overlap, so reading them all
  // costs at most one pass over the file, whatever the index says.
  uint64_t next_free = 0;
  for (const TableEntry& ie : index_entries) {
    const uint8_t* hp = reinterpret_cast<const uint8_t*>(ie.value.data());
    BlockHandle handle;
    if (!DecodeHandle(&hp, hp + ie.value.size(), &handle)) {
      throw Corrupt(name_ + ": bad block handle in the index block (key \"" +
                    Printable(ie.key) + "\")");
    }
    if (handle.offset < next_free) {
      throw Corrupt(name_ + ": data block at " + HandleText(handle) +
                    " overlaps or precedes the previous block");
    }
    std::string_view block = ReadBlock(data, size, handle, "data block");
    next_free = handle.offset + handle.size + kBlockTrailerSize;
    // Keys must increase strictly across the whole table; checking them as they are
    // decoded bounds the entries by the bytes of the file even for Snappy blocks.
    ParseBlock(block, "data block", &entries_, /*check_order=*/true, SIZE_MAX);
    ++stats_.data_blocks;
  }
}

std::string_view Table::ReadBlock(const uint8_t* data, size_t size,
                                  const BlockHandle& handle, const char* what) {
  const uint64_t limit = size - kFooterSize;
  if (handle.offset > limit || handle.size > limit - handle.offset ||
      kBlockTrailerSize > limit - handle.offset - handle.size) {
    throw Corrupt(name_ + ": " + what + " handle (" + HandleText(handle) +
                  ") points past the end of the file (" + std::to_string(size) +
                  " bytes)");
  }
  const uint8_t* contents = data + handle.offset;
  const uint8_t* trailer = contents + handle.size;
  uint8_t type = trailer[0];
  uint32_t stored = crc32c::Unmask(DecodeFixed32(trailer + 1));
  uint32_t actual = crc32c::Extend(crc32c::Value(contents, handle.size), trailer, 1);
  if (stored != actual) {
    throw Error(ErrorKind::kChecksum,
                name_ + ": block checksum mismatch in " + what + " at " +
                    HandleText(handle));
  }
  if (type == kNoCompression) {
    return std::string_view(reinterpret_cast<const char*>(contents), handle.size);
  }
  if (type == kSnappyCompression) {
    auto out = std::make_unique<std::string>();
    std::string error;
    // Snappy expands at most about 21x (a 64-byte copy in 3 bytes).
    size_t max_output = handle.size * 24 + 64;
    if (!snappy::Decompress(contents, handle.size, max_output, out.get(), &error)) {
      throw Corrupt(name_ + ": corrupted compressed block contents in " + what +
                    " at " + HandleText(handle) + " (" + error + ")");
    }
    ++stats_.snappy_blocks;
    owned_blocks_.push_back(std::move(out));
    return *owned_blocks_.back();
  }
  throw Corrupt(name_ + ": bad block type " + std::to_string(type) + " in " + what +
                " at " + HandleText(handle));
}

std::string_view Table::StoreKey(std::string_view prev, size_t shared, std::string_view rest) {
  const size_t n = shared + rest.size();
  if (n > key_free_size_) {
    // A small index (most are) allocates little; a large one grows to 64 KiB chunks.
    constexpr size_t kFirst = size_t{4} << 10, kLargest = size_t{64} << 10;
    const size_t next = key_chunk_size_ == 0 ? kFirst : std::min(2 * key_chunk_size_, kLargest);
    const size_t size = n > next / 4 ? n : next;  // a long key gets a chunk of its own
    key_chunks_.push_back(std::unique_ptr<char[]>(new char[size > 0 ? size : 1]));
    char* chunk = key_chunks_.back().get();
    if (size == n) {  // keep the shared chunk's free space for the keys that follow
      if (shared) std::memcpy(chunk, prev.data(), shared);
      if (!rest.empty()) std::memcpy(chunk + shared, rest.data(), rest.size());
      return std::string_view(chunk, n);
    }
    key_free_ = chunk;
    key_free_size_ = size;
    key_chunk_size_ = size;
  }
  char* out = key_free_;
  if (shared) std::memcpy(out, prev.data(), shared);
  if (!rest.empty()) std::memcpy(out + shared, rest.data(), rest.size());
  key_free_ += n;
  key_free_size_ -= n;
  return std::string_view(out, n);
}

void Table::ParseBlock(std::string_view block, const char* what,
                       std::vector<TableEntry>* out, bool check_order, size_t max_entries) {
  const uint8_t* base = reinterpret_cast<const uint8_t*>(block.data());
  const size_t n = block.size();
  if (n < 4) throw Corrupt(name_ + ": bad block contents in " + what + " (too short)");
  uint32_t num_restarts = DecodeFixed32(base + n - 4);
  if (num_restarts > (n - 4) / 4) {
    throw Corrupt(name_ + ": bad block contents in " + what + " (" +
                  std::to_string(num_restarts) + " restart points do not fit in " +
                  std::to_string(n) + " bytes)");
  }
  if (num_restarts == 0) return;  // TensorFlow reads such a block as empty
  const size_t restarts_offset = n - 4 - 4 * static_cast<size_t>(num_restarts);
  if (restarts_offset == 0) return;  // an empty block: restarts [0] and nothing else
  const uint8_t* restarts = base + restarts_offset;
  const uint8_t* end = base + restarts_offset;

  // Every restart point must be the start of an entry whose key is stored
  // whole (shared == 0), in increasing order, beginning at 0.
  uint32_t next_restart = 0;
  uint32_t restart_value = DecodeFixed32(restarts);
  if (restart_value != 0) {
    throw Corrupt(name_ + ": restart array of " + what +
                  " does not start at offset 0 (points at " +
                  std::to_string(restart_value) + ")");
  }

  const uint8_t* p = base;
  std::string_view prev_key;
  while (p < end) {
    const size_t entry_offset = static_cast<size_t>(p - base);
    bool at_restart = false;
    if (next_restart < num_restarts) {
      restart_value = DecodeFixed32(restarts + 4 * next_restart);
      if (restart_value < entry_offset) {
        throw Corrupt(name_ + ": restart point " + std::to_string(restart_value) +
                      " of " + what + " is not at an entry boundary");
      }
      if (restart_value == entry_offset) {
        at_restart = true;
        ++next_restart;
      }
    }
    uint32_t shared, unshared, value_length;
    if (!GetVarint32(&p, end, &shared) || !GetVarint32(&p, end, &unshared) ||
        !GetVarint32(&p, end, &value_length)) {
      throw Corrupt(name_ + ": bad entry in " + what + " at offset " +
                    std::to_string(entry_offset) + " (truncated lengths)");
    }
    const size_t prev_len = prev_key.size();
    if (shared > prev_len || (at_restart && shared != 0)) {
      throw Corrupt(name_ + ": bad entry in " + what + " at offset " +
                    std::to_string(entry_offset) + " (shares " + std::to_string(shared) +
                    " bytes with a " + std::to_string(prev_len) + "-byte key" +
                    (at_restart ? " at a restart point)" : ")"));
    }
    if (unshared > static_cast<size_t>(end - p) ||
        value_length > static_cast<size_t>(end - p) - unshared) {
      throw Corrupt(name_ + ": bad entry in " + what + " at offset " +
                    std::to_string(entry_offset) + " (key or value runs past the block)");
    }
    key_bytes_ += shared + unshared;
    if (key_bytes_ > key_byte_limit_) {
      throw Corrupt(name_ + ": keys expand to more than " +
                    std::to_string(key_byte_limit_) +
                    " bytes; the index is corrupt or hostile");
    }
    TableEntry entry;
    entry.key = StoreKey(prev_key, shared, std::string_view(reinterpret_cast<const char*>(p), unshared));
    p += unshared;
    entry.value = std::string_view(reinterpret_cast<const char*>(p), value_length);
    p += value_length;
    if (check_order && !out->empty() && !(out->back().key < entry.key)) {
      throw Corrupt(name_ + ": keys are not in strictly increasing order: \"" +
                    Printable(entry.key) + "\" follows \"" + Printable(out->back().key) +
                    "\"");
    }
    if (out->size() >= max_entries) {
      throw Corrupt(name_ + ": bad entry in " + what + " at offset " +
                    std::to_string(entry_offset) + " (more than " +
                    std::to_string(max_entries) + " entries in a " + std::to_string(n) +
                    "-byte block of a table this size)");
    }
    out->push_back(entry);
    prev_key = entry.key;
  }
  if (next_restart != num_restarts) {
    restart_value = DecodeFixed32(restarts + 4 * next_restart);
    throw Corrupt(name_ + ": restart point " + std::to_string(restart_value) + " of " +
                  what + " points outside the entries of the block");
  }
}

// ---------------------------------------------------------------------------
// Building

void FindShortestSeparator(std::string* start, std::string_view limit) {
  size_t min_len = std::min(start->size(), limit.size());
  size_t i = 0;
  while (i < min_len && (*start)[i] == limit[i]) ++i;
  if (i >= min_len) return;  // one is a prefix of the other
  uint8_t byte = static_cast<uint8_t>((*start)[i]);
  if (byte < 0xff && byte + 1 < static_cast<uint8_t>(limit[i])) {
    (*start)[i] = static_cast<char>(byte + 1);
    start->resize(i + 1);
  }
}

void FindShortSuccessor(std::string* key) {
  for (size_t i = 0; i < key->size(); ++i) {
    uint8_t byte = static_cast<uint8_t>((*key)[i]);
    if (byte != 0xff) {
      (*key)[i] = static_cast<char>(byte + 1);
      key->resize(i + 1);
      return;
    }
  }
}

void TableBuilder::BlockBuilder::Reset() {
  buffer.clear();
  restarts.assign(1, 0);
  counter = 0;
  last_key.clear();
}

void TableBuilder::BlockBuilder::Add(std::string_view key, std::string_view value) {
  size_t shared = 0;
  if (counter < interval) {
    size_t min_len = std::min(last_key.size(), key.size());
    while (shared < min_len && last_key[shared] == key[shared]) ++shared;
  } else {
    restarts.push_back(static_cast<uint32_t>(buffer.size()));
    counter = 0;
  }
  PutVarint(&buffer, shared);
  PutVarint(&buffer, key.size() - shared);
  PutVarint(&buffer, value.size());
  buffer.append(key.data() + shared, key.size() - shared);
  buffer.append(value.data(), value.size());
  last_key.assign(key.data(), key.size());
  ++counter;
}

std::string TableBuilder::BlockBuilder::Finish() {
  for (uint32_t r : restarts) PutFixed32(&buffer, r);
  PutFixed32(&buffer, static_cast<uint32_t>(restarts.size()));
  std::string result = std::move(buffer);
  Reset();
  return result;
}

TableBuilder::TableBuilder(size_t block_size, int restart_interval)
    : block_size_(block_size), data_block_(restart_interval), index_block_(1) {}

BlockHandle TableBuilder::WriteBlock(const std::string& contents) {
  BlockHandle handle{out_.size(), contents.size()};
  out_ += contents;
  const uint8_t type = kNoCompression;
  uint32_t crc = crc32c::Extend(crc32c::Value(contents.data(), contents.size()), &type, 1);
  out_.push_back(static_cast<char>(type));
  PutFixed32(&out_, crc32c::Mask(crc));
  return handle;
}

void TableBuilder::FlushDataBlock() {
  if (data_block_.empty()) return;
  pending_handle_ = WriteBlock(data_block_.Finish());
  pending_index_entry_ = true;
}

void TableBuilder::Add(std::string_view key, std::string_view value) {
  if (num_entries_ > 0 && key.size() + value.size() >= 2 * block_size_) {
    FlushDataBlock();
  }
  if (pending_index_entry_) {
    std::string separator = last_key_;
    FindShortestSeparator(&separator, key);
    std::string handle;
    PutVarint(&handle, pending_handle_.offset);
    PutVarint(&handle, pending_handle_.size);
    index_block_.Add(separator, handle);
    pending_index_entry_ = false;
  }
  last_key_.assign(key.data(), key.size());
  ++num_entries_;
  data_block_.Add(key, value);
  if (data_block_.EstimatedSize() >= block_size_) FlushDataBlock();
}

std::string TableBuilder::Finish() {
  FlushDataBlock();
  BlockHandle metaindex = WriteBlock(BlockBuilder(16).Finish());
  if (pending_index_entry_) {
    std::string successor = last_key_;
    FindShortSuccessor(&successor);
    std::string handle;
    PutVarint(&handle, pending_handle_.offset);
    PutVarint(&handle, pending_handle_.size);
    index_block_.Add(successor, handle);
    pending_index_entry_ = false;
  }
  BlockHandle index = WriteBlock(index_block_.Finish());
  std::string footer;
  PutVarint(&footer, metaindex.offset);
  PutVarint(&footer, metaindex.size);
  PutVarint(&footer, index.offset);
  PutVarint(&footer, index.size);
  footer.resize(40, '\0');
  PutFixed64(&footer, kTableMagic);
  out_ += footer;
  return std::move(out_);
}

}  // namespace tfckpt
