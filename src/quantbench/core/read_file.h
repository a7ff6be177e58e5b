// Whole-file reads for small inputs (tokenizer.json, task data): the file's bytes, decompressed when it is
// gzip. zlib's gzread passes a plain file through unchanged, so callers need not know which they have.
#pragma once
#include <string>

namespace qb {

// Throws qb::Error naming the path when it cannot be opened or its gzip stream is corrupt.
std::string read_file_maybe_gz(const std::string& path);

}  // namespace qb
