// The one exception type of the native core. The binding layer maps each kind
// to a Python class of tfckpt.errors; nothing here knows about Python.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tfckpt {

enum class ErrorKind {
  kCorrupt,        // malformed bytes: bad magic, bad block, bad entry, truncated
  kChecksum,       // a stored CRC does not match the bytes
  kKeyNotFound,    // a key that the index does not hold
  kUnsupported,    // a version or feature this reader does not handle
  kInvalidArgument,// the caller asked for something impossible
  kIo,             // the operating system refused (open, mmap)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

  // Filled in for kChecksum errors about a tensor.
  std::string key;
  int64_t shard = -1;
  int64_t offset = -1;
  uint32_t stored = 0;
  uint32_t computed = 0;

 private:
  ErrorKind kind_;
};

inline Error Corrupt(const std::string& message) {
  return Error(ErrorKind::kCorrupt, message);
}

}  // namespace tfckpt
