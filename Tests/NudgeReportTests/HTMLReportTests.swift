// HTMLReportTests.swift
//
// Tests of report.html: data is escaped, the page is self-contained (inline SVG,
// no scripts, no links out), and pages built from run directories (one run, or a
// comparison) contain the expected plots and tables, with errors naming paths.

import Foundation
import Testing

@testable import NudgeReport

private func temporaryDirectory() -> URL {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("nudge-html-tests-\(UUID().uuidString)", isDirectory: true)
}

/// `html` without the SVG namespace declarations, the one allowed URL.
private func withoutSVGNamespace(_ html: String) -> String {
    html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
}

private func occurrences(of needle: String, in haystack: String) -> Int {
    haystack.components(separatedBy: needle).count - 1
}

@Test func reportEscapesDataText() {
    var page = HTMLReport(title: "A <b>bold</b> & \"quoted\" title")
    page.notes.append("Note with <i>markup</i>")
    page.addSample(step: 3, prompt: "Say <hi> & 'bye'", completion: "<script>alert(1)</script>", reward: 0.5)
    page.addSample(step: 4, prompt: "p", completion: "c", reward: nil)
    page.finalMetrics = [(name: "loss<1>", value: 0.25), (name: "nan", value: .nan)]
    page.config = ["name": "</pre><script>", "ppo": ["clip": 0.2]]
    page.configFiles = [(name: "config.toml", text: "title = \"<script>\"\n")]
    page.tables = [HTMLReport.Table(title: "T<", header: ["a&b"], rows: [["<td>"]])]
    let html = page.render()
    #expect(!html.contains("<script"))
    #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    #expect(html.contains("Say &lt;hi&gt; &amp; &apos;bye&apos;"))
    #expect(html.contains("<h1>A &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; title</h1>"))
    #expect(html.contains("Note with &lt;i&gt;markup&lt;/i&gt;"))
    #expect(html.contains("loss&lt;1&gt;"))
    #expect(html.contains("<td class=\"num\">0.25</td>"))
    #expect(html.contains("<td class=\"num\">NaN</td>"))
    #expect(html.contains("<td>ppo.clip</td><td>0.2</td>"))
    #expect(html.contains("&lt;/pre&gt;&lt;script&gt;"))
    #expect(html.contains("<h2>T&lt;</h2>"))
    #expect(html.contains("<td>&lt;td&gt;</td>"))
    #expect(html.contains("<td class=\"num\">—</td>"))  // unscored sample
}

@Test func reportIsSelfContained() {
    var page = HTMLReport(title: "Curves")
    var plot = LinePlot(title: "loss", xLabel: "step")
    plot.add(.line("run", x: [1, 2, 3], y: [3, 2, 1]))
    page.addPlot(plot, caption: "Loss")
    page.images = [HTMLReport.Image(caption: "extra.svg", svgData: Data(plot.renderSVG().utf8))]
    let html = page.render()
    #expect(html.hasPrefix("<!DOCTYPE html>"))
    #expect(html.contains("<svg"))
    #expect(html.contains("<figcaption>Loss</figcaption>"))
    #expect(html.contains("src=\"data:image/svg+xml;base64,"))
    let rest = withoutSVGNamespace(html)
    #expect(!rest.contains("http://"))
    #expect(!rest.contains("https://"))
    #expect(!html.contains("<script"))
    #expect(!html.contains("<link"))
}

@Test func compareTwoRuns() throws {
    let root = temporaryDirectory()
    let a = try RunDirectory.create(at: root.appendingPathComponent("ppo/seed1"), config: ["algo": "ppo"])
    let b = try RunDirectory.create(at: root.appendingPathComponent("dqn/seed1"), config: ["algo": "dqn"])
    for step in 1...5 {
        try a.log(step: step, [("loss", 1 / Double(step)), ("charts/return", Double(step * 10))])
        try b.log(step: step * 2, [("loss", 2 / Double(step))])
    }
    a.close()
    b.close()

    let page = try HTMLReport.compare(runs: [a.url, b.url])
    #expect(page.title == "Comparison of 2 runs")
    // One plot per metric present in any run, a series per run that logged it.
    #expect(page.plots.count == 2)
    let returnPlot = try #require(page.plots.first { $0.svg.contains(">charts/return<") })
    let lossPlot = try #require(page.plots.first { $0.svg.contains(">loss<") })
    #expect(occurrences(of: "class=\"line\"", in: returnPlot.svg) == 1)
    #expect(occurrences(of: "class=\"line\"", in: lossPlot.svg) == 2)
    // Same last path component: labels take the parent directory too.
    #expect(lossPlot.svg.contains(">ppo/seed1<") && lossPlot.svg.contains(">dqn/seed1<"))

    let table = try #require(page.tables.first)
    #expect(table.header == ["Metric", "ppo/seed1", "dqn/seed1"])
    #expect(table.rows.first == ["last step", "5", "10"])
    #expect(table.rows.contains(["charts/return", "50", "—"]))
    #expect(table.rows.contains(["loss", "0.2", "0.4"]))
    #expect(page.configFiles.map(\.name) == ["ppo/seed1/config.toml", "dqn/seed1/config.toml"])
    #expect(page.configFiles.first?.text == "algo = \"ppo\"\n")

    let out = root.appendingPathComponent("out/compare.html")
    try page.write(to: out)
    let html = try String(contentsOf: out, encoding: .utf8)
    #expect(html.contains("<svg"))
    #expect(!withoutSVGNamespace(html).contains("http"))
    #expect(throws: HTMLReportError.self) { try HTMLReport.compare(runs: []) }

    // `nudge report`: one run's page beside it by default, a comparison where asked.
    #expect(try HTMLReport.write(runs: [a.url]) == a.url.appendingPathComponent("report.html"))
    #expect(FileManager.default.fileExists(atPath: a.url.appendingPathComponent("report.html").path))
    let compared = root.appendingPathComponent("both.html")
    #expect(try HTMLReport.write(runs: [a.url, b.url], to: compared) == compared)
    #expect(try String(contentsOf: compared, encoding: .utf8).contains("Comparison of 2 runs"))
}

@Test func singleRunReportReadsSamplesAndPlots() throws {
    let root = temporaryDirectory()
    let run = try RunDirectory.create(at: root, config: ["seed": 7])
    for step in 0..<150 { try run.log(step: step, [("reward", Double(step % 7)), ("loss", 100 * pow(0.9, Double(step)))]) }
    run.close()
    try "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>\n"
        .write(to: root.appendingPathComponent("extra.svg"), atomically: true, encoding: .utf8)
    let samples = """
        {"step": 10, "prompt": "2+2=", "completion": "<script>4</script>", "reward": 1}
        {"step": 20, "prompt": "3+3=", "completion": "6", "reward": null}
        {"step": 30, "prompt": "trunc
        """
    try samples.write(to: root.appendingPathComponent("samples.jsonl"), atomically: true, encoding: .utf8)

    let page = try HTMLReport.forRun(root)
    #expect(page.plots.count == 2)
    #expect(page.plots.allSatisfy { $0.svg.contains("class=\"raw\"") })  // 150 points: smoothed
    #expect(page.plots.first { $0.svg.contains(">loss<") }?.svg.contains(">1e-5<") == true)  // log axis
    #expect(page.finalMetrics.map(\.name) == ["loss", "reward"])
    #expect(page.finalMetrics.last?.value == Double(149 % 7))
    #expect(page.images.map(\.caption) == ["extra.svg"])
    #expect(page.samples == [
        HTMLReport.Sample(step: 10, prompt: "2+2=", completion: "<script>4</script>", reward: 1),
        HTMLReport.Sample(step: 20, prompt: "3+3=", completion: "6", reward: nil),
    ])
    #expect(page.configFiles.first?.text == "seed = 7\n")
    #expect(!page.render().contains("<script"))

    // A malformed line before the last one is an error naming the file and line.
    try "{\"step\": 1}\n{\"step\": 2, \"prompt\": \"\", \"completion\": \"\"}\n"
        .write(to: root.appendingPathComponent("samples.jsonl"), atomically: true, encoding: .utf8)
    do {
        _ = try HTMLReport.forRun(root)
        Issue.record("expected an error")
    } catch {
        #expect("\(error)".hasPrefix(root.appendingPathComponent("samples.jsonl").path + ":1: "))
    }
}

@Test func runErrorsNameThePath() throws {
    let root = temporaryDirectory()
    let missing = root.appendingPathComponent("no-such-run")
    do {
        _ = try HTMLReport.forRun(missing)
        Issue.record("expected an error")
    } catch {
        #expect("\(error)".contains(missing.path))
    }
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    do {
        _ = try HTMLReport.compare(runs: [root])
        Issue.record("expected an error")
    } catch {
        #expect("\(error)".contains(root.appendingPathComponent("metrics.jsonl").path))
    }
}

@Test func longSeriesAreThinnedAndSmoothed() {
    let x = (0..<4000).map(Double.init)
    let series = HTMLReport.seriesForReport("r", x: x, y: x)
    #expect(series.x.count <= 2000)
    #expect(series.x.first == 0 && series.x.last == 3999)
    #expect(series.smoothingWindow != nil)
    #expect(HTMLReport.seriesForReport("r", x: [1, 2], y: [1, 2]).smoothingWindow == nil)
    #expect(HTMLReport.seriesForReport("r", x: [1], y: [1]).marker == .circle)  // visible without a line
    #expect(series.marker == nil)
    #expect(HTMLReport.suggestedScale([1e-5, 1]) == .log)
    #expect(HTMLReport.suggestedScale([0, 1e5]) == .linear)
    #expect(HTMLReport.distinctLabels([URL(fileURLWithPath: "/r/a/s1"), URL(fileURLWithPath: "/r/b/s1")])
        == ["a/s1", "b/s1"])
}

@Test func samplesAreSpreadOverTheRun() {
    #expect(HTMLReport.evenlySpaced(Array(0..<10), count: 4) == [0, 3, 6, 9])
    #expect(HTMLReport.evenlySpaced(Array(0..<3), count: 4) == [0, 1, 2])
    #expect(HTMLReport.evenlySpaced(Array(0..<3), count: 1) == [2])
    #expect(HTMLReport.evenlySpaced(Array(0..<3), count: 0).isEmpty)
}
