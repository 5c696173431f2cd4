// Read-only mappings of files that know their file's identity and size: what the
// reader opens index and data files with. A small file whose size is not tracked is
// read into memory instead (cheaper than mapping and unmapping it). No descriptor is
// kept open: readers of thousands of checkpoints must not run out of them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace tfckpt {

// The operating system refused to open, measure, read or map a file. The binding layer
// raises it as the OSError subclass of `errnum` (FileNotFoundError, IsADirectoryError...).
class FileError : public std::runtime_error {
 public:
  FileError(int errnum, const std::string& path);
  int errnum() const { return errnum_; }
  const std::string& path() const { return path_; }

 private:
  int errnum_;
  std::string path_;
};

// What a reader records of a regular file to tell later that it changed: device, inode,
// size and modification time (ns), as MappedFile keeps them.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
};

// The identity of the regular file at `path` now (following symbolic links). False when
// it cannot be stat'ed or is not a regular file.
bool StatRegular(const std::string& path, FileIdentity* id);

// The whole of the regular file at `path` into *out, when it holds at most `limit` bytes
// and reads whole at the size fstat gave (a file that grows or shrinks meanwhile does
// not). False in every other case, errors included, with nothing said: the caller then
// takes its general path, which says what is wrong. Opened non-blocking, as MappedFile.
bool ReadSmallRegular(const std::string& path, size_t limit, std::string* out);

class MappedFile {
 public:
  // With `track_size`, CurrentSize() looks at the file again, so a file that shrinks
  // under the mapping is noticed. Throws FileError; anything but a regular file is
  // refused with EINVAL (EISDIR for a directory) without blocking (a FIFO is opened
  // non-blocking).
  MappedFile(const std::string& path, bool track_size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The file's size now. Pages of a mapping past the end of a file that was truncated
  // after mapping raise SIGBUS when touched, so readers check this before handing out a
  // range.
  size_t CurrentSize() const;

  const uint8_t* data() const { return data_ ? data_ : &empty_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // What the file was when opened: device, inode, size, modification time (ns). A reader
  // compares it with the file at the path later, to tell a file changed under it.
  dev_t dev() const { return dev_; }
  ino_t ino() const { return ino_; }
  int64_t opened_size() const { return opened_size_; }
  int64_t mtime_ns() const { return mtime_ns_; }

  // Hints the kernel to read a range ahead (sequential checksum passes).
  void WillNeed(size_t offset, size_t length) const;

 private:
  // Files up to this size are read into memory unless their size is tracked.
  static constexpr size_t kReadBelow = 64 << 10;

  std::string path_;
  std::unique_ptr<uint8_t[]> copy_;  // the bytes of a small file, read
  bool mapped_ = false;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool track_size_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  int64_t opened_size_ = 0;
  int64_t mtime_ns_ = 0;
  static const uint8_t empty_;
};

}  // namespace tfckpt
