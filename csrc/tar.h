// Listing the members of an uncompressed tar from its headers, for scans that read
// checkpoints in place inside a tar (the mapped archive is never copied).
//
// Handles ustar (with its name prefix), GNU long names and links (types L and K) and pax
// extended headers (path, linkpath, size). Anything else unusual (a bad header checksum,
// a number that is not plain octal, a malformed pax record, a size past 2^63) makes
// ListTar return false, and the caller then reads the archive with a full tar library,
// which says what is wrong. Every length and offset is bounds-checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tfckpt {

struct TarMember {
  uint64_t offset = 0;  // of the member's data in the archive
  uint64_t size = 0;    // may reach past the end of a truncated archive
  bool operator==(const TarMember& o) const { return offset == o.offset && size == o.size; }
};

struct TarListing {
  // Member names (normalized: '\' as '/', no leading "./" or '/', no trailing '/'),
  // each name once, in the order first seen; a later member of the same name replaces
  // the value. Hard links appear with their target's data.
  std::vector<std::pair<std::string, TarMember>> files;
  // Members that cannot be read as files (links to nowhere, symbolic links, sparse
  // files, devices, ...) with the reason, in the same manner.
  std::vector<std::pair<std::string, std::string>> errors;
  // Empty, or what is wrong with the archive as a whole (it is truncated).
  std::string problem;
};

// The member name as a scan names it.
std::string NormalizeTarName(std::string name);

// Fills *out from the headers of the tar in [data, data + size); false if the archive
// needs a full tar reader (see above).
bool ListTar(const uint8_t* data, size_t size, TarListing* out);

}  // namespace tfckpt
