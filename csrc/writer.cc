#include "writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>
#include <thread>

#include "coding.h"
#include "crc32c.h"
#include "errors.h"
#include "table.h"

namespace tfckpt {
namespace {

std::string DataFilename(const std::string& prefix, int shard, int num_shards) {
  char buf[64];
  snprintf(buf, sizeof buf, ".data-%05d-of-%05d", shard, num_shards);
  return prefix + buf;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string RandomSuffix() {
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return std::to_string(r);
}

void PutTag(std::string* out, int field, int wire_type) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | wire_type);
}

void PutLengthDelimited(std::string* out, int field, const std::string& bytes) {
  PutTag(out, field, 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}

std::string SerializeShape(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) {
    std::string dim;
    if (d != 0) {
      PutTag(&dim, 1, 0);
      PutVarint(&dim, static_cast<uint64_t>(d));
    }
    PutLengthDelimited(&s, 2, dim);
  }
  return s;
}

std::string SerializeSlice(const Slice& slice) {
  std::string s;
  for (const Extent& e : slice) {
    std::string extent;
    if (e.length >= 0) {  // a full dimension is an empty Extent
      if (e.start != 0) {
        PutTag(&extent, 1, 0);
        PutVarint(&extent, static_cast<uint64_t>(e.start));
      }
      PutTag(&extent, 2, 0);  // in a oneof: written even when 0
      PutVarint(&extent, static_cast<uint64_t>(e.length));
    }
    PutLengthDelimited(&s, 1, extent);
  }
  return s;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::string SerializeEntry(int32_t dtype, const std::vector<int64_t>& shape, int32_t shard_id,
                           int64_t offset, int64_t size, uint32_t masked_crc,
                           const std::vector<Slice>& slices) {
  std::string out;
  if (dtype != 0) {
    PutTag(&out, 1, 0);
    PutVarint(&out, static_cast<uint64_t>(static_cast<int64_t>(dtype)));
  }
  PutLengthDelimited(&out, 2, SerializeShape(shape));
  if (shard_id != 0) {
    PutTag(&out, 3, 0);
    PutVarint(&out, static_cast<uint64_t>(static_cast<int64_t>(shard_id)));
  }
  if (offset != 0) {
    PutTag(&out, 4, 0);
    PutVarint(&out, static_cast<uint64_t>(offset));
  }
  if (size != 0) {
    PutTag(&out, 5, 0);
    PutVarint(&out, static_cast<uint64_t>(size));
  }
  if (masked_crc != 0) {
    PutTag(&out, 6, 5);
    PutFixed32(&out, masked_crc);
  }
  for (const Slice& s : slices) PutLengthDelimited(&out, 7, SerializeSlice(s));
  return out;
}

std::string SerializeHeader(int32_t num_shards, bool big_endian) {
  std::string out;
  if (num_shards != 0) {
    PutTag(&out, 1, 0);
    PutVarint(&out, static_cast<uint64_t>(num_shards));
  }
  if (big_endian) {
    PutTag(&out, 2, 0);
    PutVarint(&out, 1);
  }
  std::string version;
  PutTag(&version, 1, 0);
  PutVarint(&version, 1);  // producer = kTensorBundleVersion; min_consumer 0 omitted
  PutLengthDelimited(&out, 3, version);
  return out;
}

BundleWriter::BundleWriter(std::string prefix, uint64_t max_shard_bytes, bool big_endian)
    : prefix_(std::move(prefix)), max_shard_bytes_(max_shard_bytes), big_endian_(big_endian) {}

BundleWriter::~BundleWriter() {
  if (!finished_) Abort();
}

void BundleWriter::CheckOpen() const {
  if (finished_) throw Error(ErrorKind::kInvalidArgument, "BundleWriter is closed");
  if (failed_) throw Error(ErrorKind::kInvalidArgument, "BundleWriter failed earlier; nothing more can be written");
}

void BundleWriter::Fail(const std::string& message) {
  failed_ = true;
  Abort();
  // The temporary files named in `message` are gone by now; say which checkpoint
  // failed and that nothing of it was left behind.
  throw Error(ErrorKind::kIo, "cannot write checkpoint " + prefix_ + ": " + message +
                                  " (nothing was written)");
}

void BundleWriter::Abort() {
  for (Shard& s : shards_) {
    if (s.fd >= 0) {
      ::close(s.fd);
      s.fd = -1;
    }
    if (!s.temp_path.empty()) ::unlink(s.temp_path.c_str());
  }
  if (!index_temp_.empty()) ::unlink(index_temp_.c_str());
  finished_ = true;
}

BundleWriter::PendingEntry& BundleWriter::NewEntry(const std::string& key, int32_t dtype,
                                                   const std::vector<int64_t>& shape,
                                                   uint64_t size) {
  CheckOpen();
  if (key.empty()) throw Error(ErrorKind::kInvalidArgument, "the empty key is reserved for the header");
  if (entries_.count(key)) {
    throw Error(ErrorKind::kInvalidArgument, "Adding duplicate key: " + Printable(key));
  }
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    throw Error(ErrorKind::kInvalidArgument, "key " + Printable(key) + ": more than 254 dimensions");
  }
  // Start a new shard when this tensor would take the current one past the limit.
  if (shards_.empty() || (max_shard_bytes_ && shards_.back().size > 0 &&
                          shards_.back().size + size > max_shard_bytes_)) {
    shards_.push_back(OpenShard(prefix_ + ".tfckpt-tmp" + RandomSuffix() + ".data-" +
                                std::to_string(shards_.size())));
  }
  PendingEntry& e = entries_[key];
  e.dtype = dtype;
  e.shape = shape;
  e.shard_id = static_cast<int32_t>(shards_.size() - 1);
  e.offset = static_cast<int64_t>(shards_.back().size);
  e.size = static_cast<int64_t>(size);
  e.has_data = true;
  return e;
}

BundleWriter::Shard BundleWriter::OpenShard(const std::string& temp_path) {
  Shard s;
  s.temp_path = temp_path;
  s.fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (s.fd < 0) {
    int err = errno;
    Fail(temp_path + ": cannot create data file: " + std::strerror(err));
  }
  return s;
}

namespace {

// Payloads below this are gathered in the shard's buffer; larger ones are written
// straight from the caller's memory (no copy of a contiguous array).
constexpr size_t kBufferBytes = size_t{1} << 20;
// From this size on, a payload's CRC32C is computed by a second thread while the first
// writes it: the CRC (~15 GB/s) then hides behind the copy into the page cache (~4 GB/s).
constexpr size_t kOverlapAbove = size_t{4} << 20;

// Writes all of [data, data + n) at fd's offset; 0, or the errno that stopped it.
int WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // Large pieces, but bounded: write() moves at most about 2 GiB per call.
    const ssize_t k = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (k < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (k == 0) return EIO;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}

}  // namespace

void BundleWriter::WriteFully(Shard& s, const void* data, size_t n) {
  if (int err = WriteAll(s.fd, data, n)) Fail(s.temp_path + ": write failed: " + std::strerror(err));
}

void BundleWriter::Flush(Shard& s) {
  if (s.buffer.empty()) return;
  WriteFully(s, s.buffer.data(), s.buffer.size());
  s.buffer.clear();
}

void BundleWriter::Put(const void* data, size_t n) {
  if (n == 0) return;
  Shard& s = shards_.back();
  if (s.buffer.size() + n <= kBufferBytes) {
    if (s.buffer.capacity() < kBufferBytes) s.buffer.reserve(kBufferBytes);
    s.buffer.append(static_cast<const char*>(data), n);
  } else {
    Flush(s);
    if (n < kBufferBytes) {
      s.buffer.append(static_cast<const char*>(data), n);
    } else {
      WriteFully(s, data, n);
    }
  }
  s.size += n;
  total_bytes_ += n;
}

void BundleWriter::Write(const void* data, size_t n, uint32_t* crc) {
  if (n == 0) return;
  if (crc == nullptr || n < kOverlapAbove) {
    if (crc) *crc = crc32c::Extend(*crc, data, n);
    Put(data, n);
    return;
  }
  // The CRC on a second thread while this one writes; the thread is joined before any
  // error leaves this function.
  uint32_t result = *crc;
  std::thread hasher;
  try {
    hasher = std::thread([&result, data, n] { result = crc32c::Extend(result, data, n); });
  } catch (const std::system_error&) {  // no thread to be had: one after the other
    *crc = crc32c::Extend(*crc, data, n);
    Put(data, n);
    return;
  }
  try {
    Put(data, n);
  } catch (...) {
    hasher.join();
    throw;
  }
  hasher.join();
  *crc = result;
}

void BundleWriter::Mismatch(const std::string& key, uint32_t masked_crc, uint32_t computed) {
  failed_ = true;
  Abort();
  Error err(ErrorKind::kChecksum,
            "key " + Printable(key) + ": the source bytes do not match their stored checksum "
            "(stored " + std::to_string(crc32c::Unmask(masked_crc)) + ", computed " +
            std::to_string(computed) + "); refusing to copy damaged data");
  err.key = key;
  err.stored = crc32c::Unmask(masked_crc);
  err.computed = computed;
  throw err;
}

void BundleWriter::Add(const std::string& key, int32_t dtype, const std::vector<int64_t>& shape,
                       const uint8_t* data, size_t size) {
  PendingEntry& e = NewEntry(key, dtype, shape, size);
  uint32_t crc = 0;
  Write(data, size, &crc);
  e.crc = crc32c::Mask(crc);
}

void BundleWriter::AddRaw(const std::string& key, int32_t dtype, const std::vector<int64_t>& shape,
                          const uint8_t* data, size_t size, uint32_t masked_crc) {
  if (dtype == kDtString || dtype == kDtVariant) {
    // The CRC of a string or variant entry is not the CRC of its bytes: lengths are
    // hashed as fixed-width integers, with per-element checks in between (FORMAT.md
    // 5.3, 5.4). Decode to compute it the way TensorFlow does, before writing.
    CheckOpen();
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d < 0 ? 0 : d);
    std::string_view view(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> items;
    uint32_t crc = 0;
    try {
      crc = dtype == kDtString ? DecodeStrings(view, n, big_endian_, true, key, &items)
                               : DecodeVariants(view, n, true, key, &items);
    } catch (const Error& e) {
      failed_ = true;
      Abort();
      Error err(e.kind(), "key " + Printable(key) + ": the source bytes are damaged (" +
                              e.what() + "); refusing to copy damaged data");
      err.key = key;
      err.stored = e.stored;
      err.computed = e.computed;
      throw err;
    }
    if (crc32c::Mask(crc) != masked_crc) Mismatch(key, masked_crc, crc);
    PendingEntry& e = NewEntry(key, dtype, shape, size);
    Write(data, size, nullptr);
    e.crc = masked_crc;
    return;
  }
  PendingEntry& e = NewEntry(key, dtype, shape, size);
  uint32_t crc = 0;
  Write(data, size, &crc);
  if (crc32c::Mask(crc) != masked_crc) Mismatch(key, masked_crc, crc);
  e.crc = masked_crc;
}

void BundleWriter::AddStrings(const std::string& key, const std::vector<int64_t>& shape,
                              const std::vector<std::string_view>& strings) {
  std::string head;
  uint32_t crc = 0;
  uint64_t total = 0;
  for (std::string_view s : strings) {
    PutVarint(&head, s.size());
    total += s.size();
    uint64_t len = s.size();
    if (len <= 0xffffffffull) {
      uint32_t v = static_cast<uint32_t>(len);
      if (big_endian_) v = __builtin_bswap32(v);
      crc = crc32c::Extend(crc, &v, 4);  // little-endian host
    } else {
      uint64_t v = big_endian_ ? __builtin_bswap64(len) : len;
      crc = crc32c::Extend(crc, &v, 8);
    }
  }
  uint32_t length_checksum = crc32c::Mask(crc);
  if (big_endian_) length_checksum = __builtin_bswap32(length_checksum);
  PutFixed32(&head, length_checksum);
  PendingEntry& e = NewEntry(key, kDtString, shape, head.size() + total);
  Write(head.data(), head.size() - 4, nullptr);
  Write(head.data() + head.size() - 4, 4, &crc);
  for (std::string_view s : strings) Write(s.data(), s.size(), &crc);
  e.crc = crc32c::Mask(crc);
}

void BundleWriter::AddVariants(const std::string& key, const std::vector<int64_t>& shape,
                               const std::vector<std::string_view>& serialized) {
  uint64_t size = 0;
  for (std::string_view s : serialized) {
    std::string v;
    PutVarint(&v, s.size());
    size += v.size() + s.size() + 4;
  }
  PendingEntry& e = NewEntry(key, kDtVariant, shape, size);
  uint32_t crc = 0;
  for (std::string_view s : serialized) {
    std::string len;
    PutVarint(&len, s.size());
    Write(len.data(), len.size(), nullptr);
    uint64_t len64 = s.size();
    crc = crc32c::Extend(crc, &len64, 8);
    Write(s.data(), s.size(), &crc);
    std::string check;
    PutFixed32(&check, crc32c::Mask(crc));
    Write(check.data(), 4, &crc);
  }
  e.crc = crc32c::Mask(crc);
}

void BundleWriter::AddSliceMeta(const std::string& full_key, int32_t dtype,
                                const std::vector<int64_t>& full_shape, const Slice& slice) {
  CheckOpen();
  if (slice.size() != full_shape.size()) {
    throw Error(ErrorKind::kInvalidArgument,
                "slice of rank " + std::to_string(slice.size()) + " for " + Printable(full_key) +
                    " of shape " + ShapeText(full_shape));
  }
  for (size_t d = 0; d < slice.size(); ++d) {
    const Extent& x = slice[d];
    if (x.length >= 0 && (x.start < 0 || x.length == 0 || x.start + x.length > full_shape[d])) {
      throw Error(ErrorKind::kInvalidArgument,
                  "slice extent " + std::to_string(x.start) + "," + std::to_string(x.length) +
                      " does not fit dimension " + std::to_string(d) + " of " +
                      Printable(full_key) + " " + ShapeText(full_shape));
    }
  }
  auto it = entries_.find(full_key);
  if (it == entries_.end()) {
    PendingEntry& e = entries_[full_key];
    e.dtype = dtype;
    e.shape = full_shape;
    e.slices.push_back(slice);
    return;
  }
  PendingEntry& e = it->second;
  if (e.has_data) {
    throw Error(ErrorKind::kInvalidArgument,
                "Adding duplicate key: " + Printable(full_key) + " (already a whole tensor)");
  }
  if (e.dtype != dtype || e.shape != full_shape) {
    throw Error(ErrorKind::kInvalidArgument,
                "slices of " + Printable(full_key) + " disagree on dtype or full shape");
  }
  e.slices.push_back(slice);
}

int BundleWriter::Finish() {
  CheckOpen();
  if (shards_.empty()) {
    // TensorFlow writes one (empty) data file even for an empty bundle.
    shards_.push_back(OpenShard(prefix_ + ".tfckpt-tmp" + RandomSuffix() + ".data-0"));
  }
  for (Shard& s : shards_) {
    Flush(s);
    std::string().swap(s.buffer);
    const int fd = s.fd;
    s.fd = -1;
    if (::close(fd) != 0) {
      int err = errno;
      Fail(s.temp_path + ": write failed: " + std::strerror(err));
    }
  }
  // Name the shards so that no existing file is overwritten: the index rename is
  // then the single moment the checkpoint changes, and an interrupt before it
  // leaves any previous checkpoint at this prefix intact.
  const int used = static_cast<int>(shards_.size());
  int n = used;
  auto collides = [&](int count) {
    for (int i = 0; i < count; ++i) {
      if (Exists(DataFilename(prefix_, i, count))) return true;
    }
    return false;
  };
  while (collides(n)) ++n;
  for (int i = used; i < n; ++i) {  // padding shards: empty files, never referenced
    shards_.push_back(OpenShard(prefix_ + ".tfckpt-tmp" + RandomSuffix() + ".data-" +
                                std::to_string(i)));
    Shard& s = shards_.back();
    const int fd = s.fd;
    s.fd = -1;
    if (::close(fd) != 0) {
      int err = errno;
      Fail(s.temp_path + ": cannot create data file: " + std::strerror(err));
    }
  }

  TableBuilder table;
  table.Add("", SerializeHeader(n, big_endian_));
  for (const auto& kv : entries_) {
    const PendingEntry& e = kv.second;
    if (!e.has_data && e.slices.empty()) continue;
    if (e.has_data) {
      table.Add(kv.first, SerializeEntry(e.dtype, e.shape, e.shard_id, e.offset, e.size, e.crc, {}));
      continue;
    }
    // A partitioned tensor's full entry holds no data, but TensorFlow's MergeBundles
    // leaves it the shard_id of the first shard holding one of its slices (FORMAT.md
    // 1.3); a single BundleWriter leaves 0. The first such shard is the lowest.
    int32_t shard = -1;
    for (const Slice& s : e.slices) {
      auto it = entries_.find(EncodeTensorNameSlice(kv.first, s));
      if (it != entries_.end() && it->second.has_data &&
          (shard < 0 || it->second.shard_id < shard)) {
        shard = it->second.shard_id;
      }
    }
    table.Add(kv.first, SerializeEntry(e.dtype, e.shape, shard < 0 ? 0 : shard, 0, 0, 0, e.slices));
  }
  const std::string index = table.Finish();
  index_temp_ = prefix_ + ".index.tempstate" + RandomSuffix();
  FILE* f = std::fopen(index_temp_.c_str(), "wb");
  if (!f) {
    int err = errno;
    Fail(index_temp_ + ": cannot create index file: " + std::strerror(err));
  }
  bool ok = std::fwrite(index.data(), 1, index.size(), f) == index.size();
  int err = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) Fail(index_temp_ + ": write failed: " + std::strerror(err));

  for (int i = 0; i < n; ++i) {
    const std::string final_name = DataFilename(prefix_, i, n);
    if (std::rename(shards_[i].temp_path.c_str(), final_name.c_str()) != 0) {
      int e = errno;
      // Shards already renamed are unreferenced new files (their names collide with
      // nothing that existed): remove them too, so that nothing is left behind.
      for (int j = 0; j < i; ++j) ::unlink(DataFilename(prefix_, j, n).c_str());
      Fail(final_name + ": cannot rename data file into place: " + std::strerror(e));
    }
    shards_[i].temp_path.clear();
  }
  const std::string index_name = prefix_ + ".index";
  if (std::rename(index_temp_.c_str(), index_name.c_str()) != 0) {
    int e = errno;
    // The data files are in place under new names; without the index they are
    // unreferenced, and any previous checkpoint is untouched.
    for (int i = 0; i < n; ++i) ::unlink(DataFilename(prefix_, i, n).c_str());
    Fail(index_name + ": cannot rename index into place: " + std::strerror(e));
  }
  index_temp_.clear();
  finished_ = true;
  return n;
}

}  // namespace tfckpt
