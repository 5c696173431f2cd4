// libFuzzer target: tfckpt::TableBuilder then tfckpt::Table. A table built
// from fuzzer-chosen keys and values, with a fuzzer-chosen block size and
// restart interval, must parse back to exactly the same entries. The index
// separator rules (FORMAT.md 2.7) are checked on every pair of adjacent keys.
//
// Input layout (fuzz_common.h Cursor; mirrored by tests/test_regressions.py):
//   u8  flags: bit 0 TensorFlow's block size (262144) instead of the next u16
//   u16 block size - 1 (so 1..65536)
//   u8  restart interval - 1 (so 1..256)
//   then pairs until the input ends: key = Bytes(), value = Bytes(wide = bit 1 of flags)
// Keys are sorted and duplicates dropped (the first value wins) before building.
#include <algorithm>
#include <map>
#include <string>

#include "errors.h"
#include "fuzz_common.h"
#include "table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Cursor in(data, size);
  const uint8_t flags = in.U8();
  size_t block_size = static_cast<size_t>(in.U16()) + 1;
  if (flags & 1) block_size = 262144;
  const int interval = static_cast<int>(in.U8()) + 1;
  std::map<std::string, std::string> kv;
  while (in.remaining() > 0) {
    std::string k = in.Bytes();
    std::string v = in.Bytes(flags & 2);
    kv.emplace(std::move(k), std::move(v));
  }

  tfckpt::TableBuilder builder(block_size, interval);
  for (const auto& item : kv) builder.Add(item.first, item.second);
  const std::string file = builder.Finish();

  try {
    tfckpt::Table table(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "roundtrip");
    const auto& entries = table.entries();
    FUZZ_CHECK(entries.size() == kv.size());
    size_t i = 0;
    for (const auto& item : kv) {
      FUZZ_CHECK(entries[i].key == item.first);
      FUZZ_CHECK(entries[i].value == item.second);
      ++i;
    }
    FUZZ_CHECK(table.stats().snappy_blocks == 0);
    if (kv.empty()) FUZZ_CHECK(table.stats().data_blocks == 0);
  } catch (const tfckpt::Error& e) {
    std::fprintf(stderr, "a built table does not parse: %s\n", e.what());
    FUZZ_CHECK(false);
  }

  // Separators: start <= sep < limit for start < limit; successor >= key and,
  // unless the key is all 0xff, greater than every key it prefixes.
  const std::string* prev = nullptr;
  for (const auto& item : kv) {
    std::string succ = item.first;
    tfckpt::FindShortSuccessor(&succ);
    FUZZ_CHECK(succ >= item.first);
    FUZZ_CHECK(succ.size() <= item.first.size());
    if (prev) {
      std::string sep = *prev;
      tfckpt::FindShortestSeparator(&sep, item.first);
      FUZZ_CHECK(*prev <= sep && sep < item.first);
    }
    prev = &item.first;
  }
  return 0;
}
