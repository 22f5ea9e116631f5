// PlotHeatmap.swift
//
// `Heatmap`: a matrix of values as colored cells (row 0 at the top), with row and
// column labels, a color bar, optional per-cell values and optional per-cell
// overlay text such as a policy arrow. NaN cells are gray and unlabelled.
//
//     var map = Heatmap(title: "V(s)", values: v, colorScale: .viridis)
//     map.showsValues = true
//     map.overlay = policy.map { $0.map { ["↑", "→", "↓", "←"][$0] } }

import Foundation

/// A matrix drawn as a grid of colored cells with a color bar. Its size follows from `cellSize`.
public struct Heatmap: SVGRenderable {
    public var title: String
    /// Rows of values, top row first; shorter rows are padded with empty (NaN) cells.
    public var values: [[Double]]
    public var rowLabels: [String]
    public var columnLabels: [String]
    public var xLabel = ""
    public var yLabel = ""
    public var colorScale: ColorScale
    /// The values mapped to the ends of the scale; nil uses the data's range
    /// (symmetric about 0 for a diverging scale).
    public var range: ClosedRange<Double>? = nil
    /// Whether each cell shows its value, formatted by `valueFormatter`.
    public var showsValues = false
    public var valueFormatter: @Sendable (Double) -> String = { compactNumber($0, significantDigits: 2) }
    /// Text drawn large in each cell (same shape as `values`; missing entries draw nothing).
    public var overlay: [[String]]? = nil
    /// Side of one cell in pixels.
    public var cellSize: Double = 40
    public var showsColorBar = true

    public init(
        title: String = "", values: [[Double]], rowLabels: [String] = [], columnLabels: [String] = [],
        colorScale: ColorScale = .viridis
    ) {
        self.title = title
        self.values = values
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.colorScale = colorScale
    }

    public var rowCount: Int { values.count }
    public var columnCount: Int { values.map(\.count).max() ?? 0 }

    public var width: Double { layout.width }
    public var height: Double { layout.height }

    /// The values at the two ends of the color scale.
    public var valueRange: (lower: Double, upper: Double) {
        if let range, range.lowerBound.isFinite, range.upperBound.isFinite {
            return (range.lowerBound, range.upperBound)
        }
        let finite = values.joined().filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return (0, 1) }
        if colorScale.isDiverging {
            let m = max(abs(lo), abs(hi))
            return m == 0 ? (-1, 1) : (-m, m)
        }
        return (lo, hi)
    }

    public func renderSVG() -> String {
        let l = layout
        let (lo, hi) = valueRange
        let cell = cellSize
        var canvas = SVGCanvas(width: l.width, height: l.height, title: title)
        canvas.drawTitle(title)
        for r in 0..<rowCount {
            for c in 0..<columnCount {
                let x = l.gridX + Double(c) * cell
                let y = l.gridY + Double(r) * cell
                let v = c < values[r].count ? values[r][c] : .nan
                let fill =
                    v.isFinite ? colorScale.color(at: hi > lo ? (v - lo) / (hi - lo) : 0.5) : PlotColor(hex: 0xDDDDDD)
                canvas.rect(x: x, y: y, width: cell, height: cell, fill: fill, stroke: .white, cssClass: "cell")
                let ink = fill.luminance > 0.5 ? PlotColor(hex: 0x222222) : .white
                let mark = overlay.flatMap { r < $0.count && c < $0[r].count ? $0[r][c] : nil } ?? ""
                let showValue = showsValues && v.isFinite
                if !mark.isEmpty {
                    canvas.text(
                        mark, x: x + cell / 2, y: y + cell * (showValue ? 0.4 : 0.5), size: cell * 0.45, color: ink,
                        cssClass: "overlay")
                }
                if showValue {
                    canvas.text(
                        valueFormatter(v), x: x + cell / 2, y: y + cell * (mark.isEmpty ? 0.5 : 0.82),
                        size: min(11, cell * (mark.isEmpty ? 0.3 : 0.24)), color: ink, cssClass: "value")
                }
            }
        }
        let gridBottom = l.gridY + Double(rowCount) * cell
        for (r, label) in rowLabels.prefix(rowCount).enumerated() {
            canvas.text(
                label, x: l.gridX - 6, y: l.gridY + (Double(r) + 0.5) * cell, size: tickFontSize, anchor: "end",
                cssClass: "tick")
        }
        for (c, label) in columnLabels.prefix(columnCount).enumerated() {
            let x = l.gridX + (Double(c) + 0.5) * cell
            if l.rotateColumnLabels {
                canvas.text(
                    label, x: x, y: gridBottom + 10, size: tickFontSize, anchor: "end", rotation: -45, cssClass: "tick")
            } else {
                canvas.text(label, x: x, y: gridBottom + 12, size: tickFontSize, cssClass: "tick")
            }
        }
        if !xLabel.isEmpty {
            canvas.text(
                xLabel, x: l.gridX + Double(columnCount) * cell / 2, y: gridBottom + l.columnLabelHeight + 14,
                size: labelFontSize, cssClass: "axis-label")
        }
        if !yLabel.isEmpty {
            canvas.text(
                yLabel, x: 20, y: l.gridY + Double(rowCount) * cell / 2, size: labelFontSize, rotation: -90,
                cssClass: "axis-label")
        }
        if showsColorBar { drawColorBar(&canvas, x: l.colorBarX, y: l.gridY, height: Double(rowCount) * cell) }
        return canvas.render()
    }

    /// A vertical strip of the scale, high values at the top, with tick labels on the right.
    private func drawColorBar(_ canvas: inout SVGCanvas, x: Double, y: Double, height: Double) {
        let (lo, hi) = valueRange
        let slices = 48
        let sliceHeight = height / Double(slices)
        for i in 0..<slices {
            let color = colorScale.color(at: 1 - (Double(i) + 0.5) / Double(slices))
            canvas.rect(
                x: x, y: y + Double(i) * sliceHeight, width: 14, height: sliceHeight + 0.5, fill: color,
                cssClass: "colorbar")
        }
        canvas.rect(x: x, y: y, width: 14, height: height, fill: nil, stroke: axisColor)
        guard hi > lo else { return }
        let ticks = niceTicks(from: lo, to: hi, count: 4)
        for (tick, label) in zip(ticks, tickLabels(ticks)) {
            let ty = y + (hi - tick) / (hi - lo) * height
            canvas.line(x + 14, ty, x + 18, ty, color: axisColor)
            canvas.text(label, x: x + 21, y: ty, size: tickFontSize, anchor: "start", cssClass: "tick")
        }
    }

    /// Where the grid, labels and color bar go.
    private struct Layout {
        var gridX: Double
        var gridY: Double
        var colorBarX: Double
        var rotateColumnLabels: Bool
        var columnLabelHeight: Double
        var width: Double
        var height: Double
    }

    private var layout: Layout {
        let widestRow = rowLabels.map { textWidth($0, size: tickFontSize) }.max() ?? 0
        let widestColumn = columnLabels.map { textWidth($0, size: tickFontSize) }.max() ?? 0
        let rotate = widestColumn > cellSize - 4
        let columnLabelHeight = columnLabels.isEmpty ? 0 : rotate ? widestColumn * 0.71 + 16 : 22
        let overhang = rotate ? widestColumn * 0.71 - cellSize / 2 + 8 : 0  // of the first column's label
        let gridX = max(12 + (yLabel.isEmpty ? 0 : 22) + (widestRow > 0 ? widestRow + 6 : 0), overhang)
        let gridY = title.isEmpty ? 12.0 : 40.0
        let colorBarX = gridX + Double(columnCount) * cellSize + 16
        let (lo, hi) = valueRange
        let barTicks = tickLabels(hi > lo ? niceTicks(from: lo, to: hi, count: 4) : [])
        let barWidth = showsColorBar ? 16 + 21 + (barTicks.map { textWidth($0, size: tickFontSize) }.max() ?? 0) : 0
        let width = max(colorBarX - 16 + barWidth + 12, textWidth(title, size: 16) + 24)
        let height = gridY + Double(rowCount) * cellSize + columnLabelHeight + (xLabel.isEmpty ? 0 : 26) + 12
        return Layout(
            gridX: gridX, gridY: gridY, colorBarX: colorBarX, rotateColumnLabels: rotate,
            columnLabelHeight: columnLabelHeight, width: width, height: height)
    }
}
