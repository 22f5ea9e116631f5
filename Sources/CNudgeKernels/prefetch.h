// Prefetching the weight rows of decoding's few-row products (kernels.c, bf16.c).
//
// Decoding reads each weight once per token from DRAM. With only the hardware prefetcher the core
// waits on memory between groups of weight rows, so the drivers prefetch the rows a few groups
// ahead into L2 while the current group is multiplied, spread over the tiles of 4 rows of x so
// each weight row is requested once.

#ifndef NUDGE_PREFETCH_H
#define NUDGE_PREFETCH_H

/// The weight rows (of n, `row_bytes` apart from `w`) that the tile of x's rows starting at r0 (of
/// m rows, in tiles of 4) prefetches while the group of `group` rows at o0 is multiplied: rows
/// o0 + ahead + j for the j < group that fall to this tile, clamped to the last row. Writes their
/// addresses to `pf` (room for `group`) and returns how many.
static inline int rows_to_prefetch(int m, int n, int o0, int r0, int group, int ahead, const void *w, long row_bytes,
                                   const char **pf) {
    const int tiles = (m + 3) / 4;
    int count = 0;
    for (int j = r0 / 4; j < group; j += tiles) {
        long row = o0 + ahead + j < n ? o0 + ahead + j : n - 1;
        pf[count++] = (const char *)w + row * row_bytes;
    }
    return count;
}

#endif
