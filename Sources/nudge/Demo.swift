// `nudge demo`: the main job. It walks the line as far as it is built: the engine fits a small
// network (with a run directory, progress, metrics and a checkpoint), then a 5-armed bandit
// (Thompson sampling vs REINFORCE), Q-learning on the GridWorld and FrozenLake against the exact
// optimum. Everything lands under runs/demo/.

import ArgumentParser
import Foundation
import Nudge

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk the line end to end: engine, bandits, tabular RL (writes runs/demo).")

    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Training steps.") var steps = 2000
    @Option(help: "Output directory.") var output = "runs/demo"
    @Flag(help: "A shorter run.") var quick = false

    func run() throws {
        let root = URL(fileURLWithPath: output)
        print("1/4  Engine: fit y = sin(2x) + 0.5x with an MLP (Adam, cosine schedule)")
        try fitRegression(at: root.appendingPathComponent("regression"))
        print("2/4  Bandit: Thompson sampling vs REINFORCE, 5 Bernoulli arms p = 0.1…0.9, T = 500")
        report(try BanditLab.thompsonVsReinforce(runs: quick ? 50 : 200, seed: seed, output: root.appendingPathComponent("bandit")))
        print("3/4  Tabular: Q-learning on the 4x4 GridWorld")
        report(try TabularLab.gridWorld(seed: seed, output: root.appendingPathComponent("gridworld")))
        print("4/4  Tabular: FrozenLake 4x4 slippery, the exact optimum vs Q-learning")
        report(try TabularLab.frozenLake(episodes: quick ? 5000 : 20_000, evaluationEpisodes: quick ? 2000 : 10_000, seed: seed,
                                         output: root.appendingPathComponent("frozenlake")))
        print("Done: runs under \(root.path) (metrics.jsonl, metrics.csv, config.toml, SVG plots)")
    }

    func fitRegression(at directory: URL) throws {
        let total = quick ? 300 : steps
        let config = ConfigTable([
            ("task", .string("fit y = sin(2x) + 0.5x on [-2, 2] with an MLP")),
            ("seed", .int(Int(seed))), ("steps", .int(total)),
            ("model", .table(ConfigTable([("sizes", .array([1, 64, 64, 1].map { .int($0) })), ("activation", .string("tanh"))]))),
            ("optimizer", .table(ConfigTable([("name", .string("adam")), ("learning_rate", .double(3e-3))]))),
        ])
        let run = try RunDirectory.create(at: directory, config: config, mode: .overwrite)
        var rng = RandomGenerator(seed: seed)
        var dataRNG = rng.derive(stream: 1)
        let model = MLP(sizes: [1, 64, 64, 1], activation: .tanh, using: &rng)
        let x = Tensor.uniform([256, 1], low: -2, high: 2, using: &dataRNG)
        let y = x.map { sin(2 * $0) + 0.5 * $0 }
        let schedule = LearningRateSchedule.cosine(peak: 3e-3, final: 3e-4, steps: total, warmup: 50)
        let optimizer = Adam(learningRate: schedule(0))
        let progress = ProgressReporter(total: total, label: "demo")
        var loss: Float = .nan
        for step in 0..<total {
            optimizer.learningRate = schedule(step)
            var (value, grads) = valueAndGrad(model) { m in mseLoss(m(x), y) }
            let norm = clipGradientNorm(&grads, maxNorm: 1)
            optimizer.update(model, gradients: grads)
            loss = value.item()
            if step % 10 == 0 || step == total - 1 {
                try run.log(step: step, [("loss", Double(loss)), ("grad_norm", Double(norm)),
                                         ("learning_rate", Double(optimizer.learningRate))])
                progress.update(completed: step + 1, metrics: [("loss", Double(loss))])
            }
        }
        progress.finish()
        try Checkpoint.save(model: model, optimizer: optimizer, step: total, to: run.checkpointURL(name: "latest"))
        run.close()
        print(String(format: "  final loss %.5f after %d steps; checkpoint in %@", loss, total, run.checkpointURL(name: "latest").path))
    }
}
