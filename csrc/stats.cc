// Streaming statistics over a payload (see stats.h). Every dtype is decoded by its bit layout
// into float64 one block at a time; the block is then reduced with several independent
// accumulators so the additions do not wait on each other.
#include "stats.h"

// The vector types below are passed only between inline functions of this file.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "bundle.h"
#include "errors.h"

namespace tfckpt {

namespace {

constexpr size_t kBlock = 1024;

// x86-64 with GCC on Linux: the block loops are also built for AVX2 and picked at run time
// (as CRC32C's hardware path is); elsewhere they are built for the baseline target.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define TFCKPT_STATS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TFCKPT_STATS_CLONES
#endif
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename U>
U Load(const uint8_t* p, bool swap) {
  U u;
  std::memcpy(&u, p, sizeof(U));
  if (swap) {
    if constexpr (sizeof(U) == 2) u = static_cast<U>(__builtin_bswap16(u));
    if constexpr (sizeof(U) == 4) u = static_cast<U>(__builtin_bswap32(u));
    if constexpr (sizeof(U) == 8) u = static_cast<U>(__builtin_bswap64(u));
  }
  return u;
}

template <typename T, typename U>
T BitCast(U u) {
  static_assert(sizeof(T) == sizeof(U));
  T t;
  std::memcpy(&t, &u, sizeof(T));
  return t;
}

// A small float of `ebits` exponent and `mbits` mantissa bits (the sign above them).
enum class Special { kIeee, kFn, kFnuz, kNone };

double SmallFloat(uint32_t bits, int ebits, int mbits, int bias, Special special) {
  const uint32_t emask = (1u << ebits) - 1, mmask = (1u << mbits) - 1;
  const bool negative = (bits >> (ebits + mbits)) & 1;
  const uint32_t e = (bits >> mbits) & emask, m = bits & mmask;
  if (special == Special::kFnuz && negative && e == 0 && m == 0) return kNaN;
  if (special == Special::kIeee && e == emask) return m ? kNaN : (negative ? -kInf : kInf);
  if (special == Special::kFn && e == emask && m == mmask) return kNaN;
  double v = e == 0 ? std::ldexp(static_cast<double>(m), 1 - bias - mbits)
                    : std::ldexp(static_cast<double>(m | (1u << mbits)), static_cast<int>(e) - bias - mbits);
  return negative ? -v : v;
}

double ByteValueUncached(int32_t dtype, uint8_t b) {
  switch (dtype) {
    case 4: case 12: return b;                                  // uint8, quint8
    case 6: case 11: return static_cast<int8_t>(b);             // int8, qint8
    case 10: return b != 0 ? 1.0 : 0.0;                         // bool
    case 29: return static_cast<double>((b & 0xf) >= 8 ? (b & 0xf) - 16 : (b & 0xf));  // int4
    case 30: return b & 0xf;                                    // uint4
    case 31: return static_cast<double>((b & 0x3) >= 2 ? (b & 0x3) - 4 : (b & 0x3));   // int2
    case 32: return b & 0x3;                                    // uint2
    case 24: return SmallFloat(b, 5, 2, 15, Special::kIeee);    // float8_e5m2
    case 25: return SmallFloat(b, 4, 3, 7, Special::kFn);       // float8_e4m3fn
    case 26: return SmallFloat(b, 4, 3, 8, Special::kFnuz);     // float8_e4m3fnuz
    case 27: return SmallFloat(b, 4, 3, 11, Special::kFnuz);    // float8_e4m3b11fnuz
    case 28: return SmallFloat(b, 5, 2, 16, Special::kFnuz);    // float8_e5m2fnuz
    case 33: return SmallFloat(b & 0xf, 2, 1, 1, Special::kNone);  // float4_e2m1fn
    default: return kNaN;
  }
}

using ByteTable = std::array<double, 256>;

const ByteTable& TableOf(int32_t dtype) {
  static const auto* tables = [] {
    auto* t = new std::array<ByteTable, 34>();
    for (int32_t dt = 0; dt < 34; ++dt) {
      for (int b = 0; b < 256; ++b) (*t)[dt][b] = ByteValueUncached(dt, static_cast<uint8_t>(b));
    }
    return t;
  }();
  return (*tables)[dtype];
}

// The slow path of a block holding NaN or infinities: counts them and packs the finite
// values to the front; returns how many are finite.
size_t CountSpecials(double* v, size_t n, Stats* b) {
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = v[i];
    if (x != x) ++b->nan;
    else if (x == kInf) ++b->posinf;
    else if (x == -kInf) ++b->neginf;
    else v[k++] = x;
  }
  return k;
}

// Reduces one block of decoded values into `out`: a first pass for the sum, extremes,
// zeros and whether every value is finite, a second for the squared deviations from the
// block's mean. The passes run on vectors of doubles (GCC/Clang vector extensions: SSE2
// pairs on any x86-64, AVX2 where the clone for it runs), two vectors of accumulators each.
typedef double VD __attribute__((vector_size(32)));
typedef int64_t VI __attribute__((vector_size(32)));
constexpr size_t kLanes = sizeof(VD) / sizeof(double);

inline VD LoadV(const double* p) {
  VD x;
  std::memcpy(&x, p, sizeof(VD));
  return x;
}
inline VD Select(VI mask, VD a, VD b) {  // mask ? a : b, lane by lane
#if defined(__GNUC__) && !defined(__clang__)
  return mask ? a : b;  // one blend (or min/max) instruction
#else
  return reinterpret_cast<VD>((reinterpret_cast<VI>(a) & mask) | (reinterpret_cast<VI>(b) & ~mask));
#endif
}
inline double Sum(VD v) {
  double t = 0;
  for (size_t j = 0; j < kLanes; ++j) t += v[j];
  return t;
}

TFCKPT_STATS_CLONES void ReduceBlock(double* v, size_t n, Stats* out) {
  Stats b;
  b.count = n;
  for (bool retried = false;; retried = true) {
    const VD first = VD{} + (n ? v[0] : 0.0);
    VD s0{}, s1{}, c0{}, c1{}, lo0 = first, lo1 = first, hi0 = first, hi1 = first;
    VI z0{}, z1{};
    size_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const VD x0 = LoadV(v + i), x1 = LoadV(v + i + kLanes);
      // Finite values have x - x == 0; NaN and infinities give NaN, which the sum keeps.
      c0 += x0 - x0;
      c1 += x1 - x1;
      s0 += x0;
      s1 += x1;
      z0 -= (x0 == 0);  // a true comparison is -1
      z1 -= (x1 == 0);
      lo0 = Select(x0 < lo0, x0, lo0);
      lo1 = Select(x1 < lo1, x1, lo1);
      hi0 = Select(x0 > hi0, x0, hi0);
      hi1 = Select(x1 > hi1, x1, hi1);
    }
    double check = Sum(c0 + c1), sum = Sum(s0 + s1);
    uint64_t zeros = 0;
    double lo = first[0], hi = first[0];
    for (size_t j = 0; j < kLanes; ++j) {
      zeros += static_cast<uint64_t>(z0[j] + z1[j]);
      lo = std::min(lo, std::min(lo0[j], lo1[j]));
      hi = std::max(hi, std::max(hi0[j], hi1[j]));
    }
    for (; i < n; ++i) {
      const double x = v[i];
      check += x - x;
      sum += x;
      zeros += x == 0;
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
    }
    if (check != 0 && !retried) {
      n = CountSpecials(v, n, &b);  // then once more over the finite values
      continue;
    }
    if (n == 0) break;
    b.zeros = zeros;
    b.min = lo;
    b.max = hi;
    b.mean = sum / static_cast<double>(n);
    const VD mean = VD{} + b.mean;
    VD q0{}, q1{};
    i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const VD d0 = LoadV(v + i) - mean, d1 = LoadV(v + i + kLanes) - mean;
      q0 += d0 * d0;
      q1 += d1 * d1;
    }
    double m2 = Sum(q0 + q1);
    for (; i < n; ++i) {
      const double d = v[i] - b.mean;
      m2 += d * d;
    }
    b.m2 = m2;
    break;
  }
  out->Merge(b);
}

// Decodes the block's elements (copied to `raw`, aligned, byte-swapped if asked) to
// float64 in `v`, one simple loop per layout so it vectorizes too.
template <typename U, typename Convert>
TFCKPT_STATS_CLONES void Decode(const U* raw, size_t m, Convert convert, double* v) {
  for (size_t i = 0; i < m; ++i) v[i] = convert(raw[i]);
}

template <typename U, typename Convert>
void Run(const uint8_t* data, size_t n, bool swap, Convert convert, Stats* out) {
  alignas(64) U raw[kBlock];
  alignas(64) double block[kBlock];
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    std::memcpy(raw, data + start * sizeof(U), m * sizeof(U));
    if (swap && sizeof(U) > 1) {
      for (size_t i = 0; i < m; ++i) raw[i] = Load<U>(reinterpret_cast<uint8_t*>(raw + i), true);
    }
    Decode(raw, m, convert, block);
    ReduceBlock(block, m, out);
  }
}

// float16 -> float32, exactly and without a branch per element: the exponent and mantissa
// shifted into place are a float 2^112 too small (subnormals included), all-ones exponents
// are infinities and NaN.
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  const float scaled = BitCast<float>(em << 13) * 5.192296858534828e+33f;  // 2^112
  const uint32_t special = (em << 13) | 0x7f800000u;
  const uint32_t mask = 0u - static_cast<uint32_t>(em >= 0x7c00u);  // no branch: vectorizes
  return BitCast<float>((special & mask) | (BitCast<uint32_t>(scaled) & ~mask) | sign);
}

// |z| as C99 hypot (and numpy's abs) define it: infinite if a part is, even beside a NaN.
double Modulus(double re, double im) { return std::hypot(re, im); }

}  // namespace

void Stats::Merge(const Stats& o) {
  const uint64_t fa = finite(), fb = o.finite();
  count += o.count;
  nan += o.nan;
  posinf += o.posinf;
  neginf += o.neginf;
  zeros += o.zeros;
  if (fb == 0) return;
  if (fa == 0) {
    min = o.min;
    max = o.max;
    mean = o.mean;
    m2 = o.m2;
    return;
  }
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  const double na = static_cast<double>(fa), nb = static_cast<double>(fb), n = na + nb;
  const double delta = o.mean - mean;
  // The weighted sum of the two means only where delta overflows (values near the float64
  // limits): otherwise it would round equal means.
  mean = std::isinf(delta) ? mean * (na / n) + o.mean * (nb / n) : mean + delta * (nb / n);
  m2 += o.m2 + delta * delta * (na / n) * nb;
}

bool HasStats(int32_t dtype) {
  if (dtype == kDtString || dtype == kDtVariant) return false;
  return DtypeSize(dtype) > 0;
}

double ByteValue(int32_t dtype, uint8_t byte) {
  if (dtype < 0 || dtype >= 34 || DtypeSize(dtype) != 1) return kNaN;
  return TableOf(dtype)[byte];
}

void AccumulateStats(int32_t dtype, const uint8_t* data, size_t size, bool swap, Stats* out) {
  if (!HasStats(dtype)) {
    throw Error(ErrorKind::kInvalidArgument,
                "no statistics for values of DataType " + std::to_string(dtype));
  }
  const size_t itemsize = static_cast<size_t>(DtypeSize(dtype));
  if (size % itemsize != 0) {
    throw Error(ErrorKind::kInvalidArgument,
                std::to_string(size) + " bytes are not a whole number of " +
                    std::to_string(itemsize) + "-byte elements");
  }
  const size_t n = size / itemsize;
  switch (dtype) {
    case 1:  // float32
      return Run<uint32_t>(data, n, swap, [](uint32_t u) {
        return static_cast<double>(BitCast<float>(u));
      }, out);
    case 2:  // float64
      return Run<uint64_t>(data, n, swap, [](uint64_t u) { return BitCast<double>(u); }, out);
    case 3: case 13:  // int32, qint32
      return Run<uint32_t>(data, n, swap, [](uint32_t u) {
        return static_cast<double>(static_cast<int32_t>(u));
      }, out);
    case 5: case 15:  // int16, qint16
      return Run<uint16_t>(data, n, swap, [](uint16_t u) {
        return static_cast<double>(static_cast<int16_t>(u));
      }, out);
    case 16: case 17:  // quint16, uint16
      return Run<uint16_t>(data, n, swap, [](uint16_t u) { return static_cast<double>(u); },
                           out);
    case 9:  // int64
      return Run<uint64_t>(data, n, swap, [](uint64_t u) {
        return static_cast<double>(static_cast<int64_t>(u));
      }, out);
    case 22:  // uint32
      return Run<uint32_t>(data, n, swap, [](uint32_t u) { return static_cast<double>(u); },
                           out);
    case 23:  // uint64
      return Run<uint64_t>(data, n, swap, [](uint64_t u) { return static_cast<double>(u); },
                           out);
    case 14:  // bfloat16: the high half of a float32
      return Run<uint16_t>(data, n, swap, [](uint16_t u) {
        return static_cast<double>(BitCast<float>(static_cast<uint32_t>(u) << 16));
      }, out);
    case 19:  // float16
      return Run<uint16_t>(data, n, swap, [](uint16_t u) {
        return static_cast<double>(HalfToFloat(u));
      }, out);
    case 8: {  // complex64, by modulus
      const size_t m = n;
      for (size_t start = 0; start < m; start += kBlock) {
        alignas(64) double block[kBlock];
        const size_t k = std::min(kBlock, m - start);
        const uint8_t* p = data + start * 8;
        for (size_t i = 0; i < k; ++i) {
          block[i] = Modulus(BitCast<float>(Load<uint32_t>(p + 8 * i, swap)),
                             BitCast<float>(Load<uint32_t>(p + 8 * i + 4, swap)));
        }
        ReduceBlock(block, k, out);
      }
      return;
    }
    case 18: {  // complex128, by modulus
      for (size_t start = 0; start < n; start += kBlock) {
        alignas(64) double block[kBlock];
        const size_t k = std::min(kBlock, n - start);
        const uint8_t* p = data + start * 16;
        for (size_t i = 0; i < k; ++i) {
          block[i] = Modulus(BitCast<double>(Load<uint64_t>(p + 16 * i, swap)),
                             BitCast<double>(Load<uint64_t>(p + 16 * i + 8, swap)));
        }
        ReduceBlock(block, k, out);
      }
      return;
    }
    default: {  // every one-byte type, through its table of 256 values
      const double* table = TableOf(dtype).data();
      return Run<uint8_t>(data, n, false, [table](uint8_t b) { return table[b]; }, out);
    }
  }
}

}  // namespace tfckpt
