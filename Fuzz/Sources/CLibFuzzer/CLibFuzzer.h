// libFuzzer's entry point for programs that have their own main (LLVM ≥ 11). SwiftPM links an
// executable with `--defsym main=<Module>_main`, so libFuzzer's own main is never used: each
// fuzz target's main.swift hands its LLVMFuzzerTestOneInput to this driver instead. Defined in
// libclang_rt.fuzzer, which `-sanitize=fuzzer` links.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *_Nonnull argc, char *_Nullable *_Nullable *_Nonnull argv,
                        int (*_Nonnull callback)(const uint8_t *_Nonnull data, size_t size));
