// Held-out evaluation rows, chosen one way for the online trainers (nudge grpo|rloo|ppo) and for
// `nudge eval RUN_DIR`, so that the accuracy a run reports and the accuracy `nudge eval` measures
// again are on the same rows, none of which the policy trained on: either a separate file (or a
// split of a Hub dataset directory, e.g. its `test` shards), or a seeded sample of the training
// data's verifiable rows that is removed from training.

import Foundation
import NudgeTensor

/// Chooses held-out evaluation rows.
public enum HeldOut {
    /// What the sample's generator is seeded with, past the run's seed (kept as runs have used it).
    static let sampleSeedOffset: UInt64 = 4_242

    /// A seeded sample of at most `count` of `rows`' verifiable rows, and at most a tenth of them
    /// (so training keeps most of its data), with the rest as training rows, both in file order.
    public static func sample(_ rows: [DatasetRow], count: Int, seed: UInt64) -> (train: [DatasetRow], heldOut: [DatasetRow]) {
        var candidates = rows.indices.filter { rows[$0].isVerifiable }
        var rng = RandomGenerator(seed: seed &+ sampleSeedOffset)
        rng.shuffle(&candidates)
        let held = Set(candidates.prefix(min(max(count, 0), candidates.count / 10)))
        return (rows.indices.filter { !held.contains($0) }.map { rows[$0] }, held.sorted().map { rows[$0] })
    }

    /// The first `count` verifiable rows of the file at `url`, or of its `split` shards when it is a
    /// Hub dataset directory (`data/<split>-*.parquet`); reading stops once they are found.
    ///
    /// - Throws: `DatasetError` for an unreadable or malformed file, or a missing split.
    public static func rows(of url: URL, split: String, options: DatasetOptions, count: Int) throws -> [DatasetRow] {
        var options = options
        options.split = split
        var rows: [DatasetRow] = []
        guard count > 0 else { return rows }
        try JSONLDataset.forEachRow(url, options: options) { _, row in
            if row.isVerifiable { rows.append(row) }
            return rows.count < count
        }
        return rows
    }
}

extension DatasetRow {
    /// Whether the row carries an answer to check completions against.
    public var isVerifiable: Bool { if case .verifiable = self { true } else { false } }
}
