// PlotScaleTests.swift
//
// Exact-value tests for the plot numerics: linear and log ticks, tick labels,
// and the trailing moving average.

import Testing

@testable import NudgeReport

@Test func niceLinearTicks() {
    #expect(niceTicks(from: 0, to: 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
    #expect(niceTicks(from: 0, to: 100) == [0, 20, 40, 60, 80, 100])
    #expect(niceTicks(from: 0, to: 7) == [0, 2, 4, 6])
    #expect(niceTicks(from: -0.35, to: 0.72) == [-0.2, 0, 0.2, 0.4, 0.6])
    #expect(niceTicks(from: 0.1, to: 0.3, count: 4) == [0.1, 0.15, 0.2, 0.25, 0.3])
    #expect(niceTicks(from: 0, to: 1e6) == [0, 200_000, 400_000, 600_000, 800_000, 1_000_000])
    #expect(niceTicks(from: 3e-5, to: 1.1e-4, count: 4) == [4e-5, 6e-5, 8e-5, 1e-4])
    #expect(niceTicks(from: 1, to: 0) == niceTicks(from: 0, to: 1))
    #expect(niceTicks(from: 5, to: 5) == [5])
    #expect(niceTicks(from: .nan, to: 1).isEmpty)
    #expect(niceTicks(from: 0, to: .infinity).isEmpty)
}

@Test func logDecadeTicks() {
    #expect(logTicks(from: 1e-3, to: 1e2) == [0.001, 0.01, 0.1, 1, 10, 100])
    #expect(logTicks(from: 0.5, to: 2e3) == [1, 10, 100, 1000])
    #expect(logTicks(from: 1, to: 1e20) == [1, 1e3, 1e6, 1e9, 1e12, 1e15, 1e18])
    // Fewer than three decades: 1, 2, 5 × 10^k.
    #expect(logTicks(from: 1, to: 10) == [1, 2, 5, 10])
    #expect(logTicks(from: 0.02, to: 0.6) == [0.02, 0.05, 0.1, 0.2, 0.5])
    // Too narrow for 1-2-5: falls back to linear ticks.
    #expect(logTicks(from: 3, to: 8) == [3, 4, 5, 6, 7, 8])
    #expect(logTicks(from: 0, to: 10).isEmpty)
    #expect(logTicks(from: -5, to: 10).isEmpty)
}

@Test func axisRangesFitTheData() {
    func close(_ a: (Double, Double), _ b: (Double, Double)) -> Bool {
        abs(a.0 - b.0) < 1e-12 && abs(a.1 - b.1) < 1e-12
    }
    // Linear: the data range plus a 4% margin each side.
    #expect(close(AxisMap.range(for: [3.2, 9.7], scale: .linear, explicit: nil), (2.94, 9.96)))
    #expect(close(AxisMap.range(for: [0, 475, .nan], scale: .linear, explicit: nil), (-19, 494)))
    #expect(close(AxisMap.range(for: [4, 4], scale: .linear, explicit: nil), (3.568, 4.432)))
    #expect(close(AxisMap.range(for: [0, 10], scale: .linear, explicit: nil, stickyZero: true), (0, 10.4)))
    #expect(close(AxisMap.range(for: [-5, 0], scale: .linear, explicit: nil, stickyZero: true), (-5.2, 0)))
    #expect(AxisMap.range(for: [.nan], scale: .linear, explicit: nil) == (0, 1))
    // Log: whole decades.
    #expect(AxisMap.range(for: [-3, 0, 0.02, 350], scale: .log, explicit: nil) == (0.01, 1000))
    #expect(AxisMap.range(for: [10, 10], scale: .log, explicit: nil) == (10, 100))
    #expect(AxisMap.range(for: [], scale: .log, explicit: nil) == (1, 10))
    #expect(AxisMap.range(for: [1, 2], scale: .linear, explicit: -1...5) == (-1, 5))
    // A log axis ignores an explicit range it cannot show.
    #expect(AxisMap.range(for: [1, 50], scale: .log, explicit: 0...5) == (1, 100))
}

@Test func compactTickLabels() {
    let cases: [(Double, String)] = [
        (0, "0"), (0.001, "0.001"), (1e-4, "1e-4"), (2.5e-5, "2.5e-5"), (0.25, "0.25"), (12.5, "12.5"),
        (100, "100"), (1000, "1k"), (1500, "1.5k"), (10_000, "10k"), (123_456, "123k"), (999.96, "1k"),
        (2.5e6, "2.5M"), (1e9, "1B"), (-3000, "-3k"), (-0.5, "-0.5"), (1e20, "1e20"), (.nan, "NaN"),
        (-.infinity, "-∞"),
    ]
    for (value, label) in cases {
        #expect(compactNumber(value) == label, "\(value)")
    }
    #expect(compactNumber(3.14159, significantDigits: 5) == "3.1416")
    #expect(tickLabels([10_000, 10_001, 10_002]) == ["10k", "10.001k", "10.002k"])
    #expect(tickLabels(niceTicks(from: 0, to: 1)) == ["0", "0.2", "0.4", "0.6", "0.8", "1"])
}

@Test func trailingMovingAverage() {
    #expect(movingAverage([1, 2, 3, 4, 5], window: 3) == [1, 1.5, 2, 3, 4])
    #expect(movingAverage([1, 2, 3, 4, 5], window: 1) == [1, 2, 3, 4, 5])
    #expect(movingAverage([1, 2, 3, 4, 5], window: 10) == [1, 1.5, 2, 2.5, 3])
    #expect(movingAverage([4, 2], window: 0) == [4, 2])
    #expect(movingAverage([], window: 3) == [])
    // Non-finite values are left out of the mean; a window with none is NaN.
    #expect(movingAverage([1, .nan, 3, 5], window: 2) == [1, 1, 3, 4])
    let gap = movingAverage([.nan, .infinity, 2], window: 2)
    #expect(gap[0].isNaN && gap[1].isNaN && gap[2] == 2)
}

@Test func colorScaleInterpolates() {
    let scale = ColorScale(anchors: [.black, .white])
    #expect(scale.color(at: 0.5).hexString == "#808080")
    #expect(scale.color(at: -1) == .black)
    #expect(scale.color(at: 2) == .white)
    #expect(ColorScale.viridis.color(at: 0).hexString == "#440154")
    #expect(ColorScale.viridis.color(at: 1).hexString == "#fde725")
    #expect(PlotColor.palette.count == 8 && Set(PlotColor.palette).count == 8)
}
