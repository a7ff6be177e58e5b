// bench/gpu/sass_same.py tells whether two builds of the CUDA kernels are the same machine code, kernel by kernel,
// from `cuobjdump -sass` listings; sass_same.sh runs it on two revisions to check, without a GPU, that a refactor left
// every kernel as it was (session 37). Tested here on hand-made listings in cuobjdump's format: a kernel moved to
// another file (its anonymous namespace renamed) is the same; a changed instruction or encoding, a kernel missing or
// added, or another renamed symbol is not.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../cli_run.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"

namespace qb::test {
namespace {

// One kernel as cuobjdump lists it: the function line, then each instruction with its offset and the two halves of
// its 128-bit encoding, the second on a line of its own (`first`, `second`: other halves, for every instruction).
std::string kernel(const std::string& name, const std::vector<std::string>& insns, const std::string& second = "",
                   const std::string& first = "") {
  std::string s = "\t\tFunction : " + name + "\n\t.headerflags\t@\"EF_CUDA_ACCELERATORS EF_CUDA_SM90\"\n";
  for (size_t i = 0; i < insns.size(); ++i) {
    char offset[8];
    std::snprintf(offset, sizeof offset, "%04zx", i * 16);
    s += "        /*" + std::string(offset) + "*/                   " + insns[i] +
         " ;                                  /* " + (first.empty() ? "0x00000a00ff017b82" : first) + " */\n"
         "                                                                 /* " +
         (second.empty() ? "0x000fe20000000800" : second) + " */\n";
  }
  return s + "\t\t..........\n\n";
}

std::string listing(const std::string& kernels) {
  return "\nFatbin elf code:\n================\narch = sm_90a\n\n\tcode for sm_90a\n\t.target\tsm_90a\n\n" + kernels;
}

// The same kernel's mangled name in two files' anonymous namespaces, and a kernel outside one.
const std::string kInOld =
    "_ZN2qb7runtime4cuda46_GLOBAL__N__2975cce3_13_qgemv_orig_cu_1a0b734112qgemv_kernelILi2EEEvPKf";
const std::string kInNew =
    "_ZN2qb7runtime4cuda48_GLOBAL__N__8c1f00aa_15_qgemv_layout_cu_9e3d521c12qgemv_kernelILi2EEEvPKf";
const std::string kNamed = "_ZN2qb7runtime4cuda10w8a8_scaleEPKfPf";
const std::vector<std::string> kBody = {"LDC R1, c[0x0][0x28]", "S2R R100, SR_CTAID.X", "@P0 BRA 0x1a0", "EXIT"};

CliRun compare(const std::vector<std::string>& old_listings, const std::vector<std::string>& new_listings) {
  TempDir dir;
  std::string cmd = "python3 " + source_path("bench/gpu/sass_same.py") + " --old";
  for (size_t i = 0; i < old_listings.size(); ++i) {
    const std::string p = dir.file("old" + std::to_string(i) + ".sass");
    write_text(p, old_listings[i]);
    cmd += " " + p;
  }
  cmd += " --new";
  for (size_t i = 0; i < new_listings.size(); ++i) {
    const std::string p = dir.file("new" + std::to_string(i) + ".sass");
    write_text(p, new_listings[i]);
    cmd += " " + p;
  }
  CliRun r = run_command(cmd);
  r.out += r.err;
  return r;
}

TEST(SassSame, KernelsMovedToOtherFilesAreTheSame) {
  // old: both kernels in one file; new: each in a file of its own, the anonymous namespace renamed with the file
  const CliRun r = compare({listing(kernel(kInOld, kBody) + kernel(kNamed, kBody))},
                           {listing(kernel(kNamed, kBody)), listing(kernel(kInNew, kBody))});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("2 of 2 kernels the same (2 in the new listings); 0 missing, added or changed"),
            std::string::npos)
      << r.out;
}

TEST(SassSame, AChangedInstructionOrEncodingIsNamed) {
  std::vector<std::string> changed = kBody;
  changed[1] = "S2R R101, SR_CTAID.X";
  for (const std::string& other : {kernel(kInNew, changed), kernel(kInNew, kBody, "0x000fe40000000800"),
                                   kernel(kInNew, kBody, "", "0x00000a00ff027b82")}) {
    const CliRun r = compare({listing(kernel(kInOld, kBody))}, {listing(other)});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("CHANGED _ZN2qb7runtime4cuda(anonymous)12qgemv_kernel"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("0 of 1 kernels the same"), std::string::npos) << r.out;
  }
}

TEST(SassSame, MissingAddedOrRenamedKernelsFail) {
  // A kernel gone, a kernel new, and a named (not anonymous) kernel renamed: only the anonymous namespace is forgiven.
  const std::string renamed = "_ZN2qb7runtime4cuda11w8a8_scale2EPKfPf";
  const CliRun r = compare({listing(kernel(kInOld, kBody) + kernel(kNamed, kBody))},
                           {listing(kernel(kInNew, kBody) + kernel(renamed, kBody))});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("MISSING " + kNamed), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ADDED   " + renamed), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 of 2 kernels the same"), std::string::npos) << r.out;
}

TEST(SassSame, ATemplateInTwoObjectsCountsOnceOnlyWhereBothCopiesAgree) {
  // A header's template kernel instantiated in two files: the linker keeps one copy, so two equal copies are one
  // kernel; two different ones cannot be compared and are an error.
  const CliRun same =
      compare({listing(kernel(kNamed, kBody))}, {listing(kernel(kNamed, kBody)), listing(kernel(kNamed, kBody))});
  EXPECT_EQ(same.exit_code, 0) << same.out;
  std::vector<std::string> changed = kBody;
  changed[0] = "LDC R2, c[0x0][0x28]";
  const CliRun differ = compare({listing(kernel(kNamed, kBody))},
                                {listing(kernel(kNamed, kBody)), listing(kernel(kNamed, changed))});
  EXPECT_EQ(differ.exit_code, 2) << differ.out;
  EXPECT_NE(differ.out.find("listed twice, with different code"), std::string::npos) << differ.out;
}

TEST(SassSame, AListingWithNoKernelIsRefused) {
  // e.g. a compile error's output saved in place of the listing
  const CliRun r = compare({listing(kernel(kNamed, kBody))}, {"nvcc error: something went wrong\n"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("no kernel in the new listings"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qb::test
