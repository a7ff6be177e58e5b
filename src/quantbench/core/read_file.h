// Whole-file reads for small inputs (configs, texts, task data, tokenizer.json). read_file_maybe_gz
// decompresses gzip; zlib's gzread passes a plain file through unchanged, so callers need not know which
// they have.
#pragma once
#include <string>
#include <string_view>

namespace qb {

// The file's bytes. Errors: "PATH: cannot open[ WHAT]" and "PATH: read failed", one line each.
std::string read_file(const std::string& path, std::string_view what = "");

// Throws qb::Error naming the path when it cannot be opened or its gzip stream is corrupt.
std::string read_file_maybe_gz(const std::string& path);

}  // namespace qb
