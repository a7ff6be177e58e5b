// See read_file.h.
#include "quantbench/core/read_file.h"

#include <zlib.h>

#include <fstream>
#include <sstream>

#include "quantbench/core/error.h"

namespace qb {

std::string read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open{}{}", path, what.empty() ? "" : " ", what);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("{}: read failed", path);
  return ss.str();
}

std::string read_file_maybe_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  QB_CHECK(f != nullptr, "{}: cannot open", path);
  std::string out;
  char buf[1 << 16];
  while (true) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      gzclose(f);
      fail("{}: read error (corrupt gzip?)", path);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  gzclose(f);
  return out;
}

}  // namespace qb
