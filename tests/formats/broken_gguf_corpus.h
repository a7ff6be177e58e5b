// A corpus of hostile GGUF files made from one valid file (stories260K.gguf): truncations, wrong
// magic and version, absurd counts, lengths and dimensions, bad tensor offsets, invalid UTF-8,
// unknown types, duplicates. Every variant is one our reader must reject with qb::Error. Shared by
// broken_files_test.cpp (library) and tests/cli/broken_files_cli_test.cpp (the CLI's error line).
//
// Fields are located by walking the valid file's layout here, independently of the reader under test.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace qb::test {

// Byte positions of the fields of a valid little-endian GGUF v2/v3 file.
struct GgufLayout {
  struct Kv { size_t key_len_pos, key_pos; uint64_t key_len; size_t type_pos; uint32_t type; size_t value_pos;
              size_t array_len_pos = 0; size_t first_item_pos = 0; };
  struct Ti { size_t name_len_pos, name_pos; uint64_t name_len; size_t n_dims_pos, dims_pos, type_pos, offset_pos;
              uint64_t offset; };
  std::vector<Kv> kvs;
  std::vector<Ti> tis;
  size_t end_of_infos = 0;

  static uint64_t u64(const std::vector<uint8_t>& b, size_t p) { uint64_t v; std::memcpy(&v, &b.at(p + 7) - 7, 8); return v; }
  static uint32_t u32(const std::vector<uint8_t>& b, size_t p) { uint32_t v; std::memcpy(&v, &b.at(p + 3) - 3, 4); return v; }

  explicit GgufLayout(const std::vector<uint8_t>& b) {
    const uint64_t n_tensors = u64(b, 8), n_kv = u64(b, 16);
    size_t p = 24;
    for (uint64_t i = 0; i < n_kv; ++i) {
      Kv kv{};
      kv.key_len_pos = p;
      kv.key_len = u64(b, p);
      kv.key_pos = p + 8;
      p = kv.key_pos + kv.key_len;
      kv.type_pos = p;
      kv.type = u32(b, p);
      kv.value_pos = p + 4;
      p = skip_value(b, kv.value_pos, kv.type, &kv);
      kvs.push_back(kv);
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Ti ti{};
      ti.name_len_pos = p;
      ti.name_len = u64(b, p);
      ti.name_pos = p + 8;
      ti.n_dims_pos = ti.name_pos + ti.name_len;
      const uint32_t n_dims = u32(b, ti.n_dims_pos);
      ti.dims_pos = ti.n_dims_pos + 4;
      ti.type_pos = ti.dims_pos + 8 * n_dims;
      ti.offset_pos = ti.type_pos + 4;
      ti.offset = u64(b, ti.offset_pos);
      p = ti.offset_pos + 8;
      tis.push_back(ti);
    }
    end_of_infos = p;
  }

  const Kv& kv(const std::string& key, const std::vector<uint8_t>& b) const {
    for (const auto& k : kvs)
      if (std::string(reinterpret_cast<const char*>(&b[k.key_pos]), k.key_len) == key) return k;
    throw std::runtime_error("corpus: no key " + key);
  }

 private:
  static size_t skip_value(const std::vector<uint8_t>& b, size_t p, uint32_t type, Kv* kv) {
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) return p + 8 + u64(b, p);
    if (type == 9) {
      const uint32_t et = u32(b, p);
      const uint64_t n = u64(b, p + 4);
      if (kv) {
        kv->array_len_pos = p + 4;
        kv->first_item_pos = p + 12;
      }
      p += 12;
      for (uint64_t i = 0; i < n; ++i) p = skip_value(b, p, et, nullptr);
      return p;
    }
    return p + sizes[type];
  }
};

struct BrokenFile {
  std::string name;  // what was broken, also usable as a file name
  std::vector<uint8_t> bytes;
};

inline void put_u32(std::vector<uint8_t>& b, size_t p, uint32_t v) { std::memcpy(&b.at(p + 3) - 3, &v, 4); }
inline void put_u64(std::vector<uint8_t>& b, size_t p, uint64_t v) { std::memcpy(&b.at(p + 7) - 7, &v, 8); }

// Every targeted variant of `valid` (truncations are made separately by the tests: there are many).
inline std::vector<BrokenFile> broken_gguf_variants(const std::vector<uint8_t>& valid) {
  const GgufLayout L(valid);
  std::vector<BrokenFile> out;
  const auto variant = [&](std::string name, auto&& edit) {
    auto b = valid;
    edit(b);
    out.push_back({std::move(name), std::move(b)});
  };
  const auto& tokens = L.kv("tokenizer.ggml.tokens", valid);
  const auto& arch = L.kv("general.architecture", valid);
  const auto& t0 = L.tis.at(0);
  const auto& t1 = L.tis.at(1);
  const auto& tlast = L.tis.back();
  const uint64_t data_offset = (L.end_of_infos + 31) / 32 * 32;
  const uint64_t data_size = valid.size() - data_offset;

  variant("empty_file", [](auto& b) { b.clear(); });
  variant("magic_wrong", [](auto& b) { b[3] = 'G'; });
  variant("magic_ggml", [](auto& b) { std::memcpy(b.data(), "lmgg", 4); });
  variant("version_0", [](auto& b) { put_u32(b, 4, 0); });
  variant("version_1", [](auto& b) { put_u32(b, 4, 1); });
  variant("version_99", [](auto& b) { put_u32(b, 4, 99); });
  variant("version_big_endian_3", [](auto& b) { put_u32(b, 4, 0x03000000u); });
  variant("tensor_count_absurd", [](auto& b) { put_u64(b, 8, uint64_t(1) << 40); });
  variant("tensor_count_max", [](auto& b) { put_u64(b, 8, ~uint64_t(0)); });
  variant("tensor_count_beyond_file", [](auto& b) { put_u64(b, 8, 100000); });
  variant("kv_count_absurd", [](auto& b) { put_u64(b, 16, uint64_t(1) << 40); });
  variant("kv_count_max", [](auto& b) { put_u64(b, 16, ~uint64_t(0)); });
  variant("key_length_absurd", [&](auto& b) { put_u64(b, L.kvs[0].key_len_pos, uint64_t(1) << 62); });
  variant("key_length_max", [&](auto& b) { put_u64(b, L.kvs[0].key_len_pos, ~uint64_t(0)); });
  variant("key_length_past_end", [&](auto& b) { put_u64(b, arch.key_len_pos, valid.size()); });
  variant("string_length_absurd", [&](auto& b) { put_u64(b, arch.value_pos, uint64_t(1) << 40); });
  variant("string_length_past_end", [&](auto& b) { put_u64(b, arch.value_pos, valid.size()); });
  variant("token_string_length_absurd", [&](auto& b) { put_u64(b, tokens.first_item_pos, ~uint64_t(0) - 3); });
  variant("array_length_absurd", [&](auto& b) { put_u64(b, tokens.array_len_pos, uint64_t(1) << 40); });
  variant("array_length_max", [&](auto& b) { put_u64(b, tokens.array_len_pos, ~uint64_t(0)); });
  variant("array_length_past_end", [&](auto& b) { put_u64(b, tokens.array_len_pos, uint64_t(1) << 23); });
  variant("array_elem_type_unknown", [&](auto& b) { put_u32(b, tokens.value_pos, 13); });
  variant("value_type_unknown", [&](auto& b) { put_u32(b, arch.type_pos, 13); });
  variant("value_type_max", [&](auto& b) { put_u32(b, arch.type_pos, 0xFFFFFFFFu); });
  variant("n_dims_zero", [&](auto& b) { put_u32(b, t0.n_dims_pos, 0); });
  variant("n_dims_five", [&](auto& b) { put_u32(b, t0.n_dims_pos, 5); });
  variant("n_dims_max", [&](auto& b) { put_u32(b, t0.n_dims_pos, 0xFFFFFFFFu); });
  variant("dimension_zero", [&](auto& b) { put_u64(b, t0.dims_pos, 0); });
  variant("dimension_absurd", [&](auto& b) { put_u64(b, t0.dims_pos, uint64_t(1) << 41); });
  variant("dimension_max", [&](auto& b) { put_u64(b, t0.dims_pos + 8, ~uint64_t(0)); });
  variant("dimensions_overflow_bytes", [&](auto& b) {
    put_u64(b, t0.dims_pos, uint64_t(1) << 40);
    put_u64(b, t0.dims_pos + 8, uint64_t(1) << 22);
  });
  variant("dimension_too_big_for_data", [&](auto& b) { put_u64(b, t0.dims_pos + 8, 1 << 20); });
  variant("ggml_type_unknown_99", [&](auto& b) { put_u32(b, t0.type_pos, 99); });
  variant("ggml_type_removed_4", [&](auto& b) { put_u32(b, t0.type_pos, 4); });  // Q4_2, removed from ggml
  variant("ggml_type_max", [&](auto& b) { put_u32(b, t0.type_pos, 0xFFFFFFFFu); });
  variant("ggml_type_q8_0_not_whole_blocks", [&](auto& b) { put_u32(b, t1.type_pos, 8); put_u64(b, t1.dims_pos, 63); });
  variant("tensor_offset_past_end", [&](auto& b) { put_u64(b, tlast.offset_pos, (data_size + 31) / 32 * 32); });
  variant("tensor_offset_absurd", [&](auto& b) { put_u64(b, t0.offset_pos, uint64_t(1) << 60); });
  variant("tensor_offset_wraps", [&](auto& b) { put_u64(b, tlast.offset_pos, ~uint64_t(31)); });
  variant("tensor_extent_past_end", [&](auto& b) { put_u64(b, tlast.offset_pos, tlast.offset + 32); });
  variant("tensors_overlap", [&](auto& b) { put_u64(b, t1.offset_pos, t0.offset); });
  variant("tensors_overlap_partly", [&](auto& b) { put_u64(b, t1.offset_pos, t0.offset + 64); });
  variant("tensor_offset_misaligned", [&](auto& b) { put_u64(b, t1.offset_pos, t1.offset + 4); });
  variant("key_bad_utf8", [&](auto& b) { b[arch.key_pos + 3] = 0xFF; });
  variant("key_overlong_utf8", [&](auto& b) { b[arch.key_pos] = 0xC0; b[arch.key_pos + 1] = 0xAE; });
  variant("string_value_bad_utf8", [&](auto& b) { b[arch.value_pos + 8] = 0x80; });
  variant("string_value_surrogate", [&](auto& b) {
    const uint8_t s[] = {0xED, 0xB0, 0x80};  // "lla" -> U+DC00
    std::memcpy(&b[arch.value_pos + 8], s, 3);
  });
  variant("token_bad_utf8", [&](auto& b) { b[tokens.first_item_pos + 8] = 0xFE; });
  variant("tensor_name_bad_utf8", [&](auto& b) { b[t1.name_pos] = 0xC3; b[t1.name_pos + 1] = 0x28; });
  variant("tensor_name_length_absurd", [&](auto& b) { put_u64(b, t0.name_len_pos, uint64_t(1) << 50); });
  // Duplicates: give the second of two equal-length keys (tensor names) the first one's bytes.
  for (size_t i = 0; i < L.kvs.size() && out.back().name != "duplicate_key"; ++i)
    for (size_t j = i + 1; j < L.kvs.size(); ++j)
      if (L.kvs[i].key_len == L.kvs[j].key_len) {
        variant("duplicate_key", [&](auto& b) { std::memcpy(&b[L.kvs[j].key_pos], &b[L.kvs[i].key_pos], L.kvs[i].key_len); });
        break;
      }
  for (size_t i = 0; i < L.tis.size() && out.back().name != "duplicate_tensor"; ++i)
    for (size_t j = i + 1; j < L.tis.size(); ++j)
      if (L.tis[i].name_len == L.tis[j].name_len) {
        variant("duplicate_tensor", [&](auto& b) { std::memcpy(&b[L.tis[j].name_pos], &b[L.tis[i].name_pos], L.tis[i].name_len); });
        break;
      }
  return out;
}

}  // namespace qb::test
