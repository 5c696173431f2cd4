// libFuzzer target: the raw Snappy block decoder (tfckpt::snappy::Decompress).
//
// Input layout (fuzz_common.h Cursor; mirrored by tests/test_regressions.py):
//   u32 max_output: the caller's bound on the uncompressed size
//   rest: the compressed stream
// Checks: a success produces exactly the declared length, within max_output;
// the preamble parser agrees with Decompress. Built with the reference
// library (fuzz/build.sh does so when libsnappy-dev is installed:
// TFCKPT_FUZZ_REFERENCE_SNAPPY), it is a differential target too: whatever
// tfckpt decodes, the reference decodes to the same bytes, and whatever the
// reference accepts within max_output, tfckpt accepts.
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_common.h"
#include "snappy.h"

#ifdef TFCKPT_FUZZ_REFERENCE_SNAPPY
#include <snappy-c.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Cursor in(data, size);
  const size_t max_output = in.U32();
  const size_t n = in.remaining();
  // An exactly sized copy, so that ASan sees any read past the stream.
  std::unique_ptr<uint8_t[]> stream(new uint8_t[n ? n : 1]);
  if (n) std::memcpy(stream.get(), in.pos(), n);

  std::string out, error;
  const bool ok = tfckpt::snappy::Decompress(stream.get(), n, max_output, &out, &error);
  uint64_t declared = 0;
  const bool has_length = tfckpt::snappy::UncompressedLength(stream.get(), n, &declared);
  if (ok) {
    FUZZ_CHECK(has_length);
    FUZZ_CHECK(out.size() == declared);
    FUZZ_CHECK(out.size() <= max_output);
  } else {
    FUZZ_CHECK(out.empty());
    FUZZ_CHECK(!error.empty());
  }

#ifdef TFCKPT_FUZZ_REFERENCE_SNAPPY
  const char* src = reinterpret_cast<const char*>(stream.get());
  size_t ref_len = 0;
  bool ref_ok = snappy_uncompressed_length(src, n, &ref_len) == SNAPPY_OK &&
                snappy_validate_compressed_buffer(src, n) == SNAPPY_OK;
  if (ok) {
    FUZZ_CHECK(ref_ok);
    FUZZ_CHECK(ref_len == out.size());
  }
  if (ref_ok && ref_len <= max_output) {
    std::string ref(ref_len, '\0');
    size_t got = ref_len;
    FUZZ_CHECK(snappy_uncompress(src, n, ref.data(), &got) == SNAPPY_OK && got == ref_len);
    FUZZ_CHECK(ok);
    FUZZ_CHECK(out == ref);
  }
#endif
  return 0;
}
