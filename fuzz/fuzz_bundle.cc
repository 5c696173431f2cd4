// libFuzzer target: tfckpt::Bundle over arbitrary bytes: the table, the
// header entry, every BundleEntryProto, and the hidden slice keys found by
// re-encoding each partitioned entry's slices.
//
// Input: the bytes of a .index file (seeds are real ones). As in fuzz_table,
// a checksum failure is retried once with fixed block CRCs.
#include <string>
#include <string_view>
#include <vector>

#include "bundle.h"
#include "errors.h"
#include "fuzz_common.h"

namespace {

void Check(const uint8_t* data, size_t size) {
  tfckpt::Bundle bundle(data, size, "fuzz.index");
  const tfckpt::Header& h = bundle.header();
  (void)h;
  size_t hidden = 0;
  for (size_t i = 0; i < bundle.size(); ++i) {
    std::string_view key = bundle.key(i);
    FUZZ_CHECK(!key.empty());  // only the header has the empty key
    FUZZ_CHECK(bundle.Find(key) == static_cast<ptrdiff_t>(i));
    fuzz::Touch(bundle.raw_value(i));
    const tfckpt::Entry& e = bundle.entry(i);
    if (bundle.hidden(i)) {
      ++hidden;
      // A hidden key is a slice key: it decodes, and names a listed entry.
      std::string name;
      tfckpt::Slice slice;
      FUZZ_CHECK(tfckpt::DecodeTensorNameSlice(key, &name, &slice));
    }
    if (!e.error.empty()) continue;
    for (const tfckpt::Slice& s : e.slices) {
      ptrdiff_t j = bundle.Find(tfckpt::EncodeTensorNameSlice(key, s));
      if (j >= 0) FUZZ_CHECK(bundle.hidden(static_cast<size_t>(j)));
    }
  }
  FUZZ_CHECK(hidden <= bundle.size());
  FUZZ_CHECK(bundle.Find("") == -1);
  // The hidden set is exactly what encoding every slice of every entry and looking the
  // whole key up gives (Bundle finds it by prefix, then suffix).
  std::vector<bool> naive(bundle.size(), false);
  for (size_t i = 0; i < bundle.size(); ++i) {
    for (const tfckpt::Slice& s : bundle.entry(i).slices) {
      ptrdiff_t j = bundle.Find(tfckpt::EncodeTensorNameSlice(bundle.key(i), s));
      if (j >= 0) naive[static_cast<size_t>(j)] = true;
    }
  }
  for (size_t i = 0; i < bundle.size(); ++i) FUZZ_CHECK(naive[i] == bundle.hidden(i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::CheckTableInput(Check, data, size);
}
