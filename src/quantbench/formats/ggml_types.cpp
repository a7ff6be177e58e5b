#include "quantbench/formats/ggml_types.h"

#include <array>
#include <cctype>

#include "quantbench/core/error.h"

namespace qb::formats {
namespace {
constexpr std::array kTraits = {
    GgmlTypeTraits{GgmlType::F32, "f32", 1, 4},
    GgmlTypeTraits{GgmlType::F16, "f16", 1, 2},
    GgmlTypeTraits{GgmlType::Q4_0, "q4_0", 32, 18},
    GgmlTypeTraits{GgmlType::Q4_1, "q4_1", 32, 20},
    GgmlTypeTraits{GgmlType::Q5_0, "q5_0", 32, 22},
    GgmlTypeTraits{GgmlType::Q5_1, "q5_1", 32, 24},
    GgmlTypeTraits{GgmlType::Q8_0, "q8_0", 32, 34},
    GgmlTypeTraits{GgmlType::Q8_1, "q8_1", 32, 36},
    GgmlTypeTraits{GgmlType::Q2_K, "q2_K", 256, 84},
    GgmlTypeTraits{GgmlType::Q3_K, "q3_K", 256, 110},
    GgmlTypeTraits{GgmlType::Q4_K, "q4_K", 256, 144},
    GgmlTypeTraits{GgmlType::Q5_K, "q5_K", 256, 176},
    GgmlTypeTraits{GgmlType::Q6_K, "q6_K", 256, 210},
    GgmlTypeTraits{GgmlType::Q8_K, "q8_K", 256, 292},
    GgmlTypeTraits{GgmlType::IQ2_XXS, "iq2_xxs", 256, 66},
    GgmlTypeTraits{GgmlType::IQ2_XS, "iq2_xs", 256, 74},
    GgmlTypeTraits{GgmlType::IQ3_XXS, "iq3_xxs", 256, 98},
    GgmlTypeTraits{GgmlType::IQ1_S, "iq1_s", 256, 50},
    GgmlTypeTraits{GgmlType::IQ4_NL, "iq4_nl", 32, 18},
    GgmlTypeTraits{GgmlType::IQ3_S, "iq3_s", 256, 110},
    GgmlTypeTraits{GgmlType::IQ2_S, "iq2_s", 256, 82},
    GgmlTypeTraits{GgmlType::IQ4_XS, "iq4_xs", 256, 136},
    GgmlTypeTraits{GgmlType::I8, "i8", 1, 1},
    GgmlTypeTraits{GgmlType::I16, "i16", 1, 2},
    GgmlTypeTraits{GgmlType::I32, "i32", 1, 4},
    GgmlTypeTraits{GgmlType::I64, "i64", 1, 8},
    GgmlTypeTraits{GgmlType::F64, "f64", 1, 8},
    GgmlTypeTraits{GgmlType::IQ1_M, "iq1_m", 256, 56},
    GgmlTypeTraits{GgmlType::BF16, "bf16", 1, 2},
    GgmlTypeTraits{GgmlType::TQ1_0, "tq1_0", 256, 54},
    GgmlTypeTraits{GgmlType::TQ2_0, "tq2_0", 256, 66},
};
}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id) {
  for (const auto& t : kTraits)
    if (uint32_t(t.type) == id) return t;
  return std::nullopt;
}

const GgmlTypeTraits& ggml_traits(GgmlType type) {
  for (const auto& t : kTraits)
    if (t.type == type) return t;
  fail("unknown ggml type id {}", uint32_t(type));
}

std::string_view ggml_type_name(GgmlType t) { return ggml_traits(t).name; }

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const auto& t : kTraits) {
    if (t.name.size() != name.size()) continue;
    bool eq = true;
    for (size_t i = 0; i < name.size() && eq; ++i)
      eq = std::tolower(static_cast<unsigned char>(t.name[i])) == std::tolower(static_cast<unsigned char>(name[i]));
    if (eq) return t.type;
  }
  return std::nullopt;
}

size_t ggml_row_bytes(GgmlType type, int64_t n) {
  const auto& t = ggml_traits(type);
  QB_CHECK(n >= 0 && n % t.block_size == 0, "row of {} elements is not a multiple of {}'s block size {}", n,
           t.name, t.block_size);
  return size_t(n / t.block_size) * t.block_bytes;
}

}  // namespace qb::formats
