// What forward_kernels_check's parts share (forward_check.h): the tallies and the output-target comparison.
#include <cstring>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/qgemv.h"
#include "forward_check.h"

using namespace qb::runtime::cuda;

namespace forward_check {

int g_fail = 0, g_n = 0;

void check_targets(const std::vector<float>& rows, int n, int T, bool bf, const Dev<uint16_t>* half,
                   const Dev<uint8_t>* frag, const std::string& name) {
  if (half) {
    const auto got = half->get();
    size_t bad = 0;
    for (size_t i = 0; i < rows.size(); ++i) bad += got[i] != h16(rows[i], bf);
    FCHECK(bad == 0, "%s: %zu 16-bit rows values differ from the cast f32 rows", name.c_str(), bad);
  }
  if (frag) {
    Dev<float> dr(rows);
    Dev<uint8_t> ref(frag->n, 0xff);
    pack_activations_f32(dr.p, bf, T, n, ref.p, nullptr);
    // Slots of tokens T..8*ceil(T/8)-1 are never read by qgemv (its lanes past n skip the load), so
    // producers leave them alone; every other word, padding columns included, must match.
    const auto g = frag->get(), r = ref.get();
    const int nt = (T + 7) / 8;
    size_t bad = 0;
    for (size_t w = 0; w < g.size() / 4; ++w) {
      const int lane = int((w >> 3) & 31), j = int((w >> 8) % size_t(nt)), tok = 8 * j + (lane >> 2);
      if (tok < T) bad += std::memcmp(&g[4 * w], &r[4 * w], 4) != 0;
    }
    FCHECK(bad == 0, "%s: %zu fragment words differ from pack_activations_f32 of the f32 rows", name.c_str(), bad);
  }
}

}  // namespace forward_check
