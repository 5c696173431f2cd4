// CRC-32C (Castagnoli): a portable slicing-by-8 implementation and hardware
// paths (SSE4.2 on x86-64, the ARMv8 CRC32 extension on AArch64) selected once
// at run time. The build targets the architecture baseline, so the hardware
// functions are compiled with per-function target attributes and are only
// called after the CPU has been checked.
//
// Conventions: the public CRC value is the "finalised" one (initial value all
// ones, final XOR all ones). Internally every routine works on the raw shift
// register state, state = ~crc, so Extend(crc, ...) starts from ~crc and
// returns ~state.

#include "crc32c.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <unistd.h>

#if defined(__x86_64__) || defined(_M_X64)
#define TFCKPT_CRC32C_X86 1
#include <nmmintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define TFCKPT_TARGET_HW
#else
#define TFCKPT_TARGET_HW __attribute__((target("sse4.2")))
#endif

#elif defined(__aarch64__) && \
    (defined(__ARM_FEATURE_CRC32) || (defined(__linux__) && (defined(__GNUC__) || defined(__clang__))))
#define TFCKPT_CRC32C_ARM 1
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__ARM_FEATURE_CRC32)
// The whole build already targets a CPU with the CRC extension.
#include <arm_acle.h>
#define TFCKPT_TARGET_HW
#define TFCKPT_ARM_CRC32CD(c, v) __crc32cd((c), (v))
#define TFCKPT_ARM_CRC32CB(c, v) __crc32cb((c), (v))
#elif defined(__clang__)
// Older clang only declares the <arm_acle.h> CRC functions when the whole
// translation unit targets +crc, so call the builtins directly.
#define TFCKPT_TARGET_HW __attribute__((target("crc")))
#define TFCKPT_ARM_CRC32CD(c, v) __builtin_arm_crc32cd((c), (v))
#define TFCKPT_ARM_CRC32CB(c, v) __builtin_arm_crc32cb((c), (v))
#else
// GCC's <arm_acle.h> defines them under a target pragma, usable from a
// function compiled with the same target.
#include <arm_acle.h>
#define TFCKPT_TARGET_HW __attribute__((target("+crc")))
#define TFCKPT_ARM_CRC32CD(c, v) __crc32cd((c), (v))
#define TFCKPT_ARM_CRC32CB(c, v) __crc32cb((c), (v))
#endif
#endif

namespace tfckpt {
namespace crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

// ---------------------------------------------------------------------------
// Portable path: slicing-by-8.

struct SliceTables {
  uint32_t t[8][256];
};

constexpr SliceTables MakeSliceTables() {
  SliceTables s{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    s.t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      const uint32_t prev = s.t[k - 1][b];
      s.t[k][b] = (prev >> 8) ^ s.t[0][prev & 0xff];
    }
  }
  return s;
}

constexpr SliceTables kSlice = MakeSliceTables();

// Little-endian loads that are correct for any alignment and host byte order;
// compilers turn them into single loads on little-endian targets.
inline uint32_t LoadLE32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) |
         (uint32_t(p[3]) << 24);
}

uint32_t PortableState(uint32_t state, const uint8_t* p, size_t n) {
  const auto& t = kSlice.t;
  while (n >= 8) {
    const uint32_t lo = LoadLE32(p) ^ state;
    const uint32_t hi = LoadLE32(p + 4);
    state = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
            t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
            t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    state = (state >> 8) ^ t[0][(state ^ *p) & 0xff];
    ++p;
    --n;
  }
  return state;
}

uint32_t ExtendPortableImpl(uint32_t crc, const void* data, size_t n) {
  return ~PortableState(~crc, static_cast<const uint8_t*>(data), n);
}

#if defined(TFCKPT_CRC32C_X86) || defined(TFCKPT_CRC32C_ARM)
// ---------------------------------------------------------------------------
// Hardware paths. A single chain of CRC instructions is bound by their
// latency (about 3 cycles per 8 bytes), not by their throughput (8 bytes per
// cycle). So large buffers are cut into three consecutive chunks of equal
// length, each chunk gets its own independent chain (the second and third
// starting from state 0), and the three states are then combined:
//
//   state(A || B || C) = shift(shift(state(A)) ^ state(B)) ^ state(C)
//
// where shift(s) is the register state after feeding s through len(A) zero
// bytes. The raw CRC register is linear over GF(2), and feeding k zero bits
// multiplies the state polynomial by x^k modulo P, so shift is a fixed 32x32
// bit matrix. It is applied with four 256-entry tables, one per state byte.
//
// Three chunk lengths are used, largest first. Each jump to a new triple of
// chunks restarts the CPU's hardware prefetch streams, so for buffers that
// come from DRAM long chunks matter: on a Zen core, 8 KiB chunks verified a
// 256 MiB buffer at ~16 GB/s and 128 KiB chunks at ~29 GB/s (in-cache speed
// is ~33 GB/s either way). The short chunks keep medium buffers fast.

constexpr size_t kHugeChunk = 131072;  // bytes per stream, very large buffers
constexpr size_t kLongChunk = 8192;    // bytes per stream, large buffers
constexpr size_t kShortChunk = 256;    // bytes per stream, medium buffers

struct ShiftTable {
  uint32_t t[4][256];
};

// Filled by Resolve() before any hardware call can happen.
ShiftTable g_shift_huge;
ShiftTable g_shift_long;
ShiftTable g_shift_short;

// Product of two polynomials modulo P, in the reflected representation:
// bit 31 holds the coefficient of x^0, bit 0 that of x^31.
uint32_t MulModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; ++i) {
    if (a & (0x80000000u >> i)) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;  // b *= x
  }
  return product;
}

// x^(8 * nbytes) modulo P, reflected.
uint32_t XPow8N(uint64_t nbytes) {
  uint32_t result = 0x80000000u;  // x^0
  uint32_t base = 0x40000000u;    // x^1
  for (uint64_t e = 8 * nbytes; e != 0; e >>= 1) {
    if (e & 1) result = MulModP(result, base);
    base = MulModP(base, base);
  }
  return result;
}

void MakeShiftTable(size_t nbytes, ShiftTable* table) {
  const uint32_t m = XPow8N(nbytes);
  for (int k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      table->t[k][b] = MulModP(m, b << (8 * k));
    }
  }
}

inline uint32_t Shift(const ShiftTable& table, uint32_t state) {
  return table.t[0][state & 0xff] ^ table.t[1][(state >> 8) & 0xff] ^
         table.t[2][(state >> 16) & 0xff] ^ table.t[3][state >> 24];
}

inline uint64_t LoadNative64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);  // both hardware targets are little-endian
  return v;
}

#if defined(TFCKPT_CRC32C_X86)
#define TFCKPT_HW_U64(state, p) \
  static_cast<uint32_t>(_mm_crc32_u64((state), LoadNative64(p)))
#define TFCKPT_HW_U8(state, byte) _mm_crc32_u8((state), (byte))
#else
#define TFCKPT_HW_U64(state, p) TFCKPT_ARM_CRC32CD((state), LoadNative64(p))
#define TFCKPT_HW_U8(state, byte) TFCKPT_ARM_CRC32CB((state), (byte))
#endif

// Three interleaved chains over [p, p + 3 * chunk), starting from state.
// chunk must be a multiple of 32 so the unrolled loop ends exactly.
TFCKPT_TARGET_HW inline uint32_t ThreeStreams(uint32_t state,
                                              const uint8_t* p, size_t chunk,
                                              const ShiftTable& shift) {
  uint32_t s0 = state, s1 = 0, s2 = 0;
  const uint8_t* const stop = p + chunk;
  do {
    s0 = TFCKPT_HW_U64(s0, p);
    s1 = TFCKPT_HW_U64(s1, p + chunk);
    s2 = TFCKPT_HW_U64(s2, p + 2 * chunk);
    s0 = TFCKPT_HW_U64(s0, p + 8);
    s1 = TFCKPT_HW_U64(s1, p + 8 + chunk);
    s2 = TFCKPT_HW_U64(s2, p + 8 + 2 * chunk);
    s0 = TFCKPT_HW_U64(s0, p + 16);
    s1 = TFCKPT_HW_U64(s1, p + 16 + chunk);
    s2 = TFCKPT_HW_U64(s2, p + 16 + 2 * chunk);
    s0 = TFCKPT_HW_U64(s0, p + 24);
    s1 = TFCKPT_HW_U64(s1, p + 24 + chunk);
    s2 = TFCKPT_HW_U64(s2, p + 24 + 2 * chunk);
    p += 32;
  } while (p < stop);
  return Shift(shift, Shift(shift, s0) ^ s1) ^ s2;
}
static_assert(kHugeChunk % 32 == 0 && kLongChunk % 32 == 0 &&
                  kShortChunk % 32 == 0,
              "the unrolled loop consumes 32 bytes per stream per iteration");

TFCKPT_TARGET_HW uint32_t ExtendHardware(uint32_t crc, const void* data,
                                         size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  const uint8_t* const end = p + n;
  uint32_t state = ~crc;

  // Head: single bytes up to 8-byte alignment.
  while (p != end && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    state = TFCKPT_HW_U8(state, *p);
    ++p;
  }
  while (static_cast<size_t>(end - p) >= 3 * kHugeChunk) {
    state = ThreeStreams(state, p, kHugeChunk, g_shift_huge);
    p += 3 * kHugeChunk;
  }
  while (static_cast<size_t>(end - p) >= 3 * kLongChunk) {
    state = ThreeStreams(state, p, kLongChunk, g_shift_long);
    p += 3 * kLongChunk;
  }
  while (static_cast<size_t>(end - p) >= 3 * kShortChunk) {
    state = ThreeStreams(state, p, kShortChunk, g_shift_short);
    p += 3 * kShortChunk;
  }
  while (static_cast<size_t>(end - p) >= 8) {
    state = TFCKPT_HW_U64(state, p);
    p += 8;
  }
  // Tail: the last 0..7 bytes.
  while (p != end) {
    state = TFCKPT_HW_U8(state, *p);
    ++p;
  }
  return ~state;
}

#undef TFCKPT_HW_U64
#undef TFCKPT_HW_U8

bool CpuHasCrcInstructions() {
#if defined(TFCKPT_CRC32C_X86)
#if defined(_MSC_VER) && !defined(__clang__)
  int info[4];
  __cpuid(info, 1);
  return (info[2] & (1 << 20)) != 0;  // CPUID.1:ECX.SSE4_2
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
#endif
#elif defined(__ARM_FEATURE_CRC32)
  return true;
#else
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)  // arch/arm64/include/uapi/asm/hwcap.h
#endif
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#endif
}
#endif  // hardware paths

struct Dispatch {
  uint32_t (*extend)(uint32_t, const void*, size_t);
  const char* name;
};

Dispatch Resolve() {
#if defined(TFCKPT_CRC32C_X86) || defined(TFCKPT_CRC32C_ARM)
  if (CpuHasCrcInstructions()) {
    MakeShiftTable(kHugeChunk, &g_shift_huge);
    MakeShiftTable(kLongChunk, &g_shift_long);
    MakeShiftTable(kShortChunk, &g_shift_short);
#if defined(TFCKPT_CRC32C_X86)
    return Dispatch{&ExtendHardware, "sse4.2"};
#else
    return Dispatch{&ExtendHardware, "armv8-crc"};
#endif
  }
#endif
  return Dispatch{&ExtendPortableImpl, "portable"};
}

// Resolved once, on first use (thread-safe function-local static).
const Dispatch& GetDispatch() {
  static const Dispatch dispatch = Resolve();
  return dispatch;
}

}  // namespace

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  return GetDispatch().extend(crc, data, n);
}

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  return ExtendPortableImpl(crc, data, n);
}

const char* Implementation() { return GetDispatch().name; }

// -- combining, and files ------------------------------------------------------------------
// Combine multiplies crc_a by x^(8 len_b) modulo the (reflected) Castagnoli polynomial, by
// squaring an operator of x^1 in GF(2) (the method zlib's crc32_combine uses), then adds
// crc_b.
namespace {

uint32_t Gf2Times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (int i = 0; vec != 0; ++i, vec >>= 1) {
    if (vec & 1u) sum ^= mat[i];
  }
  return sum;
}

void Gf2Square(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; ++n) square[n] = Gf2Times(mat, mat[n]);
}

}  // namespace

uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  if (len_b == 0) return crc_a;
  uint32_t even[32], odd[32];
  odd[0] = 0x82F63B78u;  // the reflected polynomial: the operator of one zero bit
  for (int n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
  Gf2Square(even, odd);  // two zero bits
  Gf2Square(odd, even);  // four
  do {
    Gf2Square(even, odd);  // first pass: one zero byte
    if (len_b & 1u) crc_a = Gf2Times(even, crc_a);
    len_b >>= 1;
    if (len_b == 0) break;
    Gf2Square(odd, even);
    if (len_b & 1u) crc_a = Gf2Times(odd, crc_a);
    len_b >>= 1;
  } while (len_b != 0);
  return crc_a ^ crc_b;
}

namespace {

// One thread's part: CRC of [offset, offset + size), the bytes read and an errno.
struct Part {
  uint32_t crc = 0;
  uint64_t read = 0;
  int error = 0;
};

void ReadPart(int fd, uint64_t offset, uint64_t size, Part* part) {
  constexpr size_t kPiece = 1 << 20;
  std::vector<unsigned char> buf(static_cast<size_t>(std::min<uint64_t>(size, kPiece)));
  while (part->read < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - part->read, kPiece));
    const ssize_t n = pread(fd, buf.data(), want, static_cast<off_t>(offset + part->read));
    if (n < 0) {
      if (errno == EINTR) continue;
      part->error = errno;
      return;
    }
    if (n == 0) return;  // the file ends here
    part->crc = Extend(part->crc, buf.data(), static_cast<size_t>(n));
    part->read += static_cast<uint64_t>(n);
  }
}

}  // namespace

uint32_t FileRange(int fd, uint64_t offset, uint64_t size, int threads, uint64_t* read_bytes,
                   int* error) {
  // Below this, a second thread costs more than it saves.
  constexpr uint64_t kSplitAbove = 16ull << 20;
  const int n = size > kSplitAbove ? std::max(1, std::min(threads, 8)) : 1;
  std::vector<Part> parts(static_cast<size_t>(n));
  std::vector<uint64_t> starts(static_cast<size_t>(n) + 1);
  for (int i = 0; i <= n; ++i) starts[static_cast<size_t>(i)] = offset + size / n * i;
  starts[static_cast<size_t>(n)] = offset + size;
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) {
    pool.emplace_back(ReadPart, fd, starts[i], starts[i + 1] - starts[i], &parts[i]);
  }
  ReadPart(fd, starts[0], starts[1] - starts[0], &parts[0]);
  for (auto& t : pool) t.join();
  uint32_t crc = 0;
  uint64_t done = 0;
  *error = 0;
  for (int i = 0; i < n; ++i) {
    const Part& p = parts[static_cast<size_t>(i)];
    crc = i == 0 ? p.crc : Combine(crc, p.crc, p.read);
    done += p.read;
    if (p.error != 0) {
      *error = p.error;
      break;
    }
    if (p.read < starts[i + 1] - starts[i]) break;  // short: the file ends inside part i
  }
  *read_bytes = done;
  return crc;
}

}  // namespace crc32c
}  // namespace tfckpt
