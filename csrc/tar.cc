// Tar header listing; see tar.h. The pure-Python twin (tfckpt/_pycore/tar.py, tar_members)
// follows the same rules, and the tests hold the two against each other and tarfile.
#include "tar.h"

#include <cstring>
#include <limits>
#include <unordered_map>

namespace tfckpt {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxNumber = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

bool IsSpace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// A numeric header field: big-endian base-256 after the first byte when that byte has
// its top bit set (GNU), otherwise octal digits up to the first NUL, with optional
// whitespace around them (empty is 0). False for anything else or a value past 2^63-1.
bool Number(const uint8_t* f, size_t n, uint64_t* v) {
  uint64_t x = 0;
  if (f[0] & 0x80) {
    for (size_t i = 1; i < n; ++i) {
      if (x > (kMaxNumber >> 8)) return false;
      x = (x << 8) | f[i];
    }
    *v = x;
    return true;
  }
  size_t end = 0;
  while (end < n && f[end] != 0) ++end;
  size_t b = 0;
  while (b < end && IsSpace(f[b])) ++b;
  while (end > b && IsSpace(f[end - 1])) --end;
  for (size_t i = b; i < end; ++i) {
    if (f[i] < '0' || f[i] > '7') return false;
    x = x * 8 + (f[i] - '0');  // at most 12 digits: no overflow
  }
  *v = x;
  return true;
}

// Decimal digits only (pax lengths and sizes), at most `limit`.
bool Decimal(const uint8_t* p, size_t n, uint64_t limit, uint64_t* v) {
  if (n == 0) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9') return false;
    const uint64_t d = p[i] - '0';
    if (x > (limit - d) / 10) return false;
    x = x * 10 + d;
  }
  *v = x;
  return true;
}

// A text field: its bytes up to the first NUL.
std::string Text(const uint8_t* f, size_t n) {
  const void* nul = std::memchr(f, 0, n);
  return std::string(reinterpret_cast<const char*>(f),
                     nul ? static_cast<const uint8_t*>(nul) - f : n);
}

struct Pax {
  bool has_path = false, has_linkpath = false, has_size = false;
  std::string path, linkpath, size;
};

// The records of a pax extended header ("LENGTH KEY=VALUE\n" each); false if malformed.
bool ParsePax(const uint8_t* p, size_t n, Pax* pax) {
  *pax = Pax();
  size_t pos = 0;
  while (pos < n) {
    const void* sp = std::memchr(p + pos, ' ', n - pos);
    if (!sp) return false;
    const size_t space = static_cast<const uint8_t*>(sp) - p;
    uint64_t length;
    if (!Decimal(p + pos, space - pos, n - pos, &length) || length == 0) return false;
    const size_t end = pos + static_cast<size_t>(length);
    if (space + 1 >= end || p[end - 1] != '\n') return false;
    std::string body(reinterpret_cast<const char*>(p + space + 1), end - 1 - (space + 1));
    const size_t eq = body.find('=');
    const std::string key = body.substr(0, eq);
    std::string value = eq == std::string::npos ? std::string() : body.substr(eq + 1);
    if (key == "path") {
      pax->has_path = true;
      pax->path = std::move(value);
    } else if (key == "linkpath") {
      pax->has_linkpath = true;
      pax->linkpath = std::move(value);
    } else if (key == "size") {
      pax->has_size = true;
      pax->size = std::move(value);
    }
    pos = end;
  }
  return true;
}

// The offset after a member's data (rounded up to whole blocks), or `limit` + 1 when that
// lies past `limit`.
uint64_t After(uint64_t data, uint64_t size, uint64_t limit) {
  const unsigned __int128 next =
      static_cast<unsigned __int128>(data) + (static_cast<unsigned __int128>(size) + kBlock - 1) /
                                                 kBlock * kBlock;
  return next > limit ? limit + 1 : static_cast<uint64_t>(next);
}

}  // namespace

std::string NormalizeTarName(std::string name) {
  for (char& c : name) {
    if (c == '\\') c = '/';
  }
  size_t b = 0;
  for (;;) {
    if (name.compare(b, 2, "./") == 0) {
      b += 2;
    } else if (b < name.size() && name[b] == '/') {
      ++b;
    } else {
      break;
    }
  }
  size_t e = name.size();
  while (e > b && name[e - 1] == '/') --e;
  return name.substr(b, e - b);
}

bool ListTar(const uint8_t* data, size_t size, TarListing* out) {
  out->files.clear();
  out->errors.clear();
  out->problem.clear();
  std::unordered_map<std::string, size_t> file_at, error_at;
  auto put_file = [&](const std::string& name, TarMember m) {
    auto [it, fresh] = file_at.emplace(name, out->files.size());
    if (fresh) {
      out->files.emplace_back(name, m);
    } else {
      out->files[it->second].second = m;
    }
  };
  auto put_error = [&](const std::string& name, std::string message) {
    auto [it, fresh] = error_at.emplace(name, out->errors.size());
    if (fresh) {
      out->errors.emplace_back(name, std::move(message));
    } else {
      out->errors[it->second].second = std::move(message);
    }
  };

  std::string long_name, long_link;
  Pax pax;
  uint64_t pos = 0, header = 0;
  bool ended = false;  // at the end-of-archive (zero) block
  while (size >= kBlock && pos <= size - kBlock) {
    const uint8_t* h = data + pos;
    bool zero = true;
    for (size_t i = 0; i < kBlock && zero; ++i) zero = h[i] == 0;
    if (zero) {
      ended = true;
      break;
    }
    header = pos;
    uint64_t stored, member_size;
    if (!Number(h + 148, 8, &stored)) return false;
    uint64_t sum = 256;
    for (size_t i = 0; i < 148; ++i) sum += h[i];
    for (size_t i = 156; i < kBlock; ++i) sum += h[i];
    if (stored != sum) return false;  // a bad checksum: a full tar reader says what is wrong
    if (!Number(h + 124, 12, &member_size)) return false;
    const uint8_t kind = h[156];
    const uint64_t at = pos + kBlock;
    pos = After(at, member_size, size);
    if (kind == 'L' || kind == 'K' || kind == 'x') {
      if (member_size > size - at) return false;  // its text lies past the end
      const uint8_t* body = data + at;
      const size_t n = static_cast<size_t>(member_size);
      if (kind == 'L') {
        long_name = Text(body, n);
      } else if (kind == 'K') {
        long_link = Text(body, n);
      } else if (!ParsePax(body, n, &pax)) {
        return false;
      }
      continue;
    }
    if (kind == 'g') continue;  // global pax records: nothing a listing needs
    std::string name = Text(h, 100);
    if (std::memcmp(h + 257, "ustar\0", 6) == 0 && h[345] != 0) {
      name = Text(h + 345, 155) + "/" + name;
    }
    std::string link = Text(h + 157, 100);
    if (pax.has_path) {
      name = pax.path;
    } else if (!long_name.empty()) {
      name = long_name;
    }
    if (pax.has_linkpath) {
      link = pax.linkpath;
    } else if (!long_link.empty()) {
      link = long_link;
    }
    if (pax.has_size) {
      if (!Decimal(reinterpret_cast<const uint8_t*>(pax.size.data()), pax.size.size(),
                   kMaxNumber, &member_size)) {
        return false;
      }
      pos = After(at, member_size, size);
    }
    long_name.clear();
    long_link.clear();
    pax = Pax();
    name = NormalizeTarName(std::move(name));
    if (name.empty() || name == "." || kind == '5') continue;
    if (kind == '0' || kind == 0 || kind == '7') {
      put_file(name, TarMember{at, member_size});
    } else if (kind == '1') {
      auto it = file_at.find(NormalizeTarName(link));
      if (it != file_at.end()) {
        put_file(name, out->files[it->second].second);
      } else {
        put_error(name, "hard link to " + link + ", which is not in the archive");
      }
    } else if (kind == '2') {
      put_error(name, "symbolic link (to " + link + ") inside the archive, not followed");
    } else if (kind == 'S') {
      put_error(name, "sparse member (GNU sparse format), not read");
    } else {
      put_error(name, "not a regular file");
    }
  }
  if (!ended && pos != size) {
    out->problem = pos < size ? "truncated tar archive: it ends at byte " + std::to_string(size) +
                                    ", inside the member header at byte " + std::to_string(pos)
                              : "truncated tar archive: it ends at byte " + std::to_string(size) +
                                    ", inside the member whose header is at byte " +
                                    std::to_string(header);
  }
  return true;
}

}  // namespace tfckpt
