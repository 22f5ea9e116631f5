// PlotSVGTests.swift
//
// Structural tests of the rendered SVG: every document must parse as XML, and the
// elements the plots draw (lines, bands, cells, bars) are counted by their class.

import Foundation
import Testing

@testable import NudgeReport

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// One parsed element: its name, attributes and the text directly inside it.
struct ParsedElement {
    var name: String
    var attributes: [String: String]
    var text: String

    var cssClass: String? { attributes["class"] }
    /// The `points` attribute as pairs.
    var pointCount: Int { attributes["points"]?.split(separator: " ").count ?? 0 }
}

private final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [ParsedElement] = []
    private var open: [Int] = []

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        open.append(elements.count)
        elements.append(ParsedElement(name: elementName, attributes: attributeDict, text: ""))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }

    func parser(
        _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
    ) {
        open.removeLast()
    }
}

/// All elements of `svg` in document order; throws if it is not well-formed XML.
func parseSVG(_ svg: String) throws -> [ParsedElement] {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = ElementCollector()
    parser.delegate = collector
    guard parser.parse() else {
        throw parser.parserError ?? CocoaError(.propertyListReadCorrupt)
    }
    return collector.elements
}

private func elements(_ all: [ParsedElement], _ name: String, class cssClass: String) -> [ParsedElement] {
    all.filter { $0.name == name && $0.cssClass == cssClass }
}

@Test func linePlotParsesWithOnePolylinePerSeries() throws {
    var plot = LinePlot(title: "Return", xLabel: "step", yLabel: "return")
    plot.add(.line("PPO", x: [0, 1, 2, 3, 4], y: [0, 10, 20, 15, 30]))
    plot.add(.line("DQN", x: [0, 1, 2], y: [5, 6, 7], dash: .dashed))
    plot.add(.horizontal(25, label: "target"))
    let svg = plot.renderSVG()
    let all = try parseSVG(svg)
    #expect(all.first?.name == "svg")
    let lines = elements(all, "polyline", class: "line")
    #expect(lines.map(\.pointCount) == [5, 3])
    #expect(lines[0].attributes["stroke"] == PlotColor.palette[0].hexString)
    #expect(lines[1].attributes["stroke"] == PlotColor.palette[1].hexString)
    #expect(lines[1].attributes["stroke-dasharray"] == "6 4")
    #expect(elements(all, "text", class: "legend").map(\.text) == ["PPO", "DQN"])
    #expect(elements(all, "line", class: "reference").count == 1)
    #expect(all.contains { $0.name == "text" && $0.text == "target" })
    #expect(!svg.contains("<script") && !svg.contains("href"))
}

@Test func titleAndLabelsAreEscaped() throws {
    var plot = LinePlot(title: "a < b & c > d", xLabel: "\"x\" 'y'", yLabel: "bad\u{1}char")
    plot.add(.line("<series>", x: [1, 2], y: [1, 2]))
    let svg = plot.renderSVG()
    #expect(svg.contains("a &lt; b &amp; c &gt; d"))
    #expect(!svg.contains("<series>"))
    let all = try parseSVG(svg)
    #expect(elements(all, "text", class: "title").first?.text == "a < b & c > d")
    #expect(all.first { $0.name == "title" }?.text == "a < b & c > d")
    #expect(elements(all, "text", class: "axis-label").map(\.text) == ["badchar", "\"x\" 'y'"])
    #expect(elements(all, "text", class: "legend").first?.text == "<series>")
}

@Test func nonFiniteValuesBreakTheLine() throws {
    var plot = LinePlot()
    plot.add(.line("loss", x: [0, 1, 2, 3, 4, 5], y: [1, 2, .nan, 4, 5, .infinity]))
    let lines = elements(try parseSVG(plot.renderSVG()), "polyline", class: "line")
    #expect(lines.map(\.pointCount) == [2, 2])
}

@Test func logAxesSkipNonPositiveValues() throws {
    var plot = LinePlot(xScale: .log, yScale: .log)
    plot.add(.line("lr", x: [0, 1, 10, 100, 1000], y: [5, -1, 0.1, 10, 100]))
    plot.add(.scatter("pts", x: [-1, 0, 1], y: [1, 1, 1]))
    plot.add(.horizontal(-3, label: "invisible"))
    let all = try parseSVG(plot.renderSVG())
    // x = 0 and y = -1 are dropped; the remaining run is (10, 0.1), (100, 10), (1000, 100).
    #expect(elements(all, "polyline", class: "line").map(\.pointCount) == [3])
    #expect(elements(all, "circle", class: "marker").count == 1)
    #expect(elements(all, "line", class: "reference").isEmpty)
    let ticks = elements(all, "text", class: "tick").map(\.text)
    #expect(ticks.contains("0.1") && ticks.contains("100") && ticks.contains("1k"))

    // A log axis with no usable data still renders.
    var empty = LinePlot(yScale: .log)
    empty.add(.line("zeros", x: [0, 1], y: [0, 0]))
    #expect(elements(try parseSVG(empty.renderSVG()), "polyline", class: "line").isEmpty)
}

@Test func smoothingAndBands() throws {
    var plot = LinePlot()
    plot.add(.line("raw+smooth", x: [0, 1, 2, 3], y: [0, 4, 0, 4], smoothing: 2))
    plot.add(.meanAndRange("seeds", x: [0, 1, 2], runs: [[1, 2, 3], [3, 4, .nan], [2, 3]]))
    let all = try parseSVG(plot.renderSVG())
    #expect(elements(all, "polyline", class: "raw").map { $0.attributes["stroke-opacity"] } == ["0.25"])
    #expect(elements(all, "polyline", class: "line").map(\.pointCount) == [4, 3])
    let bands = elements(all, "polygon", class: "band")
    #expect(bands.map(\.pointCount) == [6])

    let summary = PlotSeries.meanAndRange("s", x: [0, 1, 2], runs: [[1, 2, 3], [3, 4, .nan], [2, 3]])
    #expect(summary.y == [2, 3, 3])
    #expect(summary.band?.lower == [1, 2, 3])
    #expect(summary.band?.upper == [3, 4, 3])
}

@Test func heatmapCellsValuesAndOverlay() throws {
    var map = Heatmap(
        title: "V", values: [[0, 0.5, 1, 2], [1, .nan, 3, 4], [-1, 0, 0.25, 8]],
        rowLabels: ["r0", "r1", "r2"], columnLabels: ["a", "b", "c", "d"])
    map.showsValues = true
    map.overlay = [["↑", "→", "↓", "←"], ["", "", "↑"]]
    let all = try parseSVG(map.renderSVG())
    #expect(elements(all, "rect", class: "cell").count == 12)
    let values = elements(all, "text", class: "value").map(\.text)
    #expect(values.count == 11)  // the NaN cell has no value
    #expect(values.prefix(4) == ["0", "0.5", "1", "2"])
    #expect(elements(all, "text", class: "overlay").map(\.text) == ["↑", "→", "↓", "←", "↑"])
    #expect(elements(all, "text", class: "tick").map(\.text).starts(with: ["r0", "r1", "r2", "a", "b", "c", "d"]))
    #expect(elements(all, "rect", class: "colorbar").count == 48)
    #expect(map.valueRange == (-1, 8))

    let diverging = Heatmap(values: [[-2, 1]], colorScale: .diverging)
    #expect(diverging.valueRange == (-2, 2))
}

@Test func barChartBarsAndErrorBars() throws {
    var chart = BarChart(title: "Final return", yLabel: "return", categories: ["CartPole", "Acrobot", "Pendulum"])
    chart.add(BarSeries("PPO", values: [480, -90, .nan], errors: [12, 8, 1]))
    chart.add(BarSeries("DQN", values: [410, -110, -300]))
    chart.showsValues = true
    let all = try parseSVG(chart.renderSVG())
    #expect(elements(all, "rect", class: "bar").count == 5)
    #expect(elements(all, "path", class: "errorbar").count == 2)
    #expect(elements(all, "text", class: "value").map(\.text) == ["480", "-90", "410", "-110", "-300"])
    #expect(elements(all, "text", class: "legend").map(\.text) == ["PPO", "DQN"])
}

@Test func figureNestsPanels() throws {
    var a = LinePlot(title: "A", width: 300, height: 200)
    a.add(.line("x", x: [0, 1], y: [0, 1]))
    let b = BarChart(title: "B", categories: ["p"], width: 400, height: 250)
    let figure = Figure(title: "Both", columns: 2, panels: [a, b, a])
    #expect(figure.width == 700 && figure.height == 32 + 250 + 200)
    let all = try parseSVG(figure.renderSVG())
    #expect(all.filter { $0.name == "svg" && $0.attributes["xmlns"] != nil }.count == 4)
    #expect(elements(all, "polyline", class: "line").count == 2)
}

@Test func writeReplacesFileAtomically() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plot-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("plot.svg")
    try "old".write(to: url, atomically: false, encoding: .utf8)
    var plot = LinePlot(title: "t")
    plot.add(.line("y", x: [0, 1], y: [1, 2]))
    try plot.write(to: url)
    #expect(try String(contentsOf: url, encoding: .utf8) == plot.renderSVG())
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["plot.svg"])
}
