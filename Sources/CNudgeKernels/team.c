// A fork-join team for Nudge's own threaded kernels: helper threads that spin briefly for the next
// job, then sleep. On a 2-core Zen 3 VM (`NudgeBench --only forkjoin`, two pieces) a fork-join
// costs 0.6–2.4 µs while the helpers spin and 44–68 µs once they sleep, against 46–110 µs through
// GCD's `concurrentPerform` even back to back; a step of training or decoding makes hundreds of
// fork-joins, many of them not much longer than GCD's cost.
//
// One job at a time: a caller that finds the team busy (a nested call from inside a piece, or a
// second thread) gets 0 back and runs its pieces itself. Pieces are claimed one by one from a
// single 64-bit word holding the job's generation, its piece count and the next piece, so a helper
// that wakes late can only claim pieces of the job still running: once every piece is claimed, no
// compare-and-swap on that generation succeeds, and the next job's fields are written only after
// that. Which thread runs a piece never changes what the piece computes.

#include "CNudgeKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_HELPERS 63

// The claim word: generation (32 bits) | pieces (16 bits) | next piece (16 bits).
#define GEN(w) ((uint32_t)((w) >> 32))
#define PIECES(w) ((uint32_t)(((w) >> 16) & 0xffff))
#define NEXT(w) ((uint32_t)((w) & 0xffff))

typedef void (*piece_fn)(void *ctx, long piece);

static struct {
    uint64_t claim;              // atomic: see above
    int done;                    // atomic: pieces finished in the current job
    piece_fn fn;                 // atomic (relaxed is enough; seq_cst for clarity)
    void *ctx;
    int wanted;                  // helpers that may join the current job
    int busy;                    // atomic: 1 while a job runs
    int sleepers;                // atomic: helpers asleep or about to sleep
    int rest;                    // atomic: 1 asks spinning helpers to sleep now
    int started;                 // helpers created (under `lock`)
    long spin_ns;                // how long an idle helper spins before it sleeps
    pthread_mutex_t lock;
    pthread_cond_t wake;
} team = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .spin_ns = -1};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Claims and runs pieces of generation `gen` until none is left; returns how many it ran.
static int run_pieces(uint32_t gen, piece_fn fn, void *ctx) {
    int ran = 0;
    uint64_t w = __atomic_load_n(&team.claim, __ATOMIC_SEQ_CST);
    while (GEN(w) == gen && NEXT(w) < PIECES(w)) {
        if (__atomic_compare_exchange_n(&team.claim, &w, w + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            fn(ctx, (long)NEXT(w));
            ran++;
            w = __atomic_load_n(&team.claim, __ATOMIC_SEQ_CST);
        }
    }
    return ran;
}

static void *helper_main(void *arg) {
    int index = (int)(long)arg;
    uint32_t seen = GEN(__atomic_load_n(&team.claim, __ATOMIC_SEQ_CST));
    for (;;) {
        // Spin for the next generation, then sleep on the condition variable.
        long start = now_ns();
        uint64_t w;
        for (unsigned spins = 1;; spins++) {
            w = __atomic_load_n(&team.claim, __ATOMIC_SEQ_CST);
            if (GEN(w) != seen) break;
            CPU_RELAX();
            if ((spins & 63) == 0 && (__atomic_load_n(&team.rest, __ATOMIC_RELAXED) || now_ns() - start > team.spin_ns)) {
                pthread_mutex_lock(&team.lock);
                __atomic_add_fetch(&team.sleepers, 1, __ATOMIC_SEQ_CST);
                while (GEN(w = __atomic_load_n(&team.claim, __ATOMIC_SEQ_CST)) == seen) pthread_cond_wait(&team.wake, &team.lock);
                __atomic_sub_fetch(&team.sleepers, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&team.lock);
                break;
            }
        }
        seen = GEN(w);
        if (index >= __atomic_load_n(&team.wanted, __ATOMIC_SEQ_CST)) continue;
        piece_fn fn = __atomic_load_n(&team.fn, __ATOMIC_SEQ_CST);
        void *ctx = __atomic_load_n(&team.ctx, __ATOMIC_SEQ_CST);
        int ran = run_pieces(seen, fn, ctx);
        if (ran) __atomic_add_fetch(&team.done, ran, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/// Starts helpers up to `count` (at most MAX_HELPERS); returns how many exist.
static int ensure_helpers(int count) {
    if (count > MAX_HELPERS) count = MAX_HELPERS;
    if (__atomic_load_n(&team.started, __ATOMIC_ACQUIRE) >= count) return count;
    pthread_mutex_lock(&team.lock);
    if (team.spin_ns < 0) {
        const char *s = getenv("NUDGE_SPIN_US");
        long us = s ? atol(s) : 200;
        team.spin_ns = (us < 0 ? 0 : us) * 1000L;
    }
    while (team.started < count) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8u << 20);  // Swift code runs on helpers: a main thread's stack
        int failed = pthread_create(&thread, &attr, helper_main, (void *)(long)team.started);
        pthread_attr_destroy(&attr);
        if (failed) break;
        pthread_detach(thread);
        __atomic_store_n(&team.started, team.started + 1, __ATOMIC_RELEASE);
    }
    int started = team.started;
    pthread_mutex_unlock(&team.lock);
    return started;
}

int nudge_team_run(long pieces, int threads, void (*fn)(void *ctx, long piece), void *ctx) {
    if (pieces < 1 || pieces > 0xffff || threads < 2) return 0;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&team.busy, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return 0;
    int helpers = ensure_helpers(threads - 1);
    if (helpers > pieces - 1) helpers = (int)pieces - 1;
    if (helpers < 1) {
        __atomic_store_n(&team.busy, 0, __ATOMIC_SEQ_CST);
        return 0;
    }
    __atomic_store_n(&team.rest, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&team.fn, fn, __ATOMIC_SEQ_CST);
    __atomic_store_n(&team.ctx, ctx, __ATOMIC_SEQ_CST);
    __atomic_store_n(&team.wanted, helpers, __ATOMIC_SEQ_CST);
    __atomic_store_n(&team.done, 0, __ATOMIC_SEQ_CST);
    uint32_t gen = GEN(__atomic_load_n(&team.claim, __ATOMIC_SEQ_CST)) + 1;
    __atomic_store_n(&team.claim, ((uint64_t)gen << 32) | ((uint64_t)pieces << 16), __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&team.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&team.lock);
        pthread_cond_broadcast(&team.wake);
        pthread_mutex_unlock(&team.lock);
    }
    int ran = run_pieces(gen, fn, ctx);
    // Wait for the pieces helpers claimed; yield now and then in case one was preempted.
    for (unsigned spins = 1; __atomic_load_n(&team.done, __ATOMIC_SEQ_CST) + ran < pieces; spins++) {
        CPU_RELAX();
        if ((spins & 1023) == 0) sched_yield();
    }
    __atomic_store_n(&team.busy, 0, __ATOMIC_SEQ_CST);
    return 1;
}

void nudge_team_rest(void) {
    if (__atomic_load_n(&team.started, __ATOMIC_RELAXED) && !__atomic_load_n(&team.rest, __ATOMIC_RELAXED))
        __atomic_store_n(&team.rest, 1, __ATOMIC_RELAXED);
}
