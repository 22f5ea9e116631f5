// PlotFrame.swift
//
// Pieces shared by the charts: the layout of the data area, the title, axes with
// ticks, grid lines and labels, the frame, and the legend (drawn to the right of
// the data area so it never covers data).

import Foundation

/// The pixel rectangle in which data is drawn.
struct PlotArea {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var maxX: Double { x + width }
    var maxY: Double { y + height }
}

/// One row of a legend: a line sample (with optional band and marker) or a filled box.
struct LegendEntry {
    var name: String
    var color: PlotColor
    var dash: LineDash = .solid
    var lineWidth: Double = 2
    var showsLine = true
    var marker: MarkerShape? = nil
    var hasBand = false
    var isBox = false
}

let axisColor = PlotColor(hex: 0x444444)
let gridColor = PlotColor(hex: 0xE8E8E8)
let tickFontSize = 11.0
let labelFontSize = 13.0
let legendFontSize = 12.0

/// The data area of a `width` × `height` chart, leaving room for title, tick labels, axis labels and legend.
func plotArea(
    width: Double, height: Double, title: String, xLabel: String, yLabel: String, yTickLabels: [String],
    legend: [LegendEntry], extraBottom: Double = 0
) -> PlotArea {
    let widestTick = yTickLabels.map { textWidth($0, size: tickFontSize) }.max() ?? 0
    let top = title.isEmpty ? 14.0 : 40.0
    let left = 14 + (yLabel.isEmpty ? 0 : 22) + widestTick
    let right = legend.isEmpty ? 24 : legendWidth(legend) + 30
    let bottom = 32 + extraBottom + (xLabel.isEmpty ? 0 : 22)
    return PlotArea(x: left, y: top, width: max(width - left - right, 10), height: max(height - top - bottom, 10))
}

/// The width a legend of `entries` takes.
func legendWidth(_ entries: [LegendEntry]) -> Double {
    30 + (entries.map { textWidth(legendName($0.name), size: legendFontSize) }.max() ?? 0)
}

/// `name`, shortened to 32 characters for the legend.
private func legendName(_ name: String) -> String {
    name.count <= 32 ? name : String(name.prefix(31)) + "…"
}

extension SVGCanvas {
    mutating func drawTitle(_ title: String) {
        if !title.isEmpty { text(title, x: width / 2, y: 20, size: 16, bold: true, cssClass: "title") }
    }

    /// Grid lines, tick marks and labels of the vertical axis, and its rotated label.
    mutating func drawYAxis(_ map: AxisMap, area: PlotArea, label: String, grid: Bool) {
        let ticks = map.ticks
        let labels = tickLabels(ticks)
        for (tick, tickLabel) in zip(ticks, labels) {
            guard let offset = map.position(tick) else { continue }
            let y = area.y + offset
            if grid { line(area.x, y, area.maxX, y, color: gridColor) }
            line(area.x - 4, y, area.x, y, color: axisColor)
            text(tickLabel, x: area.x - 7, y: y, size: tickFontSize, anchor: "end", cssClass: "tick")
        }
        for tick in map.minorTicks {
            if let offset = map.position(tick) {
                line(area.x - 2, area.y + offset, area.x, area.y + offset, color: axisColor)
            }
        }
        if !label.isEmpty {
            let widest = labels.map { textWidth($0, size: tickFontSize) }.max() ?? 0
            text(
                label, x: area.x - widest - 20, y: area.y + area.height / 2, size: labelFontSize, rotation: -90,
                cssClass: "axis-label")
        }
    }

    /// Grid lines, tick marks and labels of the horizontal axis, and its label.
    mutating func drawXAxis(_ map: AxisMap, area: PlotArea, label: String, grid: Bool) {
        for (tick, tickLabel) in zip(map.ticks, tickLabels(map.ticks)) {
            guard let offset = map.position(tick) else { continue }
            let x = area.x + offset
            if grid { line(x, area.y, x, area.maxY, color: gridColor) }
            line(x, area.maxY, x, area.maxY + 4, color: axisColor)
            text(tickLabel, x: x, y: area.maxY + 14, size: tickFontSize, cssClass: "tick")
        }
        for tick in map.minorTicks {
            if let offset = map.position(tick) {
                line(area.x + offset, area.maxY, area.x + offset, area.maxY + 2, color: axisColor)
            }
        }
        if !label.isEmpty {
            text(label, x: area.x + area.width / 2, y: area.maxY + 36, size: labelFontSize, cssClass: "axis-label")
        }
    }

    mutating func drawFrame(_ area: PlotArea) {
        rect(x: area.x, y: area.y, width: area.width, height: area.height, fill: nil, stroke: axisColor)
    }

    /// The legend rows, top-left corner at `(x, y)`.
    mutating func drawLegend(_ entries: [LegendEntry], x: Double, y: Double) {
        for (i, entry) in entries.enumerated() {
            let cy = y + 8 + Double(i) * 20
            if entry.isBox {
                rect(x: x + 6, y: cy - 6, width: 12, height: 12, fill: entry.color)
            } else {
                if entry.hasBand { rect(x: x, y: cy - 6, width: 24, height: 12, fill: entry.color, opacity: 0.2) }
                if entry.showsLine {
                    line(x, cy, x + 24, cy, color: entry.color, width: min(entry.lineWidth, 4), dash: entry.dash)
                }
                if let shape = entry.marker {
                    marker(shape, x: x + 12, y: cy, size: 7, color: entry.color, cssClass: "legend-marker")
                }
            }
            text(legendName(entry.name), x: x + 30, y: cy, size: legendFontSize, anchor: "start", cssClass: "legend")
        }
    }
}
