// SyntheticTaskTests.swift
//
// Synthetic tasks: deterministic per seed, answers verifiably correct, gold
// reward ordering of preference pairs, and rows that tokenize.

import NudgeLM
import NudgeTensor
import Testing

@testable import NudgeAlign

@Suite("Synthetic tasks")
struct SyntheticTaskTests {
    static let tasks: [SyntheticTask] = [
        .addition(digits: 2), .addition(digits: 5), .multiplication(digits: 3), .reversal(length: 6), .sorting(length: 8),
    ]

    @Test("Deterministic per seed", arguments: tasks)
    func deterministic(task: SyntheticTask) {
        #expect(task.problems(count: 20, seed: 7) == task.problems(count: 20, seed: 7))
        #expect(task.problems(count: 20, seed: 7) != task.problems(count: 20, seed: 8))
        #expect(task.preferenceRows(count: 10, seed: 3) == task.preferenceRows(count: 10, seed: 3))
        #expect(task.unpairedRows(count: 10, seed: 3) == task.unpairedRows(count: 10, seed: 3))
    }

    @Test("Answers are verifiably correct")
    func answers() throws {
        for problem in SyntheticTask.addition(digits: 2).problems(count: 50, seed: 1) {
            let body = problem.prompt.dropFirst("What is ".count).dropLast()
            let parts = body.split(separator: " + ").compactMap { Int($0) }
            #expect(parts.count == 2 && parts.allSatisfy { (10...99).contains($0) })
            #expect(Int(problem.answer) == parts.reduce(0, +))
        }
        for problem in SyntheticTask.multiplication(digits: 3).problems(count: 50, seed: 1) {
            let parts = problem.prompt.dropFirst("What is ".count).dropLast().split(separator: " × ").compactMap { Int($0) }
            #expect(parts.count == 2 && parts.allSatisfy { (100...999).contains($0) })
            #expect(Int(problem.answer) == parts.reduce(1, *))
        }
        for problem in SyntheticTask.reversal(length: 6).problems(count: 20, seed: 1) {
            let word = problem.prompt.dropFirst("Reverse the letters: ".count)
            #expect(word.count == 6 && Set(word).count == 6)
            #expect(problem.answer == String(word.reversed()))
        }
        for problem in SyntheticTask.sorting(length: 8).problems(count: 20, seed: 1) {
            let word = problem.prompt.dropFirst("Sort the letters: ".count)
            #expect(problem.answer == String(word.sorted()))
        }
        #expect(SyntheticTask.answer(for: "What is 23 + 58?") == "81")
    }

    @Test("Gold reward: 1 for correct, closer is better, 0 for unknown")
    func goldReward() {
        #expect(SyntheticTask.goldReward(prompt: "What is 23 + 58?", completion: " 81\n") == 1)
        let near = SyntheticTask.goldReward(prompt: "What is 23 + 58?", completion: "80")
        let far = SyntheticTask.goldReward(prompt: "What is 23 + 58?", completion: "60")
        #expect(near < 0.5 && far < near && far > 0)
        #expect(SyntheticTask.goldReward(prompt: "What is 23 + 58?", completion: "eighty") == 0)
        #expect(SyntheticTask.goldReward(prompt: "Reverse the letters: abc", completion: "cba") == 1)
        #expect(SyntheticTask.goldReward(prompt: "Reverse the letters: abc", completion: "cab") < 0.5)
        #expect(SyntheticTask.goldReward(prompt: "Hello", completion: "x") == 0)
    }

    @Test("Preference pairs: chosen has strictly higher gold reward", arguments: tasks)
    func preferencePairs(task: SyntheticTask) throws {
        var correctChosen = 0
        for row in task.preferenceRows(count: 100, seed: 11) {
            guard case .preference(.text(let prompt), .text(let chosen), .text(let rejected)) = row else {
                Issue.record("unexpected row \(row)")
                continue
            }
            let chosenReward = SyntheticTask.goldReward(prompt: prompt, completion: chosen)
            #expect(chosenReward > SyntheticTask.goldReward(prompt: prompt, completion: rejected))
            if chosenReward == 1 { correctChosen += 1 }
        }
        #expect(correctChosen > 20 && correctChosen < 100)
    }

    @Test("Unpaired labels match the gold reward; rows tokenize in every shape")
    func rowsTokenize() throws {
        let task = SyntheticTask.addition(digits: 2)
        for row in task.unpairedRows(count: 50, seed: 5) {
            guard case .unpairedPreference(.text(let prompt), .text(let completion), let label) = row else { continue }
            #expect(label == (SyntheticTask.goldReward(prompt: prompt, completion: completion) == 1))
        }
        let tokenizer = RowTokenizer(tokenizer: ByteTokenizer())
        for conversational in [false, true] {
            for row in task.sftRows(count: 3, seed: 1, conversational: conversational) { _ = try tokenizer.sft(row) }
            for row in task.preferenceRows(count: 3, seed: 1, conversational: conversational) { _ = try tokenizer.preference(row) }
            for row in task.unpairedRows(count: 3, seed: 1, conversational: conversational) { _ = try tokenizer.unpaired(row) }
            for row in task.verifiableRows(count: 3, seed: 1, conversational: conversational) {
                #expect(try tokenizer.prompt(row).answer != nil)
            }
        }
        for row in task.conversationRows(count: 3, seed: 1) { #expect(try tokenizer.sft(row).completionMask.contains(1)) }
    }

    @Test("Held-out problems share no prompt with the training problems, deterministically")
    func disjointHeldOut() {
        let task = SyntheticTask.addition(digits: 2)
        let (train, heldOut) = task.disjointProblems(train: 2000, heldOut: 200, seed: 1)
        #expect(train.count == 2000 && heldOut.count == 200)
        #expect(Set(train.map(\.prompt)).isDisjoint(with: heldOut.map(\.prompt)))
        #expect(Set(train.map(\.prompt)).count == train.count && Set(heldOut.map(\.prompt)).count == heldOut.count)
        let again = task.disjointProblems(train: 2000, heldOut: 200, seed: 1)
        #expect(again.train == train && again.heldOut == heldOut)
        // A task with fewer distinct problems than asked for returns what there is.
        let small = SyntheticTask.addition(digits: 1).disjointProblems(train: 200, heldOut: 20, seed: 1)
        #expect(small.heldOut.count == 20 && small.train.count == 100 - 20)
    }
}
