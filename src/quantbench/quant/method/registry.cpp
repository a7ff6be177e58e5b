// The built-in methods: one declaration and one registration line per method file.
#include "quantbench/quant/method/method.h"

namespace qb::quant {

void register_rtn(MethodRegistry& reg);
void register_rtn_clip(MethodRegistry& reg);
void register_imatrix(MethodRegistry& reg);
void register_gptq(MethodRegistry& reg);
void register_awq(MethodRegistry& reg);
void register_smoothquant(MethodRegistry& reg);

MethodRegistry builtin_methods() {
  MethodRegistry reg;
  register_rtn(reg);
  register_rtn_clip(reg);
  register_imatrix(reg);
  register_gptq(reg);
  register_awq(reg);
  register_smoothquant(reg);
  return reg;
}

}  // namespace qb::quant
