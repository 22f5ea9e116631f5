// PlotBarChart.swift
//
// `BarChart`: one group of bars per category, one bar per series, growing from 0,
// with optional symmetric error bars and value labels. NaN values draw no bar.
//
//     var chart = BarChart(title: "Final return", yLabel: "return", categories: ["CartPole", "Acrobot"])
//     chart.add(BarSeries("PPO", values: [480, -90], errors: [12, 8]))
//     chart.add(BarSeries("DQN", values: [410, -110], errors: [40, 15]))

import Foundation

/// One series of a `BarChart`: a value (and optional error) per category.
public struct BarSeries: Sendable {
    public var name: String
    public var values: [Double]
    /// Half-lengths of the error bars (e.g. standard deviation across seeds).
    public var errors: [Double]?
    /// nil takes the next color of `PlotColor.palette`.
    public var color: PlotColor?

    public init(_ name: String, values: [Double], errors: [Double]? = nil, color: PlotColor? = nil) {
        self.name = name
        self.values = values
        self.errors = errors
        self.color = color
    }
}

/// A grouped bar chart over `categories`.
public struct BarChart: SVGRenderable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var categories: [String]
    public var series: [BarSeries] = []
    /// Whether each bar is labelled with its value, formatted by `valueFormatter`.
    public var showsValues = false
    public var valueFormatter: @Sendable (Double) -> String = { compactNumber($0) }
    /// A fixed value axis; nil fits 0 and all values (± errors), widened to round values.
    public var yRange: ClosedRange<Double>? = nil
    public var width: Double
    public var height: Double
    /// Whether to show a legend (only drawn when there are several series).
    public var showsLegend = true
    public var showsGrid = true

    public init(
        title: String = "", xLabel: String = "", yLabel: String = "", categories: [String], width: Double = 720,
        height: Double = 440
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.categories = categories
        self.width = width
        self.height = height
    }

    public mutating func add(_ series: BarSeries) { self.series.append(series) }

    public func renderSVG() -> String {
        let colors = series.indices.map { series[$0].color ?? PlotColor.palette[$0 % PlotColor.palette.count] }
        var data = [0.0]
        for s in series {
            for (i, v) in s.values.enumerated() {
                let e = s.errors.map { i < $0.count && $0[i].isFinite ? abs($0[i]) : 0 } ?? 0
                data += [v - e, v + e]
            }
        }
        if showsValues, let lo = data.filter(\.isFinite).min(), let hi = data.filter(\.isFinite).max() {
            data += [hi + 0.08 * (hi - lo), lo - (lo < 0 ? 0.08 * (hi - lo) : 0)]
        }
        let (y0, y1) = AxisMap.range(for: data, scale: .linear, explicit: yRange, stickyZero: true)
        let legend =
            showsLegend && series.count > 1
            ? zip(series, colors).filter { !$0.0.name.isEmpty }.map {
                LegendEntry(name: $0.0.name, color: $0.1, isBox: true)
            }
            : []
        let widestCategory = categories.map { textWidth($0, size: tickFontSize) }.max() ?? 0
        var area = plotArea(
            width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
            yTickLabels: tickLabels(niceTicks(from: y0, to: y1)), legend: legend)
        var slot = area.width / Double(max(categories.count, 1))
        let rotate = widestCategory > slot - 6
        if rotate {  // make room below, and left of the first category, for labels at 45°
            area.height = max(area.height - widestCategory * 0.71 + 8, 10)
            let overhang = widestCategory * 0.71 - slot / 2 + 8 - area.x
            if overhang > 0 {
                area.x += overhang
                area.width = max(area.width - overhang, 10)
                slot = area.width / Double(max(categories.count, 1))
            }
        }
        let yMap = AxisMap(scale: .linear, lower: y0, upper: y1, length: area.height, inverted: true)
        let baseline = yMap.position(min(max(0, y0), y1)) ?? area.height
        let barWidth = slot * 0.8 / Double(max(series.count, 1))

        var canvas = SVGCanvas(width: width, height: height, title: title)
        canvas.drawTitle(title)
        canvas.drawYAxis(yMap, area: area, label: yLabel, grid: showsGrid)
        var valueLabels: [(text: String, x: Double, y: Double)] = []
        canvas.clipped(x: area.x, y: area.y, width: area.width, height: area.height) { c in
            for (j, (s, color)) in zip(series, colors).enumerated() {
                for (i, v) in s.values.prefix(categories.count).enumerated() {
                    guard let top = yMap.position(v) else { continue }
                    let x = slot * (Double(i) + 0.1) + barWidth * Double(j)
                    c.rect(
                        x: x + 0.5, y: min(top, baseline), width: barWidth - 1, height: abs(baseline - top),
                        fill: color,
                        cssClass: "bar")
                    var labelY = top
                    if let errors = s.errors, i < errors.count, errors[i].isFinite,
                        let a = yMap.position(v - abs(errors[i])), let b = yMap.position(v + abs(errors[i]))
                    {
                        let cx = x + barWidth / 2
                        let cap = min(barWidth * 0.25, 5)
                        let d = [(a, b), (a, a), (b, b)].enumerated().map { k, ends in
                            k == 0
                                ? "M\(svgNumber(cx)) \(svgNumber(ends.0))V\(svgNumber(ends.1))"
                                : "M\(svgNumber(cx - cap)) \(svgNumber(ends.0))H\(svgNumber(cx + cap))"
                        }.joined()
                        c.element(
                            "path", [("class", "errorbar"), ("d", d), ("stroke", "#333333"), ("stroke-width", "1.25")])
                        labelY = v >= 0 ? min(a, b) : max(a, b)
                    }
                    if showsValues {
                        valueLabels.append(
                            (valueFormatter(v), area.x + x + barWidth / 2, area.y + labelY + (v >= 0 ? -8 : 8)))
                    }
                }
            }
            if y0 < 0 && y1 > 0 { c.line(0, baseline, area.width, baseline, color: axisColor) }
        }
        for label in valueLabels {
            canvas.text(label.text, x: label.x, y: label.y, size: 10, halo: true, cssClass: "value")
        }
        for (i, category) in categories.enumerated() {
            let x = area.x + slot * (Double(i) + 0.5)
            if rotate {
                canvas.text(
                    category, x: x, y: area.maxY + 10, size: tickFontSize, anchor: "end", rotation: -45,
                    cssClass: "tick")
            } else {
                canvas.text(category, x: x, y: area.maxY + 14, size: tickFontSize, cssClass: "tick")
            }
        }
        if !xLabel.isEmpty {
            canvas.text(xLabel, x: area.x + area.width / 2, y: height - 16, size: labelFontSize, cssClass: "axis-label")
        }
        canvas.drawFrame(area)
        canvas.drawLegend(legend, x: area.maxX + 14, y: area.y)
        return canvas.render()
    }
}
