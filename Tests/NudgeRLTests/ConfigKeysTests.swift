// The deep-RL config keys: defaults round-trip through the schema, a config file changes exactly
// the keys it names (with CleanRL's names), 0 turns an optional threshold off, PPO's defaults follow
// the action space, and a written config.toml reads back to the same configuration.

import Foundation
import Nudge
import Testing
import NudgeConfig
@testable import NudgeRL

@Suite("Deep-RL config keys") struct ConfigKeysTests {
    @Test func defaultsRoundTripAndKeysApply() throws {
        let schema = try RLRunner.schema(algorithm: "ppo", environmentID: "CartPole-v1")
        let defaults = PPOConfig.configKeys.apply(schema.defaults, to: PPOConfig())
        #expect(defaults.learningRate == PPOConfig().learningRate && defaults.hiddenSizes == [64, 64] && defaults.targetKL == nil)
        // Float defaults are written as their shortest decimal form.
        #expect(schema.defaults.double("gamma") == 0.99 && schema.defaults.double("clip_coef") == 0.2)

        let file = try ConfigDocument.parseTOML("learning_rate = 1e-3\nhidden_sizes = [32, 16]\ntarget_kl = 0.02\nanneal_lr = false\n", name: "ppo.toml")
        let resolved = try schema.resolve(file: file, overrides: ["seed=7", "num_envs=2"])
        let c = PPOConfig.configKeys.apply(resolved, to: PPOConfig())
        #expect(c.learningRate == 1e-3 && c.hiddenSizes == [32, 16] && c.targetKL == 0.02 && !c.annealLearningRate)
        #expect(c.seed == 7 && c.numEnvs == 2 && c.numSteps == PPOConfig().numSteps)

        // config.toml as a run writes it reads back to the same configuration.
        let text = TOMLWriter.render(resolved.asConfigTable())
        let again = try schema.resolve(file: try ConfigDocument.parseTOML(text, name: "config.toml"))
        #expect(again == resolved)

        // CleanRL's continuous-control defaults on a Box action space.
        let continuous = try RLRunner.schema(algorithm: "ppo", environmentID: "Pendulum-v1").defaults
        #expect(continuous.int("num_envs") == 1 && continuous.int("num_steps") == 2048 && continuous.bool("normalize_observations"))
    }

    @Test func badKeysAndValuesAreNamed() throws {
        let schema = try RLRunner.schema(algorithm: "dqn", environmentID: "CartPole-v1")
        #expect(throws: ConfigError.self) { try schema.resolve(overrides: ["learnin_rate=1"]) }
        let error = #expect(throws: ConfigError.self) { try schema.resolve(overrides: ["start_e=2"]) }
        #expect(error?.description.contains("start_e") == true)
        #expect(throws: EnvironmentError.self) { try RLRunner.schema(algorithm: "trpo", environmentID: "CartPole-v1") }
        for algorithm in RLRunner.algorithms { _ = try RLRunner.schema(algorithm: algorithm, environmentID: "CartPole-v1") }
    }
}
