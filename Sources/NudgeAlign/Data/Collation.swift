// Collation.swift
//
// Rectangular batches from tokenized examples: padding (right for training,
// left for generation prompts) with attention masks, loss masks, position ids
// and segment ids; preference pairs as one batch of chosen rows followed by
// rejected rows; and packing of SFT examples into rows of at most `maxLength`
// tokens. A packed row records which example each token came from
// (`segmentIDs`, 1-based per row, 0 for padding) and restarts position ids at
// each example, so attention restricted to "same segment and not later"
// (`Batch.allowsAttention`) has no cross-contamination between examples.

import NudgeLM

/// Where padding goes.
public enum PaddingSide: String, Sendable, Hashable {
    /// After the tokens (training).
    case right
    /// Before the tokens (batched generation, so every prompt ends at the last column).
    case left
}

/// A rectangular batch: `rows × length` arrays.
public struct Batch: Sendable, Hashable {
    /// Token ids, padded with the pad id.
    public var inputIDs: [[Int]]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [[Int]]
    /// 1 for tokens the loss is computed on.
    public var lossMask: [[Int]]
    /// Position of each token within its segment (0 for padding).
    public var positionIDs: [[Int]]
    /// The 1-based segment (example) of each token within its row; 0 for padding.
    public var segmentIDs: [[Int]]
    /// For each row, the index in the input of the example of each segment.
    public var exampleIndices: [[Int]]

    /// The number of rows.
    public var rowCount: Int { inputIDs.count }
    /// The number of columns.
    public var length: Int { inputIDs.first?.count ?? 0 }

    /// Whether the token at `query` may attend to the token at `key` in `row`: both are real
    /// tokens of the same segment and `key` is not after `query` (block-diagonal causal mask).
    public func allowsAttention(row: Int, query: Int, key: Int) -> Bool {
        let segments = segmentIDs[row]
        return key <= query && segments[query] != 0 && segments[query] == segments[key]
    }

    /// The block-diagonal causal mask of `row`, `[query][key]`.
    public func attentionMatrix(row: Int) -> [[Bool]] {
        (0..<length).map { query in (0..<length).map { key in allowsAttention(row: row, query: query, key: key) } }
    }
}

/// Preference pairs as one batch: rows `0..<pairCount` are prompt + chosen, rows
/// `pairCount..<2 * pairCount` prompt + rejected, loss on the completions.
public struct PreferenceBatch: Sendable, Hashable {
    /// The number of pairs.
    public var pairCount: Int
    /// The chosen rows followed by the rejected rows.
    public var batch: Batch
}

extension GenerationConfig {
    /// Sampling settings for completions in `tokenizer`'s vocabulary: its EOS ends a row, and
    /// `Collator.padID` fills rows that finished.
    public init(tokenizer: any Tokenizer, maxNewTokens: Int, temperature: Float = 1, seed: UInt64 = 0) {
        self.init()
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        eosTokenID = tokenizer.eosTokenID
        padTokenID = Collator.padID(for: tokenizer)
        self.seed = seed
    }
}

/// Builds batches from tokenized examples.
public enum Collator {
    /// The pad id to use with `tokenizer`: its pad token, else its EOS, else 0 (the masks make
    /// the value irrelevant).
    public static func padID(for tokenizer: some Tokenizer) -> Int {
        tokenizer.padTokenID ?? tokenizer.eosTokenID ?? 0
    }

    /// Pads sequences to a common length (the longest, rounded up to `multiple` when given).
    ///
    /// - Parameters:
    ///   - sequences: the token ids of each row.
    ///   - lossMasks: per-row loss masks; a row whose mask is missing or not as long as its
    ///     sequence trains on every token.
    public static func pad(
        _ sequences: [[Int]], lossMasks: [[Int]]? = nil, padID: Int, side: PaddingSide = .right, multiple: Int? = nil
    ) -> Batch {
        var length = sequences.map(\.count).max() ?? 0
        if let multiple, multiple > 1, length % multiple != 0 { length += multiple - length % multiple }
        var batch = Batch(inputIDs: [], attentionMask: [], lossMask: [], positionIDs: [], segmentIDs: [], exampleIndices: [])
        for (index, ids) in sequences.enumerated() {
            let padding = length - ids.count
            let loss = lossMasks.flatMap { index < $0.count && $0[index].count == ids.count ? $0[index] : nil }
                ?? Array(repeating: 1, count: ids.count)
            func place(_ values: [Int], filler: Int) -> [Int] {
                let fill = Array(repeating: filler, count: padding)
                return side == .right ? values + fill : fill + values
            }
            batch.inputIDs.append(place(ids, filler: padID))
            batch.attentionMask.append(place(Array(repeating: 1, count: ids.count), filler: 0))
            batch.lossMask.append(place(loss, filler: 0))
            batch.positionIDs.append(place(Array(0..<ids.count), filler: 0))
            batch.segmentIDs.append(place(Array(repeating: 1, count: ids.count), filler: 0))
            batch.exampleIndices.append([index])
        }
        return batch
    }

    /// SFT examples right-padded, loss on their completion masks.
    public static func sft(_ examples: [SFTExample], padID: Int, multiple: Int? = nil) -> Batch {
        pad(examples.map(\.inputIDs), lossMasks: examples.map(\.completionMask), padID: padID, side: .right,
            multiple: multiple)
    }

    /// Prompts for generation, left-padded by default.
    public static func prompts(_ examples: [PromptExample], padID: Int, side: PaddingSide = .left) -> Batch {
        pad(examples.map(\.promptIDs), padID: padID, side: side)
    }

    /// Preference pairs as chosen rows then rejected rows, right-padded to one length.
    public static func preference(_ examples: [PreferenceExample], padID: Int, multiple: Int? = nil) -> PreferenceBatch {
        let completions = examples.map(\.chosenIDs) + examples.map(\.rejectedIDs)
        let prompts = examples.map(\.promptIDs) + examples.map(\.promptIDs)
        let sequences = zip(prompts, completions).map { $0 + $1 }
        let masks = zip(prompts, completions).map {
            Array(repeating: 0, count: $0.count) + Array(repeating: 1, count: $1.count)
        }
        var batch = pad(sequences, lossMasks: masks, padID: padID, side: .right, multiple: multiple)
        batch.exampleIndices = (0..<sequences.count).map { [$0 % max(1, examples.count)] }
        return PreferenceBatch(pairCount: examples.count, batch: batch)
    }
}

/// How `Packer` assigns examples to rows.
public enum PackingStrategy: String, Sendable, Hashable {
    /// In input order, starting a new row when the next example does not fit.
    case sequential
    /// Longest first, each into the fullest row it fits (best-fit decreasing, TRL's default).
    case bestFitDecreasing
}

/// Packs SFT examples into rows of at most `maxLength` tokens.
public enum Packer {
    /// Packs `examples` (each cut to `maxLength`, keeping its start) into rows of at most
    /// `maxLength` tokens, right-padded to `maxLength` with `padID`.
    ///
    /// Each row's `segmentIDs` number its examples 1, 2, … (0 for padding), `positionIDs` restart
    /// at 0 for each example, `exampleIndices` give the input index of each segment, and the loss
    /// mask is each example's completion mask.
    public static func pack(
        _ examples: [SFTExample], maxLength: Int, padID: Int, strategy: PackingStrategy = .bestFitDecreasing
    ) -> Batch {
        precondition(maxLength > 0, "maxLength must be positive")
        let lengths = examples.map { min($0.inputIDs.count, maxLength) }
        var rows: [[Int]] = []  // example indices per row
        var used: [Int] = []
        switch strategy {
        case .sequential:
            for (index, length) in lengths.enumerated() where length > 0 {
                if let last = used.indices.last, used[last] + length <= maxLength {
                    rows[last].append(index)
                    used[last] += length
                } else {
                    rows.append([index])
                    used.append(length)
                }
            }
        case .bestFitDecreasing:
            let order = lengths.indices.filter { lengths[$0] > 0 }.sorted { (lengths[$0], $1) > (lengths[$1], $0) }
            for index in order {
                let length = lengths[index]
                let best = used.indices.filter { used[$0] + length <= maxLength }.max { used[$0] < used[$1] }
                if let best {
                    rows[best].append(index)
                    used[best] += length
                } else {
                    rows.append([index])
                    used.append(length)
                }
            }
        }
        var batch = Batch(inputIDs: [], attentionMask: [], lossMask: [], positionIDs: [], segmentIDs: [], exampleIndices: rows)
        for members in rows {
            var ids: [Int] = [], loss: [Int] = [], positions: [Int] = [], segments: [Int] = []
            for (segment, index) in members.enumerated() {
                let length = lengths[index]
                ids += examples[index].inputIDs.prefix(length)
                loss += examples[index].completionMask.prefix(length)
                positions += 0..<length
                segments += Array(repeating: segment + 1, count: length)
            }
            let padding = maxLength - ids.count
            batch.inputIDs.append(ids + Array(repeating: padID, count: padding))
            batch.attentionMask.append(Array(repeating: 1, count: ids.count) + Array(repeating: 0, count: padding))
            batch.lossMask.append(loss + Array(repeating: 0, count: padding))
            batch.positionIDs.append(positions + Array(repeating: 0, count: padding))
            batch.segmentIDs.append(segments + Array(repeating: 0, count: padding))
        }
        return batch
    }
}
