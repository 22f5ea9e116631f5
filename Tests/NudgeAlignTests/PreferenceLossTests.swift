// Preference losses against hand computations (including the seed's worked numbers), the
// Bradley–Terry item fit, and DPO converging to its closed form on an enumerable toy.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeNN
import NudgeTensor

func pairs(_ c: [Float], _ r: [Float], refC: [Float]? = nil, refR: [Float]? = nil, lc: [Int]? = nil, lr: [Int]? = nil) -> PairedLogProbs {
    PairedLogProbs(chosen: Tensor(c), rejected: Tensor(r), referenceChosen: refC.map { Tensor($0) }, referenceRejected: refR.map { Tensor($0) },
                   chosenLengths: lc ?? c.map { _ in 1 }, rejectedLengths: lr ?? r.map { _ in 1 })
}

func close(_ a: Float, _ b: Double, _ tol: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(abs(a - Float(b)) < tol, "\(a) vs \(b)", sourceLocation: sourceLocation)
}

@Suite("Preference losses") struct PreferenceLossTests {
    let ln2 = Float(log(2.0))

    @Test func seedRatiosTwoAndHalfGivePointEight() {
        // π/π_ref = 2 for the chosen and 0.5 for the rejected, β = 1: σ(2 ln 2) = 0.8.
        let p = pairs([ln2], [-ln2], refC: [0], refR: [0])
        let (loss, m) = preferenceLoss(.sigmoid(), beta: 1, p)
        close(loss.item(), -log(0.8))
        close(m.rewardsChosen, log(2.0)); close(m.rewardsRejected, -log(2.0))
        close(m.rewardsMargins, 2 * log(2.0)); #expect(m.rewardsAccuracies == 1)
    }

    @Test func seedToyLogProbsLossAndGradientSigns() {
        // Chosen −2.0 (reference −2.3), rejected −1.5 (reference −2.4): h = 0.3 − 0.9 = −0.6.
        for beta in [Float(1), 0.1] {
            let chosen = Tensor([-2.0]), rejected = Tensor([-1.5])
            let (loss, grads) = valueAndGrad([chosen, rejected]) { x in
                preferenceLoss(.sigmoid(), beta: beta, PairedLogProbs(chosen: x[0], rejected: x[1], referenceChosen: Tensor([-2.3]),
                                                                      referenceRejected: Tensor([-2.4]), chosenLengths: [1], rejectedLengths: [1])).loss
            }
            close(loss.item(), log(1 + exp(0.6 * Double(beta))))
            let s = 1 / (1 + exp(-Double(beta) * -0.6))
            close(grads[0].item(), -Double(beta) * (1 - s))  // negative: descent raises the chosen log-prob
            close(grads[1].item(), Double(beta) * (1 - s))   // positive: descent lowers the rejected one
            #expect(grads[0].item() < 0 && grads[1].item() > 0)
        }
    }

    @Test func familyValuesByHand() {
        let p = pairs([ln2], [-ln2], refC: [0], refR: [0])
        close(preferenceLoss(.sigmoid(labelSmoothing: 0.1), beta: 1, p).loss.item(), 0.9 * -log(0.8) + 0.1 * -log(0.2))
        close(preferenceLoss(.robust(labelSmoothing: 0.1), beta: 1, p).loss.item(), (0.9 * -log(0.8) + 0.1 * log(0.2)) / 0.8)
        close(preferenceLoss(.hinge, beta: 1, p).loss.item(), 0)
        close(preferenceLoss(.hinge, beta: 0.5, p).loss.item(), 1 - log(2.0))
        // IPO on length-averaged ratios: lengths 2 and 1 → (ln2/2 + ln2 − 1/(2β))².
        let q = pairs([ln2], [-ln2], refC: [0], refR: [0], lc: [2], lr: [1])
        close(preferenceLoss(.ipo, beta: 1, q).loss.item(), pow(1.5 * log(2.0) - 0.5, 2))
        // RPO adds α·NLL(chosen) per token: −ln2/2 here.
        close(preferenceLoss(.rpo(alpha: 1), beta: 1, q).loss.item(), -log(0.8) - log(2.0) / 2)
        // SimPO (reference-free): margin ln2/2 + ln2, loss −log σ(β·margin − γ).
        let m = 1.5 * log(2.0)
        close(preferenceLoss(.simpo(gamma: 0.5), beta: 2, q).loss.item(), log(1 + exp(-(2 * m - 0.5))))
        // CPO: −log σ(β(π_w − π_l)) + λ·NLL.
        close(preferenceLoss(.cpo(lambda: 1), beta: 1, q).loss.item(), -log(0.8) - log(2.0) / 2)
        // ORPO: p_w = 0.5, p_l = 0.25 → odds 1 and 1/3 → −ln 0.5 − λ·ln σ(ln 3) = ln 2 − λ·ln 0.75.
        close(orpoLoss(chosenAverage: Tensor([Float(log(0.5))]), rejectedAverage: Tensor([Float(log(0.25))]), lambda: 0.5).item(),
              log(2.0) - 0.5 * log(0.75))
        // KTO with z = 0.1: (1 − σ(0.4))·λ_D and (1 − σ(0.3))·λ_U, averaged.
        let kto = ktoLoss(logRatios: Tensor([0.5, -0.2]), desirable: [true, false], klEstimate: 0.1, beta: 1,
                          desirableWeight: 1, undesirableWeight: 2)
        close(kto.item(), ((1 - 1 / (1 + exp(-0.4))) + 2 * (1 - 1 / (1 + exp(-0.3)))) / 2)
    }

    @Test func bradleyTerryByHand() {
        let (equal, m) = bradleyTerryLoss(chosen: Tensor([0.3, 0.3]), rejected: Tensor([0.3, 0.3]))
        close(equal.item(), log(2.0))  // p = 0.5
        #expect(m.accuracy == 0 && m.margin == 0)
        let (withMargin, _) = bradleyTerryLoss(chosen: Tensor([2]), rejected: Tensor([1]), margin: Tensor([0.5]), centeringCoefficient: 0.01)
        close(withMargin.item(), log(1 + exp(-0.5)) + 0.01 * 9)
    }

    @Test func itemLevelFitRecoversRankingAndCenteredRewards() {
        // The seed: 4 responses with true rewards 2, 1, 0, −1 and 600 noisy comparisons.
        let truth = [2.0, 1, 0, -1]
        let comparisons = sampleComparisons(trueRewards: truth, count: 600, seed: 7)
        let (rewards, _) = fitItemRewards(comparisons: comparisons, itemCount: 4)
        #expect(rewards == rewards.sorted(by: >), "ranking \(rewards)")
        let centered = truth.map { $0 - 0.5 }
        for (a, b) in zip(rewards, centered) { #expect(abs(a - b) < 0.4, "\(rewards) vs \(centered)") }
    }

    @Test func dpoOnAnEnumerableToyConvergesToTheClosedForm() {
        // One prompt, 4 responses; π_ref fixed; preferences sampled from Bradley–Terry with the
        // true rewards. DPO's optimum is π* ∝ π_ref·exp(r/β) (Rafailov et al. 2023, eq. 4).
        let r = [1.0, 0.5, 0, -1], beta: Float = 0.5
        let refLogits: [Float] = [0.2, -0.1, 0.4, 0]
        let refLogp = Tensor(refLogits).logSoftmax().scalars
        let comparisons = sampleComparisons(trueRewards: r, count: 20_000, seed: 3)
        // The 20k sampled pairs collapse to the 12 ordered (winner, loser) pairs with their counts;
        // the count-weighted mean of the per-pair DPO loss equals the loss over all samples.
        var counts: [[Int]: Float] = [:]
        for c in comparisons { counts[[c.winner, c.loser], default: 0] += 1 }
        let keys = counts.keys.sorted { $0.lexicographicallyPrecedes($1) }
        let winners = keys.map { $0[0] }, losers = keys.map { $0[1] }
        let weights = Tensor(keys.map { counts[$0]! / Float(comparisons.count) * Float(keys.count) })
        final class Policy: Module { var logits = Tensor.zeros([4]) }
        let policy = Policy()
        let optimizer = Adam(learningRate: 0.05)
        let refW = Tensor(winners.map { refLogp[$0] }), refL = Tensor(losers.map { refLogp[$0] })
        for _ in 0..<1500 {
            let (_, g) = valueAndGrad(policy) { p in
                let logp = p.logits.logSoftmax()
                let pairsBatch = PairedLogProbs(chosen: logp.indexSelect(winners), rejected: logp.indexSelect(losers),
                                                referenceChosen: refW, referenceRejected: refL,
                                                chosenLengths: Array(repeating: 1, count: winners.count), rejectedLengths: Array(repeating: 1, count: winners.count))
                // The library's per-pair DPO loss (what preferenceLoss averages), count-weighted.
                return (preferencePairLosses(.sigmoid(), beta: beta, pairsBatch) * weights).mean()
            }
            optimizer.update(policy, gradients: g)
        }
        let learned = policy.logits.softmax().scalars.map(Double.init)
        let unnormalized = zip(refLogp, r).map { exp(Double($0) + $1 / Double(beta)) }
        let target = unnormalized.map { $0 / unnormalized.reduce(0, +) }
        let tv = 0.5 * zip(learned, target).reduce(0) { $0 + abs($1.0 - $1.1) }
        #expect(tv < 0.03, "total variation to π* = \(tv); learned \(learned), π* \(target)")
    }
}
