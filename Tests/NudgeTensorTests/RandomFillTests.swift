// skippingRandomFill: models built only to be overwritten by a load draw no random numbers.

import NudgeTensor
import Testing

@Suite struct RandomFillTests {
    @Test func skippedFillDrawsNothingAndEndsWithItsScope() {
        var rng = RandomGenerator(seed: 3)
        let before = rng.snapshot
        let (u, n) = skippingRandomFill {
            (Tensor.uniform([64], using: &rng), Tensor.normal([8, 8], using: &rng))
        }
        #expect(u.shape == [64] && n.shape == [8, 8])
        #expect(rng.snapshot == before, "no draws inside the scope")
        // Outside it the fill is back, and the stream continues from where it stood.
        var fresh = RandomGenerator(seed: 3)
        #expect(Tensor.uniform([64], using: &rng).scalars == Tensor.uniform([64], using: &fresh).scalars)
        #expect(rng.snapshot != before)
    }
}
