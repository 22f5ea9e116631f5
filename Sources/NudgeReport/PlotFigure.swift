// PlotFigure.swift
//
// `Figure`: several plots side by side in one SVG, laid out row by row in a grid.

import Foundation

/// A grid of plots (filled row by row) under an optional title.
public struct Figure: SVGRenderable {
    public var title: String
    public var columns: Int
    public var panels: [any SVGRenderable]

    public init(title: String = "", columns: Int = 2, panels: [any SVGRenderable]) {
        self.title = title
        self.columns = max(columns, 1)
        self.panels = panels
    }

    /// Width of each grid column: its widest panel.
    private var columnWidths: [Double] {
        (0..<columns).map { c in stride(from: c, to: panels.count, by: columns).map { panels[$0].width }.max() ?? 0 }
    }

    /// Height of each grid row: its tallest panel.
    private var rowHeights: [Double] {
        stride(from: 0, to: panels.count, by: columns).map { start in
            panels[start..<min(start + columns, panels.count)].map(\.height).max() ?? 0
        }
    }

    private var titleHeight: Double { title.isEmpty ? 0 : 32 }

    public var width: Double { max(columnWidths.reduce(0, +), textWidth(title, size: 18) + 24) }
    public var height: Double { titleHeight + rowHeights.reduce(0, +) }

    public func renderSVG() -> String {
        var canvas = SVGCanvas(width: width, height: height, title: title)
        if !title.isEmpty { canvas.text(title, x: width / 2, y: 18, size: 18, bold: true, cssClass: "title") }
        let xs = columnWidths.reduce(into: [0.0]) { $0.append($0.last! + $1) }
        let ys = rowHeights.reduce(into: [titleHeight]) { $0.append($0.last! + $1) }
        for (i, panel) in panels.enumerated() {
            canvas.embed(panel.renderSVG(), x: xs[i % columns], y: ys[i / columns])
        }
        return canvas.render()
    }
}
