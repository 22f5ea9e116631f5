// HTMLReport.swift
//
// `report.html`: one self-contained page per run (or per comparison of runs) that
// opens from disk anywhere: CSS and SVG plots are inline, there is no JavaScript
// and nothing is fetched. All text that comes from data (config, prompts,
// completions, metric names) is HTML-escaped; only SVG rendered by the plot types
// (or run-directory SVG files, embedded as `<img>` data URIs, where scripts cannot
// run) is inserted as markup.
//
//     var page = HTMLReport(title: "PPO on CartPole")
//     page.notes.append("Seed 1, 100k steps.")
//     page.addPlot(returnPlot, caption: "Episodic return")
//     page.finalMetrics = [("charts/episodic_return", 500)]
//     try page.write(to: run.url.appendingPathComponent("report.html"))
//
// `HTMLReport.forRun(_:)` and `HTMLReport.compare(runs:)` build pages from run
// directories (config.toml, metrics.jsonl, optional samples.jsonl and *.svg).
// `samples.jsonl` holds one JSON object per sample:
// `{"step": 10, "prompt": "...", "completion": "...", "reward": 0.5}` (`reward` may be null or absent).

import Foundation
import NudgeConfig

/// A run directory or file that a report could not use; the message names the path.
public enum HTMLReportError: Error, CustomStringConvertible, Sendable {
    /// `compare(runs:)` was given no runs.
    case noRuns
    /// The run directory does not exist, or is not a directory.
    case notADirectory(URL)
    /// The run directory has no `metrics.jsonl`; the URL is the missing file.
    case missingMetrics(URL)
    /// A line of `samples.jsonl` is malformed.
    case malformedSample(file: URL, line: Int, reason: String)

    public var description: String {
        switch self {
        case .noRuns: "no run directories given"
        case .notADirectory(let url): "not a run directory (missing or not a directory): \(url.path)"
        case .missingMetrics(let url): "no metrics.jsonl in run directory: \(url.path) does not exist"
        case .malformedSample(let file, let line, let reason): "\(file.path):\(line): \(reason)"
        }
    }
}

/// A self-contained HTML page: title, notes, final metrics, images and plots, sample
/// completions, extra tables and the configuration, in that order (empty parts are left out).
public struct HTMLReport: Sendable {
    /// An inline plot: SVG markup plus an optional caption.
    public struct Plot: Sendable {
        /// One `<svg>` element, inserted verbatim (so it must come from the plot types, not from data).
        public var svg: String
        /// Text under the plot; empty for none.
        public var caption: String

        public init(svg: String, caption: String = "") {
            self.svg = svg
            self.caption = caption
        }
    }

    /// One generated completion shown in the samples table.
    public struct Sample: Sendable, Equatable {
        /// The training step the completion was generated at.
        public var step: Int
        public var prompt: String
        public var completion: String
        /// nil when the sample was not scored.
        public var reward: Double?

        public init(step: Int, prompt: String, completion: String, reward: Double?) {
            self.step = step
            self.prompt = prompt
            self.completion = completion
            self.reward = reward
        }
    }

    /// A plain table of text cells (escaped when rendered).
    public struct Table: Sendable {
        /// The section heading above the table.
        public var title: String
        /// Column headings.
        public var header: [String]
        /// Cells, row by row.
        public var rows: [[String]]
        /// Indices of columns that hold numbers (right-aligned).
        public var numericColumns: Set<Int>

        public init(title: String, header: [String], rows: [[String]], numericColumns: Set<Int> = []) {
            self.title = title
            self.header = header
            self.rows = rows
            self.numericColumns = numericColumns
        }
    }

    /// An SVG file shown as an image (e.g. a plot an experiment wrote into its run directory).
    public struct Image: Sendable {
        /// Text under the image (also its `alt` text).
        public var caption: String
        /// The SVG document's bytes, embedded as a `data:` URI.
        public var svgData: Data

        public init(caption: String, svgData: Data) {
            self.caption = caption
            self.svgData = svgData
        }
    }

    /// The page's `<title>` and heading.
    public var title: String
    /// Paragraphs shown under the title.
    public var notes: [String] = []
    /// Name/value pairs shown as the "Final metrics" table.
    public var finalMetrics: [(name: String, value: Double)] = []
    /// Inline SVG plots, shown in a grid after `images`.
    public var plots: [Plot] = []
    /// SVG files shown as images, first in the grid of curves.
    public var images: [Image] = []
    /// Rows of the "Sample completions" table.
    public var samples: [Sample] = []
    /// Extra tables, each in its own section.
    public var tables: [Table] = []
    /// The configuration as a key/value table (nested keys dotted).
    public var config: ConfigTable?
    /// Configuration files shown verbatim, e.g. each run's `config.toml`.
    public var configFiles: [(name: String, text: String)] = []

    /// An empty page titled `title`.
    public init(title: String) { self.title = title }

    /// Adds `plot`'s SVG rendering.
    public mutating func addPlot(_ plot: some SVGRenderable, caption: String = "") {
        plots.append(Plot(svg: plot.renderSVG(), caption: caption))
    }

    /// Adds a sample completion row.
    public mutating func addSample(step: Int, prompt: String, completion: String, reward: Double?) {
        samples.append(Sample(step: step, prompt: prompt, completion: completion, reward: reward))
    }

    /// Writes `render()` to `url` atomically, creating its directory if needed.
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(render(), to: url)
    }

    /// The whole HTML document.
    public func render() -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escapeHTML(title))</title>
            <style>\(Self.css)</style>
            </head>
            <body>
            <main>
            <h1>\(escapeHTML(title))</h1>

            """
        for note in notes { html += "<p class=\"note\">\(escapeHTML(note))</p>\n" }
        if !finalMetrics.isEmpty {
            html += renderTable(
                Table(
                    title: "Final metrics", header: ["Metric", "Value"],
                    rows: finalMetrics.map { [$0.name, formatNumber($0.value)] }, numericColumns: [1]),
                cssClass: "metrics")
        }
        if !plots.isEmpty || !images.isEmpty {
            html += "<section>\n<h2>Curves</h2>\n<div class=\"plots\">\n"
            // An experiment's own figures first: they are its key curves.
            for image in images {
                html += "<figure>\n<img alt=\"\(escapeHTML(image.caption))\" src=\"data:image/svg+xml;base64,"
                    + image.svgData.base64EncodedString() + "\">\n"
                html += "<figcaption>\(escapeHTML(image.caption))</figcaption>\n</figure>\n"
            }
            for plot in plots {
                html += "<figure>\n" + plot.svg
                if !plot.caption.isEmpty { html += "<figcaption>\(escapeHTML(plot.caption))</figcaption>\n" }
                html += "</figure>\n"
            }
            html += "</div>\n</section>\n"
        }
        if !samples.isEmpty { html += renderSamples() }
        for table in tables { html += renderTable(table, cssClass: "data") }
        if config != nil || !configFiles.isEmpty {
            html += "<section>\n<h2>Configuration</h2>\n"
            if let config {
                let rows = flattenConfig(config).map { [$0.key, TOMLWriter.formatValue($0.value)] }
                html += tableHTML(header: ["Key", "Value"], rows: rows, numericColumns: [], cssClass: "config")
            }
            for file in configFiles {
                // <details> collapses long configs without needing JavaScript.
                html += "<details\(configFiles.count == 1 ? " open" : "")>\n"
                html += "<summary>\(escapeHTML(file.name))</summary>\n"
                html += "<pre>\(escapeHTML(file.text))</pre>\n</details>\n"
            }
            html += "</section>\n"
        }
        html += "</main>\n</body>\n</html>\n"
        return html
    }

    private func renderSamples() -> String {
        var html = "<section>\n<h2>Sample completions</h2>\n<table class=\"samples\">\n"
        html += "<thead><tr><th class=\"num\">Step</th><th>Prompt</th><th>Completion</th>"
        html += "<th class=\"num\">Reward</th></tr></thead>\n<tbody>\n"
        for s in samples {
            html += "<tr><td class=\"num\">\(s.step)</td>"
            html += "<td><pre>\(escapeHTML(s.prompt))</pre></td>"
            html += "<td><pre>\(escapeHTML(s.completion))</pre></td>"
            html += "<td class=\"num\">\(s.reward.map(formatNumber) ?? "—")</td></tr>\n"
        }
        return html + "</tbody>\n</table>\n</section>\n"
    }

    private func renderTable(_ table: Table, cssClass: String) -> String {
        "<section>\n<h2>\(escapeHTML(table.title))</h2>\n"
            + tableHTML(header: table.header, rows: table.rows, numericColumns: table.numericColumns, cssClass: cssClass)
            + "</section>\n"
    }

    private func tableHTML(header: [String], rows: [[String]], numericColumns: Set<Int>, cssClass: String) -> String {
        func cell(_ tag: String, _ text: String, _ column: Int) -> String {
            let attribute = numericColumns.contains(column) ? " class=\"num\"" : ""
            return "<\(tag)\(attribute)>\(escapeHTML(text))</\(tag)>"
        }
        var html = "<div class=\"scroll\"><table class=\"\(cssClass)\">\n<thead><tr>"
        html += header.enumerated().map { cell("th", $1, $0) }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows { html += "<tr>" + row.enumerated().map { cell("td", $1, $0) }.joined() + "</tr>\n" }
        return html + "</tbody>\n</table></div>\n"
    }

    private static let css = """

        body { margin: 0; background: #f5f6f8; color: #1f2328;
          font: 15px/1.5 "DejaVu Sans", Helvetica, Arial, sans-serif; }
        main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
        h1 { font-size: 26px; margin: 8px 0 12px; }
        h2 { font-size: 19px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
        p.note { margin: 6px 0; max-width: 70em; }
        .plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
        figure { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
        figure svg, figure img { display: block; width: 100%; height: auto; }
        figcaption { font-size: 13px; color: #57606a; text-align: center; margin-top: 4px; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; }
        th, td { padding: 5px 12px; border-bottom: 1px solid #e6e8eb; text-align: left; vertical-align: top; }
        th { background: #eef1f4; font-weight: 600; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        table.samples { width: 100%; table-layout: fixed; }
        table.samples th:nth-child(1), table.samples th:nth-child(4) { width: 6em; }
        table.samples pre { margin: 0; max-height: 14em; overflow: auto; white-space: pre-wrap;
          overflow-wrap: anywhere; background: none; padding: 0; border: 0; }
        pre { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px;
          overflow-x: auto; font: 13px/1.45 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
        details { margin: 8px 0; }
        summary { cursor: pointer; font-weight: 600; }

        """
}

// MARK: - Pages built from run directories

extension HTMLReport {
    /// The report of one run directory: every metric in `metrics.jsonl` as a curve, the final
    /// values, the run's own `*.svg` plots, `samples.jsonl` (when present; at most
    /// `maxSamples` rows, spread evenly over the file) and `config.toml`.
    public static func forRun(_ directory: URL, maxSamples: Int = 100) throws -> HTMLReport {
        let run = try LoadedRun(directory)
        var page = HTMLReport(title: "Run report: \(run.url.lastPathComponent)")
        page.notes.append("Run directory: \(run.url.path)")
        page.notes.append(run.summary)
        let names = run.metricNames
        page.finalMetrics = names.compactMap { name in run.finalValue(name).map { (name: name, value: $0) } }
        for name in names {
            var plot = LinePlot(title: name, xLabel: "step", width: 560, height: 340)
            plot.showsLegend = false
            let (x, y) = run.series(name)
            plot.add(seriesForReport(name, x: x, y: y))
            plot.yScale = suggestedScale(y)
            page.addPlot(plot, caption: y.contains(where: \.isFinite) ? "" : "no finite values logged")
        }
        page.images = try run.svgFiles()
        page.samples = evenlySpaced(try run.samples(), count: maxSamples)
        if let text = run.configText { page.configFiles = [(name: "config.toml", text: text)] }
        return page
    }

    /// Writes the report of one run (by default to RUN_DIR/report.html) or the comparison of several
    /// (by default to runs/compare.html) to `destination`; returns where it was written.
    @discardableResult
    public static func write(runs: [URL], to destination: URL? = nil) throws -> URL {
        let page = runs.count == 1 ? try forRun(runs[0]) : try compare(runs: runs)
        let url = destination ?? (runs.count == 1 ? runs[0].appendingPathComponent("report.html") : URL(fileURLWithPath: "runs/compare.html"))
        try page.write(to: url)
        return url
    }

    /// A comparison of several runs: for every metric present in any run, one plot with a series
    /// per run; a table of each run's final values; and each run's `config.toml`.
    public static func compare(runs: [URL]) throws -> HTMLReport {
        guard !runs.isEmpty else { throw HTMLReportError.noRuns }
        let loaded = try runs.map(LoadedRun.init)
        let labels = distinctLabels(loaded.map(\.url))
        var page = HTMLReport(title: "Comparison of \(runs.count) runs")
        for (run, label) in zip(loaded, labels) { page.notes.append("\(label): \(run.summary) (\(run.url.path))") }

        let names = Set(loaded.flatMap(\.metricNames)).sorted()
        for name in names {
            var plot = LinePlot(title: name, xLabel: "step", width: 640, height: 400)
            var allY: [Double] = []
            for (i, (run, label)) in zip(loaded, labels).enumerated() {
                let (x, y) = run.series(name)
                guard !x.isEmpty else { continue }
                var series = seriesForReport(label, x: x, y: y)
                // Fixed colors per run, so a run has the same color in every plot.
                series.color = PlotColor.palette[i % PlotColor.palette.count]
                plot.add(series)
                allY += y
            }
            plot.yScale = suggestedScale(allY)
            page.addPlot(plot, caption: allY.contains(where: \.isFinite) ? "" : "no finite values logged")
        }
        var rows: [[String]] = [["last step"] + loaded.map { $0.rows.last.map { String($0.step) } ?? "—" }]
        for name in names {
            rows.append([name] + loaded.map { run in run.finalValue(name).map(formatNumber) ?? "—" })
        }
        page.tables.append(
            Table(title: "Final values", header: ["Metric"] + labels, rows: rows, numericColumns: Set(1...labels.count)))
        for (run, label) in zip(loaded, labels) {
            if let text = run.configText { page.configFiles.append((name: "\(label)/config.toml", text: text)) }
        }
        return page
    }

    /// A line for `y` against `x`: thinned to at most 2,000 points (so a long run keeps the page
    /// small), smoothed with a moving average once there are enough points to be noisy, and with
    /// markers when there are few (a single point draws no line).
    static func seriesForReport(_ name: String, x: [Double], y: [Double]) -> PlotSeries {
        var x = x
        var y = y
        let limit = 2000
        if x.count > limit {
            let every = (x.count + limit - 1) / limit
            let keep = Array(stride(from: 0, to: x.count - 1, by: every).prefix(limit - 1)) + [x.count - 1]
            x = keep.map { x[$0] }
            y = keep.map { y[$0] }
        }
        let smoothing = x.count >= 100 ? max(x.count / 50, 5) : nil
        var series = PlotSeries.line(name, x: x, y: y, smoothing: smoothing)
        if x.count <= 30 { series.marker = .circle }
        return series
    }

    /// At most `count` elements of `items`, evenly spaced and including the first and last.
    static func evenlySpaced<T>(_ items: [T], count: Int) -> [T] {
        guard items.count > count else { return items }
        guard count > 1 else { return Array(items.suffix(max(count, 0))) }
        return (0..<count).map { items[$0 * (items.count - 1) / (count - 1)] }
    }

    /// `.log` for positive data spanning more than three decades (e.g. a loss), else `.linear`.
    static func suggestedScale(_ values: [Double]) -> AxisScale {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max(), lo > 0 else { return .linear }
        return hi / lo > 1000 ? .log : .linear
    }

    /// Short names for runs: the last path component, with more parent components where needed
    /// to tell runs apart (`ppo/seed1` vs `dqn/seed1`).
    static func distinctLabels(_ urls: [URL]) -> [String] {
        let components = urls.map { $0.standardizedFileURL.pathComponents.filter { $0 != "/" } }
        let deepest = components.map(\.count).max() ?? 1
        for depth in 1...max(deepest, 1) {
            let labels = components.map { $0.suffix(depth).joined(separator: "/") }
            if Set(labels).count == labels.count { return labels }
        }
        return urls.enumerated().map { "\($0 + 1): \($1.lastPathComponent)" }
    }
}

/// A run directory read for a report.
struct LoadedRun {
    let url: URL
    let rows: [MetricRow]
    let configText: String?

    init(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HTMLReportError.notADirectory(url)
        }
        let metrics = url.appendingPathComponent("metrics.jsonl")
        guard FileManager.default.fileExists(atPath: metrics.path) else { throw HTMLReportError.missingMetrics(metrics) }
        self.url = url
        rows = try MetricsLog.read(metrics)
        let config = url.appendingPathComponent("config.toml")
        configText =
            FileManager.default.fileExists(atPath: config.path)
            ? try String(contentsOf: config, encoding: .utf8) : nil
    }

    /// Every metric name, sorted.
    var metricNames: [String] { MetricsLog.sortedColumns(rows) }

    /// Steps and values of the rows that logged `name`, in file order.
    func series(_ name: String) -> (x: [Double], y: [Double]) {
        var x: [Double] = []
        var y: [Double] = []
        for row in rows {
            if let value = row.values[name] {
                x.append(Double(row.step))
                y.append(value)
            }
        }
        return (x, y)
    }

    /// The last finite value logged for `name` (nil if there is none).
    func finalValue(_ name: String) -> Double? {
        rows.lazy.reversed().compactMap { $0.values[name] }.first { $0.isFinite }
    }

    /// One line about the run's length.
    var summary: String {
        guard let first = rows.first, let last = rows.last else { return "no metrics logged yet" }
        return "\(rows.count) logged steps (steps \(first.step)–\(last.step)), "
            + "\(metricNames.count) metrics, \(String(format: "%.1f", last.wallTime)) s of wall time"
    }

    /// The `*.svg` files in the run directory, sorted by name.
    func svgFiles() throws -> [HTMLReport.Image] {
        try FileManager.default.contentsOfDirectory(atPath: url.path)
            .filter { $0.hasSuffix(".svg") && !$0.hasPrefix(".") }
            .sorted()
            .map { HTMLReport.Image(caption: $0, svgData: try Data(contentsOf: url.appendingPathComponent($0))) }
    }

    /// The rows of `samples.jsonl` (empty when the file does not exist). A truncated last line
    /// (a crash mid-write) is skipped; other malformed lines throw, naming file and line.
    func samples() throws -> [HTMLReport.Sample] {
        let file = url.appendingPathComponent("samples.jsonl")
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        let text = try String(contentsOf: file, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var samples: [HTMLReport.Sample] = []
        for (i, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
            let isLast = i == lines.count - 1
            func fail(_ reason: String) throws {
                if !isLast { throw HTMLReportError.malformedSample(file: file, line: i + 1, reason: reason) }
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                try fail("not a JSON object")
                continue
            }
            guard let step = (object["step"] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }),
                let prompt = object["prompt"] as? String, let completion = object["completion"] as? String
            else {
                try fail("expected \"step\" (integer), \"prompt\" and \"completion\" (strings)")
                continue
            }
            let reward = (object["reward"] as? NSNumber)?.doubleValue
            samples.append(HTMLReport.Sample(step: step, prompt: prompt, completion: completion, reward: reward))
        }
        return samples
    }
}

/// The leaves of `table` with dotted keys (`ppo.clip`), in order.
func flattenConfig(_ table: ConfigTable, prefix: String = "") -> [(key: String, value: ConfigValue)] {
    table.entries.flatMap { entry -> [(key: String, value: ConfigValue)] in
        let key = prefix + TOMLWriter.formatKey(entry.key)
        if case .table(let sub) = entry.value, !sub.entries.isEmpty { return flattenConfig(sub, prefix: key + ".") }
        return [(key, entry.value)]
    }
}

/// `text` escaped for HTML content and quoted attributes (the same rules as XML).
func escapeHTML(_ text: String) -> String { escapeXML(text) }

/// A number for a table cell: up to 6 significant digits; NaN and ±∞ spelled out.
func formatNumber(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value < 0 ? "−∞" : "∞" }
    return String(format: "%.6g", value)
}
