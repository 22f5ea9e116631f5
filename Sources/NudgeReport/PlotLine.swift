// PlotLine.swift
//
// `LinePlot`: named (x, y) series as lines and/or markers, with optional
// moving-average smoothing (the raw line stays, faint), translucent lower/upper
// bands (spread across seeds), labelled reference lines, linear or log axes and a
// legend. Points that an axis cannot show (NaN, ±inf, non-positive on a log axis)
// are skipped and break the line.
//
//     var plot = LinePlot(title: "CartPole", xLabel: "step", yLabel: "return")
//     plot.add(.meanAndRange("PPO", x: steps, runs: returnsPerSeed, smoothing: 10))
//     plot.add(.horizontal(475, label: "solved"))
//     try plot.write(to: runDir.url.appendingPathComponent("return.svg"))

import Foundation

/// A lower/upper envelope around a series, drawn as a translucent polygon in the series' color.
public struct PlotBand: Sendable {
    public var lower: [Double]
    public var upper: [Double]
    public var opacity: Double

    public init(lower: [Double], upper: [Double], opacity: Double = 0.2) {
        self.lower = lower
        self.upper = upper
        self.opacity = opacity
    }
}

/// One named series of a `LinePlot`. Points pair `x[i]` with `y[i]` (extra elements are ignored).
public struct PlotSeries: Sendable {
    /// The legend text; an empty name leaves the series out of the legend.
    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// nil takes the next color of `PlotColor.palette`.
    public var color: PlotColor?
    public var dash: LineDash
    public var lineWidth: Double
    /// false draws markers only (a scatter series).
    public var showsLine: Bool
    public var marker: MarkerShape?
    /// When set, draws the trailing moving average of `y` over this many points, and the raw line faintly.
    public var smoothingWindow: Int?
    /// Drawn with `x` as the shared abscissa.
    public var band: PlotBand?

    public init(
        _ name: String, x: [Double], y: [Double], color: PlotColor? = nil, dash: LineDash = .solid,
        lineWidth: Double = 1.75, showsLine: Bool = true, marker: MarkerShape? = nil, smoothingWindow: Int? = nil,
        band: PlotBand? = nil
    ) {
        self.name = name
        self.x = x
        self.y = y
        self.color = color
        self.dash = dash
        self.lineWidth = lineWidth
        self.showsLine = showsLine
        self.marker = marker
        self.smoothingWindow = smoothingWindow
        self.band = band
    }

    /// A line, optionally smoothed over a trailing window of `smoothing` points.
    public static func line(
        _ name: String, x: [Double], y: [Double], color: PlotColor? = nil, dash: LineDash = .solid,
        lineWidth: Double = 1.75, smoothing: Int? = nil, band: PlotBand? = nil
    ) -> PlotSeries {
        PlotSeries(
            name, x: x, y: y, color: color, dash: dash, lineWidth: lineWidth, smoothingWindow: smoothing, band: band)
    }

    /// Markers without a connecting line.
    public static func scatter(
        _ name: String, x: [Double], y: [Double], color: PlotColor? = nil, marker: MarkerShape = .circle
    ) -> PlotSeries {
        PlotSeries(name, x: x, y: y, color: color, showsLine: false, marker: marker)
    }

    /// The mean across `runs` (e.g. one per seed) as a line, with their min–max as a band. Each run
    /// is first smoothed when `smoothing` is set; at each index only the runs that have a finite value count.
    public static func meanAndRange(
        _ name: String, x: [Double], runs: [[Double]], color: PlotColor? = nil, smoothing: Int? = nil
    ) -> PlotSeries {
        let runs = smoothing.map { window in runs.map { movingAverage($0, window: window) } } ?? runs
        var mean: [Double] = []
        var lower: [Double] = []
        var upper: [Double] = []
        for i in x.indices {
            let values = runs.compactMap { i < $0.count && $0[i].isFinite ? $0[i] : nil }
            mean.append(values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count))
            lower.append(values.min() ?? .nan)
            upper.append(values.max() ?? .nan)
        }
        return PlotSeries(name, x: x, y: mean, color: color, band: PlotBand(lower: lower, upper: upper))
    }
}

/// A labelled horizontal or vertical line across the plot, e.g. a target return.
public struct ReferenceLine: Sendable {
    public enum Orientation: Sendable { case horizontal, vertical }

    public var orientation: Orientation
    public var value: Double
    public var label: String
    public var color: PlotColor
    public var dash: LineDash

    public static func horizontal(
        _ y: Double, label: String = "", color: PlotColor = .gray, dash: LineDash = .dashed
    ) -> ReferenceLine {
        ReferenceLine(orientation: .horizontal, value: y, label: label, color: color, dash: dash)
    }

    public static func vertical(
        _ x: Double, label: String = "", color: PlotColor = .gray, dash: LineDash = .dashed
    ) -> ReferenceLine {
        ReferenceLine(orientation: .vertical, value: x, label: label, color: color, dash: dash)
    }
}

/// A line/scatter chart of several series. Set the properties, `add` series and reference lines,
/// then `renderSVG()` or `write(to:)`.
public struct LinePlot: SVGRenderable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [PlotSeries] = []
    public var referenceLines: [ReferenceLine] = []
    public var xScale: AxisScale
    public var yScale: AxisScale
    /// Fixed axis ranges; nil (or a range the scale cannot show) fits the data, widened to round values.
    public var xRange: ClosedRange<Double>? = nil
    public var yRange: ClosedRange<Double>? = nil
    public var width: Double
    public var height: Double
    public var showsLegend = true
    public var showsGrid = true

    public init(
        title: String = "", xLabel: String = "", yLabel: String = "", xScale: AxisScale = .linear,
        yScale: AxisScale = .linear, width: Double = 720, height: Double = 440
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xScale = xScale
        self.yScale = yScale
        self.width = width
        self.height = height
    }

    public mutating func add(_ series: PlotSeries) { self.series.append(series) }

    public mutating func add(_ line: ReferenceLine) { referenceLines.append(line) }

    public func renderSVG() -> String {
        let colors = series.indices.map { series[$0].color ?? PlotColor.palette[$0 % PlotColor.palette.count] }
        var xs: [Double] = []
        var ys: [Double] = []
        for s in series {
            xs += s.x
            ys += s.y
            if let band = s.band { ys += band.lower + band.upper }
        }
        for line in referenceLines {
            if line.orientation == .horizontal { ys.append(line.value) } else { xs.append(line.value) }
        }
        let (x0, x1) = AxisMap.range(for: xs, scale: xScale, explicit: xRange)
        let (y0, y1) = AxisMap.range(for: ys, scale: yScale, explicit: yRange)
        let yTicks = AxisMap(scale: yScale, lower: y0, upper: y1, length: 1, inverted: true).ticks
        let legend = showsLegend ? legendEntries(colors) : []
        let area = plotArea(
            width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
            yTickLabels: tickLabels(yTicks), legend: legend)
        let xMap = AxisMap(scale: xScale, lower: x0, upper: x1, length: area.width, inverted: false)
        let yMap = AxisMap(scale: yScale, lower: y0, upper: y1, length: area.height, inverted: true)

        var canvas = SVGCanvas(width: width, height: height, title: title)
        canvas.drawTitle(title)
        canvas.drawYAxis(yMap, area: area, label: yLabel, grid: showsGrid)
        canvas.drawXAxis(xMap, area: area, label: xLabel, grid: showsGrid)
        canvas.clipped(x: area.x, y: area.y, width: area.width, height: area.height) { c in
            for (s, color) in zip(series, colors) {
                guard let band = s.band else { continue }
                let lower = segments(s.x, band.lower, xMap, yMap, alsoRequiring: band.upper)
                let upper = segments(s.x, band.upper, xMap, yMap, alsoRequiring: band.lower)
                for (low, high) in zip(lower, upper) where low.count > 1 {
                    c.polygon(high + low.reversed(), fill: color, opacity: band.opacity, cssClass: "band")
                }
            }
            for (s, color) in zip(series, colors) {
                if s.showsLine {
                    let smoothed = s.smoothingWindow.map { movingAverage(s.y, window: $0) }
                    for points in segments(s.x, s.y, xMap, yMap) {
                        c.polyline(
                            points, color: color, width: s.lineWidth, dash: s.dash,
                            opacity: smoothed == nil ? nil : 0.25,
                            cssClass: smoothed == nil ? "line" : "raw")
                    }
                    for points in smoothed.map({ segments(s.x, $0, xMap, yMap) }) ?? [] {
                        c.polyline(points, color: color, width: s.lineWidth, dash: s.dash, cssClass: "line")
                    }
                }
                if let shape = s.marker {
                    for point in segments(s.x, s.y, xMap, yMap).joined() {
                        c.marker(shape, x: point.x, y: point.y, size: 6, color: color)
                    }
                }
            }
            for line in referenceLines { c.drawReferenceLine(line, xMap: xMap, yMap: yMap) }
        }
        canvas.drawFrame(area)
        canvas.drawLegend(legend, x: area.maxX + 14, y: area.y)
        return canvas.render()
    }

    private func legendEntries(_ colors: [PlotColor]) -> [LegendEntry] {
        zip(series, colors).compactMap { s, color in
            s.name.isEmpty
                ? nil
                : LegendEntry(
                    name: s.name, color: color, dash: s.dash, lineWidth: s.lineWidth, showsLine: s.showsLine,
                    marker: s.marker, hasBand: s.band != nil)
        }
    }
}

/// The pixel points of `(x[i], y[i])`, split into runs at points the axes cannot show
/// (or where `alsoRequiring[i]` cannot be shown, so paired band edges split alike).
private func segments(
    _ x: [Double], _ y: [Double], _ xMap: AxisMap, _ yMap: AxisMap, alsoRequiring other: [Double]? = nil
) -> [[(x: Double, y: Double)]] {
    var result: [[(x: Double, y: Double)]] = []
    var current: [(x: Double, y: Double)] = []
    for i in 0..<min(x.count, y.count, other?.count ?? .max) {
        if let px = xMap.position(x[i]), let py = yMap.position(y[i]),
            other.map({ yMap.position($0[i]) != nil }) ?? true
        {
            current.append((px, py))
        } else if !current.isEmpty {
            result.append(current)
            current = []
        }
    }
    if !current.isEmpty { result.append(current) }
    return result
}

extension SVGCanvas {
    /// A reference line across the clipped data area, labelled at its left or top end.
    fileprivate mutating func drawReferenceLine(_ line: ReferenceLine, xMap: AxisMap, yMap: AxisMap) {
        switch line.orientation {
        case .horizontal:
            guard let y = yMap.position(line.value) else { return }
            self.line(0, y, xMap.length, y, color: line.color, width: 1.25, dash: line.dash, cssClass: "reference")
            if !line.label.isEmpty {
                text(line.label, x: 6, y: y - 9, size: 11, anchor: "start", color: line.color, halo: true)
            }
        case .vertical:
            guard let x = xMap.position(line.value) else { return }
            self.line(x, 0, x, yMap.length, color: line.color, width: 1.25, dash: line.dash, cssClass: "reference")
            if !line.label.isEmpty {
                let nearRight = x > xMap.length * 0.8
                text(
                    line.label, x: nearRight ? x - 5 : x + 5, y: 12, size: 11, anchor: nearRight ? "end" : "start",
                    color: line.color, halo: true)
            }
        }
    }
}
