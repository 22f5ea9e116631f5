// Learning runs (an agent or policy trained for thousands of steps until it beats a bar) are
// tagged `.learning` and left out of the default `swift test`, which stays a few minutes on two
// cores; CI runs them as their own step with NUDGE_LEARNING_TESTS=1 (see .ci/run):
//
//     NUDGE_LEARNING_TESTS=1 swift test --filter "DeepLearningTests|onlineTrainerRaisesAToyReward|onlineDPORaisesAToyReward|rftRaisesAToyReward"

import Foundation
import Testing

extension Tag {
    @Tag static var learning: Self
}

enum LearningRuns {
    static let enabled = ProcessInfo.processInfo.environment["NUDGE_LEARNING_TESTS"] == "1"
    static let reason: Comment = "learning run: set NUDGE_LEARNING_TESTS=1 (CI runs these as their own step)"
}
