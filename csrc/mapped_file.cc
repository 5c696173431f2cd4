// Read-only file mappings; see mapped_file.h.
#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tfckpt {

const uint8_t MappedFile::empty_ = 0;

FileError::FileError(int errnum, const std::string& path)
    : std::runtime_error(path + ": " + std::strerror(errnum)), errnum_(errnum), path_(path) {}

namespace {

// Closes `fd` and throws the FileError of `errnum` (errno, read before the close).
[[noreturn]] void Fail(int fd, int errnum, const std::string& path) {
  if (fd >= 0) ::close(fd);
  throw FileError(errnum, path);
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

bool StatRegular(const std::string& path, FileIdentity* id) {
  if (path.find('\0') != std::string::npos) return false;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->size = static_cast<int64_t>(st.st_size);
  id->mtime_ns = MtimeNs(st);
  return true;
}

bool ReadSmallRegular(const std::string& path, size_t limit, std::string* out) {
  if (path.find('\0') != std::string::npos) return false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
            static_cast<uint64_t>(st.st_size) <= limit;
  if (ok) {
    // One byte more than fstat said, to see a file that grew meanwhile.
    const size_t want = static_cast<size_t>(st.st_size) + 1;
    out->resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::read(fd, &(*out)[got], want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok = n == 0;
        break;
      }
      got += static_cast<size_t>(n);
    }
    ok = ok && got == want - 1;
    out->resize(ok ? got : 0);
  }
  ::close(fd);
  return ok;
}

MappedFile::MappedFile(const std::string& path, bool track_size) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) Fail(-1, errno, path);
  struct stat st;
  if (::fstat(fd, &st) != 0) Fail(fd, errno, path);
  if (S_ISDIR(st.st_mode)) Fail(fd, EISDIR, path);
  if (!S_ISREG(st.st_mode)) Fail(fd, EINVAL, path);  // a FIFO, socket or device never ends
  opened_size_ = static_cast<int64_t>(st.st_size);
  mtime_ns_ = MtimeNs(st);
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0 && size_ <= kReadBelow && !track_size) {
    // A small file (an index, typically) costs less to read than to map and unmap.
    copy_ = std::make_unique<uint8_t[]>(size_);
    size_t got = 0;
    while (got < size_) {
      ssize_t n = ::pread(fd, copy_.get() + got, size_ - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Fail(fd, errno, path);
      if (n == 0) break;  // the file shrank since fstat: what is there is what it holds
      got += static_cast<size_t>(n);
    }
    size_ = got;
    data_ = got ? copy_.get() : nullptr;
  } else if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) Fail(fd, errno, path);
    data_ = static_cast<uint8_t*>(p);
    mapped_ = true;
  }
  track_size_ = track_size;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (mapped_) ::munmap(data_, size_);
}

size_t MappedFile::CurrentSize() const {
  if (!track_size_) return size_;
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return 0;
  // A different file now at the path (replaced by a rename) leaves our mapping of the
  // old one intact.
  if (st.st_dev != dev_ || st.st_ino != ino_) return size_;
  return std::min(size_, static_cast<size_t>(st.st_size));
}

void MappedFile::WillNeed(size_t offset, size_t length) const {
  if (!mapped_ || offset >= size_) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t start = offset / page * page;
  size_t end = std::min(size_, offset + std::min(length, size_ - offset));
  ::madvise(data_ + start, end - start, MADV_WILLNEED);
}

}  // namespace tfckpt
