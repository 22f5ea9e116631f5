// Nudge's own single-precision GEMM: the fallback when no BLAS is found, and the tests' oracle.
//
// Goto-style blocking: B is packed into KC×NR panels, A into MC×KC blocks of MR-row panels, and
// an MR×NR register tile accumulates with SIMD8 vectors. NR = 8 and MR = 4 fit the 16 vector
// registers of baseline x86-64 (SSE; no `-march` flags are allowed in the manifest). Rows of C are
// split across threads in fixed blocks for large problems; each C element is computed by one
// thread in a fixed order, so results do not depend on the thread count.

import Foundation

private let mr = 4
private let nr = 8
private let kc = 256
private let mc = 64

@inline(__always)
private func element(_ p: UnsafePointer<Float>, _ ld: Int, _ trans: Bool, _ row: Int, _ col: Int) -> Float {
    trans ? p[col * ld + row] : p[row * ld + col]
}

func builtinSgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    // Scale C by β first; the blocks below then accumulate α·A·B into it.
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { row[j] *= beta } }
    }
    if k == 0 || alpha == 0 { return }
    let panels = (n + nr - 1) / nr
    let packedB = UnsafeMutablePointer<Float>.allocate(capacity: panels * nr * kc)
    defer { packedB.deallocate() }
    var pc = 0
    while pc < k {
        let kb = min(kc, k - pc)
        // Pack B[pc..<pc+kb, :] into NR-column panels, zero-padded on the right.
        for p in 0..<panels {
            let dst = packedB + p * nr * kb
            let j0 = p * nr
            for kk in 0..<kb {
                for jj in 0..<nr {
                    let j = j0 + jj
                    dst[kk * nr + jj] = j < n ? element(b, ldb, transB, pc + kk, j) : 0
                }
            }
        }
        let blocks = (m + mc - 1) / mc
        let work = m * n * kb
        let pcNow = pc
        parallelRanges(blocks, minimum: work >= (1 << 22) ? 2 : Int.max, grain: 1) { range in
            let packedA = UnsafeMutablePointer<Float>.allocate(capacity: mc * kb)
            defer { packedA.deallocate() }
            for block in range {
                let i0 = block * mc
                let mb = min(mc, m - i0)
                let rowPanels = (mb + mr - 1) / mr
                for rp in 0..<rowPanels {
                    let dst = packedA + rp * mr * kb
                    for kk in 0..<kb {
                        for ii in 0..<mr {
                            let i = i0 + rp * mr + ii
                            dst[kk * mr + ii] = i < m ? element(a, lda, transA, i, pcNow + kk) : 0
                        }
                    }
                }
                for rp in 0..<rowPanels {
                    for p in 0..<panels {
                        microKernel(packedA + rp * mr * kb, packedB + p * nr * kb, kb, alpha,
                                    c, ldc, i0 + rp * mr, p * nr, m, n)
                    }
                }
            }
        }
        pc += kb
    }
}

@inline(__always)
private func microKernel(
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ kb: Int, _ alpha: Float,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ i0: Int, _ j0: Int, _ m: Int, _ n: Int
) {
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    let rb = UnsafeRawPointer(b)
    for kk in 0..<kb {
        let bv = rb.loadUnaligned(fromByteOffset: kk * nr * 4, as: SIMD8<Float>.self)
        let ap = a + kk * mr
        c0 = c0 + SIMD8(repeating: ap[0]) * bv
        c1 = c1 + SIMD8(repeating: ap[1]) * bv
        c2 = c2 + SIMD8(repeating: ap[2]) * bv
        c3 = c3 + SIMD8(repeating: ap[3]) * bv
    }
    let cols = min(nr, n - j0)
    let rows = min(mr, m - i0)
    @inline(__always) func store(_ r: Int, _ v: SIMD8<Float>) {
        guard r < rows else { return }
        let row = c + (i0 + r) * ldc + j0
        let scaled = v * alpha
        if cols == nr {
            let raw = UnsafeMutableRawPointer(row)
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self) + scaled, as: SIMD8<Float>.self)
        } else {
            for j in 0..<cols { row[j] += scaled[j] }
        }
    }
    store(0, c0)
    store(1, c1)
    store(2, c2)
    store(3, c3)
}
