// `nudge report`: a self-contained HTML page for one run directory, or a comparison of several.

import ArgumentParser
import Foundation
import Nudge

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report of a run, or compare several runs.",
        discussion: """
        One run directory: writes RUN_DIR/report.html with a curve per metric in metrics.jsonl, \
        the final values, the run's SVG plots, samples.jsonl (if any) and config.toml.

        Several: writes runs/compare.html with one plot per metric (a line per run) and a table \
        of each run's final values.

        The page is self-contained: inline CSS and SVG, no JavaScript, nothing fetched.
        """)

    @Argument(help: ArgumentHelp("Run directories (each with a metrics.jsonl).", valueName: "run-dir"))
    var runs: [String]

    @Option(help: "Output HTML file (default: RUN_DIR/report.html for one run, runs/compare.html for several).")
    var output: String?

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one run directory") }
    }

    func run() throws {
        let directories = runs.map { URL(fileURLWithPath: $0, isDirectory: true) }
        let destination = try HTMLReport.write(runs: directories, to: output.map { URL(fileURLWithPath: $0) })
        print("Wrote \(destination.path)")
    }
}
