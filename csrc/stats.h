// Streaming statistics of a tensor payload: counts of NaN, +Inf, -Inf and zeros, and the
// min, max, mean and spread of the finite values, read straight from the stored bytes of
// every numeric dtype (no decoded copy). Accumulated in float64, block by block (a block's
// mean and squared deviations, merged by Chan's formula), so float16 sums and float32
// squares cannot overflow and the variance does not cancel away.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tfckpt {

struct Stats {
  uint64_t count = 0;   // elements seen
  uint64_t nan = 0;
  uint64_t posinf = 0;
  uint64_t neginf = 0;
  uint64_t zeros = 0;   // finite values equal to zero (-0.0 included)
  double min = 0;       // over the finite values; meaningless while finite() == 0
  double max = 0;
  double mean = 0;
  double m2 = 0;        // sum of squared deviations from the mean

  uint64_t finite() const { return count - nan - posinf - neginf; }
  // Adds another run of values (Chan, Golub and LeVeque's pairwise update).
  void Merge(const Stats& other);
};

// Whether values of DataType `dtype` can be summarized: every fixed-size numeric type (bool
// as 0/1, quantized types as their integer base, complex numbers by their modulus).
bool HasStats(int32_t dtype);

// Accumulates the `size / itemsize` elements of `dtype` at `data` into `out`, byte-swapping
// each element (per component for complex types) when `swap`. Throws an InvalidArgument
// Error when the dtype has no statistics or `size` is not a whole number of elements.
void AccumulateStats(int32_t dtype, const uint8_t* data, size_t size, bool swap, Stats* out);

// The value of one byte of a one-byte dtype (int8 ... float8, int4, float4): NaN and
// infinities where the layout has them. Exposed for tests of the bit layouts.
double ByteValue(int32_t dtype, uint8_t byte);

}  // namespace tfckpt
