// Environment ids, as Gymnasium's registry: `make("CartPole-v1")` builds the environment with its
// registered TimeLimit. Typed factories (`CartPole.make()`) are the fast path for training; the
// registry returns the type-erased form for the CLI, the checker and generic tools.

import Foundation

/// Registered environments by id.
public enum Registry {
    /// Every registered id with its factory.
    nonisolated(unsafe) private static var factories: [(String, () -> AnyEnvironment)] = [
        ("CartPole-v1", { AnyEnvironment(CartPole.make()) }),
        ("MountainCar-v0", { AnyEnvironment(MountainCar.make()) }),
        ("MountainCarContinuous-v0", { AnyEnvironment(MountainCarContinuous.make()) }),
        ("Acrobot-v1", { AnyEnvironment(Acrobot.make()) }),
        ("Pendulum-v1", { AnyEnvironment(Pendulum.make()) }),
        ("FrozenLake-v1", { AnyEnvironment(FrozenLake.make(mapName: .fourByFour, isSlippery: true)) }),
        ("FrozenLake8x8-v1", { AnyEnvironment(FrozenLake.make(mapName: .eightByEight, isSlippery: true)) }),
        ("CliffWalking-v1", { AnyEnvironment(CliffWalking.make()) }),
        ("Taxi-v3", { AnyEnvironment(Taxi.make()) }),
        ("GridWorld-v0", { AnyEnvironment(GridWorld.make()) }),
    ]
    private static let lock = NSLock()

    /// The registered ids in registration order.
    public static var ids: [String] { lock.withLock { factories.map(\.0) } }

    /// A new instance of the environment registered as `id`.
    public static func make(_ id: String) throws -> AnyEnvironment {
        let factory = lock.withLock { factories.first { $0.0 == id }?.1 }
        guard let factory else { throw EnvironmentError.unknownEnvironment(id: id, known: ids) }
        return factory()
    }

    /// One line per registered environment: its id, observation space and action space.
    public static func listing() throws -> String {
        try ids.map { id in
            let env = try make(id)
            return "\(id.padding(toLength: 26, withPad: " ", startingAt: 0)) obs \(env.observationSpace)  action \(env.actionSpace)"
        }.joined(separator: "\n")
    }

    /// Registers (or replaces) an environment under `id`.
    public static func register(_ id: String, _ factory: @escaping () -> AnyEnvironment) {
        lock.withLock {
            factories.removeAll { $0.0 == id }
            factories.append((id, factory))
        }
    }
}
