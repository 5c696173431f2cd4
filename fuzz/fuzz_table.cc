// libFuzzer target: tfckpt::Table over arbitrary bytes (the .index parser:
// footer, block handles, trailers and CRCs, Snappy blocks, restart arrays,
// prefix-compressed keys).
//
// Input: the bytes of a table file (seeds are real .index files). The input
// is parsed as is; when that fails on a block checksum it is parsed again with
// every reachable block CRC fixed (fuzz_common.h), so mutations behind the
// CRC check are exercised too.
#include <string>
#include <vector>

#include "errors.h"
#include "fuzz_common.h"
#include "table.h"

namespace {

void Check(const uint8_t* data, size_t size) {
  tfckpt::Table table(data, size, "fuzz.index");
  const auto& entries = table.entries();
  uint32_t acc = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    acc = fuzz::Touch(entries[i].key, acc);
    acc = fuzz::Touch(entries[i].value, acc);
    if (i > 0) FUZZ_CHECK(entries[i - 1].key < entries[i].key);
  }
  // Key bytes are bounded by the parser's expansion limit.
  size_t key_bytes = 0;
  for (const auto& e : entries) key_bytes += e.key.size();
  FUZZ_CHECK(key_bytes <= size * 32 + (1u << 20));
  FUZZ_CHECK(table.stats().snappy_blocks <= table.stats().data_blocks + 1);
  (void)acc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::CheckTableInput(Check, data, size);
}
