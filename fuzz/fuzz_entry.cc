// libFuzzer target: tfckpt::DecodeEntry over an arbitrary BundleEntryProto
// value (protobuf wire format: shape, slices, unknown fields, groups).
//
// Checks what a decoded entry promises (FORMAT.md 4.1-4.3): a valid shape of
// at most 254 non-negative dims whose element count does not overflow,
// offset/size that do not overflow, slices of the entry's rank that fit the
// shape; and that serializing the decoded entry as TensorFlow does and
// decoding it again gives the same entry.
#include <cstdint>
#include <string>

#include "bundle.h"
#include "fuzz_common.h"
#include "writer.h"

namespace {

bool SameSlices(const std::vector<tfckpt::Slice>& a, const std::vector<tfckpt::Slice>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (size_t d = 0; d < a[i].size(); ++d) {
      if (a[i][d].start != b[i][d].start || a[i][d].length != b[i][d].length) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  tfckpt::Entry e = tfckpt::DecodeEntry(value, "fuzz/key");
  if (!e.error.empty()) return 0;

  FUZZ_CHECK(e.shape.size() <= static_cast<size_t>(tfckpt::kMaxDims));
  __int128 n = 1;
  for (int64_t d : e.shape) {
    FUZZ_CHECK(d >= 0);
    n *= d;
    FUZZ_CHECK(n <= INT64_MAX);
  }
  FUZZ_CHECK(e.num_elements == static_cast<int64_t>(n));
  FUZZ_CHECK(e.offset >= 0 && e.size >= 0 && e.size <= INT64_MAX - e.offset);
  FUZZ_CHECK(e.shard_id >= 0);
  for (const tfckpt::Slice& s : e.slices) {
    FUZZ_CHECK(s.size() == e.shape.size());
    for (size_t d = 0; d < s.size(); ++d) {
      const tfckpt::Extent& x = s[d];
      if (x.length == -1) {
        FUZZ_CHECK(x.start == 0);
      } else {
        FUZZ_CHECK(x.start >= 0 && x.length > 0);
        FUZZ_CHECK(x.length <= e.shape[d] - x.start);
      }
    }
  }

  std::string again = tfckpt::SerializeEntry(e.dtype, e.shape, e.shard_id, e.offset, e.size,
                                             e.crc32c, e.slices);
  tfckpt::Entry f = tfckpt::DecodeEntry(again, "fuzz/key");
  FUZZ_CHECK(f.error.empty());
  FUZZ_CHECK(f.dtype == e.dtype && f.shape == e.shape && f.shard_id == e.shard_id);
  FUZZ_CHECK(f.offset == e.offset && f.size == e.size && f.crc32c == e.crc32c);
  FUZZ_CHECK(f.num_elements == e.num_elements);
  FUZZ_CHECK(SameSlices(f.slices, e.slices));
  // TensorFlow's serializer is deterministic: a second round gives the same bytes.
  FUZZ_CHECK(tfckpt::SerializeEntry(f.dtype, f.shape, f.shard_id, f.offset, f.size, f.crc32c,
                                    f.slices) == again);
  return 0;
}
