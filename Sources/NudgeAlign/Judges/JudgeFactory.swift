// One place that turns a section's judge keys into a `PairwiseJudge`, for every command that labels
// or compares completions with a judge (`nudge eval`'s win rate, `nudge rm`'s RLAIF pairs, online
// DPO): `<section>.judge` picks the kind, the other `<section>.judge_*` keys configure it.

import Foundation
import NudgeConfig
import NudgeLM

/// The `<section>.judge*` config keys and the judge they build.
public enum JudgeKeys {
    /// The judge kinds this factory builds: the task's gold reward, an OpenAI-compatible HTTP endpoint,
    /// or a local model.
    public static let kinds = ["gold", "http", "local"]

    /// The keys under `section`; `judge` takes `choices` (callers may add their own kinds, e.g.
    /// "none" or "reward_model", and handle those before calling `pairwise`).
    public static func fields(_ section: String, choices: [String] = kinds, default kind: String = "gold") -> [ConfigField] {
        let s = section
        return [
            .choice("\(s).judge", choices, default: kind,
                    help: "Who compares completions: gold (the built-in task's verifiable reward), http (an OpenAI-compatible /v1/chat/completions server at \(s).judge_url), local (the model file or directory \(s).judge_model, prompted with the judging template)."),
            .string("\(s).judge_url", "", help: "http judge: the server's base URL, e.g. http://127.0.0.1:8080/v1."),
            .string("\(s).judge_model", "", help: "http judge: the model name the server expects; local judge: a model directory or .gguf file."),
            .string("\(s).judge_api_key_env", "", help: "http judge: the environment variable holding the API key (the key itself is never written to config.toml); empty: no key."),
            .double("\(s).judge_timeout", 60, above: 0, help: "http judge: seconds before a request times out."),
            .int("\(s).judge_retries", 3, min: 0, help: "http judge: retries (exponential backoff with jitter) after a timeout, a connection error, HTTP 429/5xx or an unparseable reply."),
            .int("\(s).judge_concurrency", 4, min: 1, help: "http judge: requests in flight at once."),
            .string("\(s).judge_extra_body", "", help: "http judge: extra request fields as a JSON object, e.g. {\"grammar\": \"root ::= [01]\"} (llama.cpp) or {\"guided_choice\": [\"0\", \"1\"]} (vLLM)."),
            .bool("\(s).judge_cache", true, help: "http judge: keep answers in judge_cache.jsonl in the run directory, so a resumed run re-asks nothing."),
        ]
    }

    /// The HTTP judge's settings from the keys under `section`.
    public static func httpConfig(_ config: ResolvedConfig, section s: String, seed: UInt64, cacheDirectory: URL?) -> HTTPJudgeConfig {
        var http = HTTPJudgeConfig(baseURL: config.string("\(s).judge_url"), model: config.string("\(s).judge_model"),
                                   apiKeyEnvironmentVariable: config.string("\(s).judge_api_key_env"))
        http.timeout = config.double("\(s).judge_timeout")
        http.retries = config.int("\(s).judge_retries")
        http.concurrency = config.int("\(s).judge_concurrency")
        http.extraBody = config.string("\(s).judge_extra_body")
        http.seed = seed
        if config.bool("\(s).judge_cache"), let cacheDirectory { http.cacheFile = cacheDirectory.appendingPathComponent("judge_cache.jsonl") }
        return http
    }

    /// The pairwise judge `<section>.judge` names. `gold` is the reward used for `gold` (nil: the built-in
    /// tasks' verifiable reward); `cacheDirectory` holds the HTTP judge's answer cache (nil: memory only).
    ///
    /// - Throws: `RunSetupError` naming the key for a missing URL or model, or a kind this factory does not build.
    public static func pairwise(_ config: ResolvedConfig, section s: String, seed: UInt64, gold: (any RewardFunction)? = nil,
                                cacheDirectory: URL? = nil) throws -> any PairwiseJudge {
        switch config.string("\(s).judge") {
        case "gold":
            return RewardJudge(gold ?? ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) })
        case "http":
            guard !config.string("\(s).judge_url").isEmpty else { throw RunSetupError("\(s).judge = http needs \(s).judge_url (e.g. http://127.0.0.1:8080/v1)") }
            guard !config.string("\(s).judge_model").isEmpty else { throw RunSetupError("\(s).judge = http needs \(s).judge_model (the model name the server serves)") }
            do { return try HTTPJudge(httpConfig(config, section: s, seed: seed, cacheDirectory: cacheDirectory)) } catch let error as RunSetupError {
                throw RunSetupError("\(s).\(error.message)")
            }
        case "local":
            let path = config.string("\(s).judge_model")
            guard !path.isEmpty else { throw RunSetupError("\(s).judge = local needs \(s).judge_model (a model directory or .gguf file)") }
            let (model, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: path))
            model.freeze()
            return try LocalModelJudge(model: model, tokenizer: tokenizer, name: "local:\(URL(fileURLWithPath: path).lastPathComponent)", seed: seed)
        case let other:
            throw RunSetupError("\(s).judge: this command cannot build a '\(other)' judge here; expected one of \(kinds.joined(separator: ", "))")
        }
    }
}

/// How a batch of pairwise verdicts came out: TRL's win rate (the share of judged pairs whose first
/// completion won), with ties and failures counted apart.
public struct WinRate: Sendable, Equatable {
    public var wins = 0, losses = 0, ties = 0
    /// The rows that got no verdict, with why.
    public var failures: [JudgeFailure] = []

    public init(_ verdicts: [PairwiseVerdict]) {
        for verdict in verdicts {
            switch verdict {
            case .first: wins += 1
            case .second: losses += 1
            case .tie: ties += 1
            case .failed(let failure): failures.append(failure)
            }
        }
    }

    /// Pairs with a verdict.
    public var judged: Int { wins + losses + ties }
    /// Wins over judged pairs (NaN with none); a tie counts half, as in most arena tallies.
    public var winRate: Double { judged == 0 ? .nan : (Double(wins) + 0.5 * Double(ties)) / Double(judged) }
}
