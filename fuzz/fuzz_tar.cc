// libFuzzer target: the tar header listing of scans (tfckpt::ListTar).
//
// Input layout (fuzz_common.h Cursor; mirrored by tests/test_regressions.py):
//   u8 flags: bit 0 repairs the header checksum of every 512-byte block first, so that
//             mutations reach the parsing behind the checksum
//   rest: the archive
// Checks: a listing names each member once, normalized; every data offset is a whole
// number of blocks inside the archive (its size may run past a truncated end, which is
// then said); the same input lists the same way twice. The pure-Python twin
// (tfckpt/_pycore.py, tar_members) is held against this code by tests/test_tar.py.
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "tar.h"

namespace {

void FixHeaderChecksums(std::vector<uint8_t>* buf) {
  for (size_t h = 0; h + 512 <= buf->size(); h += 512) {
    uint8_t* b = buf->data() + h;
    std::memset(b + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += b[i];
    std::snprintf(reinterpret_cast<char*>(b + 148), 8, "%06o", sum & 0777777);
    b[155] = ' ';
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Cursor in(data, size);
  const uint8_t flags = in.U8();
  // An exactly sized copy, so that ASan sees any read past the archive.
  std::vector<uint8_t> archive(in.pos(), in.pos() + in.remaining());
  if (flags & 1) FixHeaderChecksums(&archive);
  std::unique_ptr<uint8_t[]> exact(new uint8_t[archive.size() ? archive.size() : 1]);
  if (!archive.empty()) std::memcpy(exact.get(), archive.data(), archive.size());

  tfckpt::TarListing listing, again;
  const bool ok = tfckpt::ListTar(exact.get(), archive.size(), &listing);
  FUZZ_CHECK(ok == tfckpt::ListTar(exact.get(), archive.size(), &again));
  if (!ok) return 0;
  std::set<std::string> names;
  for (const auto& [name, member] : listing.files) {
    FUZZ_CHECK(!name.empty() && tfckpt::NormalizeTarName(name) == name);
    FUZZ_CHECK(names.insert(name).second);
    FUZZ_CHECK(member.offset % 512 == 0 && member.offset >= 512);
    FUZZ_CHECK(member.offset <= archive.size());
    FUZZ_CHECK(member.size <= static_cast<uint64_t>(INT64_MAX));
  }
  names.clear();
  for (const auto& [name, message] : listing.errors) {
    FUZZ_CHECK(!name.empty() && tfckpt::NormalizeTarName(name) == name);
    FUZZ_CHECK(names.insert(name).second);
    FUZZ_CHECK(!message.empty());
  }
  FUZZ_CHECK(listing.problem.empty() || listing.problem.rfind("truncated tar archive", 0) == 0);
  FUZZ_CHECK(again.files == listing.files && again.errors == listing.errors &&
             again.problem == listing.problem);
  return 0;
}
