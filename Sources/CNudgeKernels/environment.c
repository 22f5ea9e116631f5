// Process-start settings for the libraries Nudge loads at run time.

#include <stdlib.h>

// OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s) after each call, which on a 2-core
// machine takes a core from Nudge's own threaded work between BLAS calls (Zen 3: two-thread
// built-in products right after an OpenBLAS call ran at 0.5-0.7x, 0.9-1.1x with 2^4). 2^4 makes
// every call wake its threads, which slowed OpenBLAS by 5-25 % on the AVX-512 machine; 2^20 cycles
// (about 0.3 ms) still bridges the gaps between a training step's products. OpenBLAS reads the
// variable when it loads. It is set here, before main and before any thread exists, because
// setenv is not safe while other threads read the environment; a user's setting stands.
__attribute__((constructor)) static void nudge_set_library_environment(void) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "20", 0);
}
