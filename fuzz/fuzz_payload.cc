// libFuzzer target: the data-shard payload decoders DecodeStrings (DT_STRING,
// FORMAT.md 5.3) and DecodeVariants (DT_VARIANT, 5.4).
//
// Input layout (fuzz_common.h Cursor; mirrored by tests/test_regressions.py):
//   u8  flags: bit 0 variants (else strings), bit 1 swap_lengths (strings)
//   u32 n: the element count (taken modulo 2^20 when bit 2 is clear, so
//       small counts dominate; as is when set, to reach the size checks)
//   rest: the payload, copied into a buffer of exactly its size
// Each payload is decoded with verify on and off. Whatever the input: every
// element lies inside the payload; a payload that decodes with verify
// decodes identically without; the strings fill the payload after their
// lengths and checksum.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bundle.h"
#include "errors.h"
#include "fuzz_common.h"

namespace {

struct Result {
  bool ok = false;
  uint32_t crc = 0;
  std::vector<std::string_view> items;
};

Result Run(std::string_view payload, uint64_t n, bool variants, bool swap, bool verify) {
  Result r;
  try {
    r.crc = variants ? tfckpt::DecodeVariants(payload, n, verify, "fuzz/key", &r.items)
                     : tfckpt::DecodeStrings(payload, n, swap, verify, "fuzz/key", &r.items);
    r.ok = true;
  } catch (const tfckpt::Error& e) {
    if (!verify) FUZZ_CHECK(e.kind() != tfckpt::ErrorKind::kChecksum);
    r.items.clear();
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Cursor in(data, size);
  const uint8_t flags = in.U8();
  uint64_t n = in.U32();
  if (!(flags & 4)) n %= (1u << 20);
  const bool variants = flags & 1, swap = flags & 2;
  const size_t len = in.remaining();
  std::unique_ptr<char[]> buf(new char[len ? len : 1]);
  if (len) std::memcpy(buf.get(), in.pos(), len);
  std::string_view payload(buf.get(), len);

  Result checked = Run(payload, n, variants, swap, true);
  Result unchecked = Run(payload, n, variants, swap, false);
  for (const Result* r : {&checked, &unchecked}) {
    if (!r->ok) continue;
    FUZZ_CHECK(r->items.size() == n);
    for (std::string_view v : r->items) {
      FUZZ_CHECK(v.data() >= payload.data() && v.size() <= len &&
                 static_cast<size_t>(v.data() - payload.data()) <= len - v.size());
      fuzz::Touch(v);
    }
  }
  if (checked.ok) {
    FUZZ_CHECK(unchecked.ok);
    FUZZ_CHECK(unchecked.items.size() == checked.items.size());
    for (size_t i = 0; i < checked.items.size(); ++i) {
      FUZZ_CHECK(checked.items[i].data() == unchecked.items[i].data());
      FUZZ_CHECK(checked.items[i].size() == unchecked.items[i].size());
    }
  }
  if (unchecked.ok && !variants) {
    // The strings are contiguous and end the payload.
    size_t total = 0;
    for (std::string_view v : unchecked.items) total += v.size();
    FUZZ_CHECK(total + 4 + n <= len);
    if (n) FUZZ_CHECK(unchecked.items.back().data() + unchecked.items.back().size() ==
                      payload.data() + len);
  }
  if (unchecked.ok && variants) {
    FUZZ_CHECK(n <= len / 5);
  }
  return 0;
}
