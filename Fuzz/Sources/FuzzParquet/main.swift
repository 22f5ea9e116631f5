// libFuzzer runs `fuzz` (FuzzParquet.swift), the LLVMFuzzerTestOneInput of this target.
import FuzzSupport

runFuzzer { data, size in fuzz(data, size) }
