// SplitPattern.swift
//
// Pre-tokenizer splitting on Unicode scalars. `SplitPattern` finds the matches
// of a `Split` pre-tokenizer pattern; `SplitBehavior` turns matches into
// pieces exactly as the Hugging Face `tokenizers` library does (Isolated,
// Removed, MergedWithPrevious, MergedWithNext, Contiguous, with `invert`).
//
// The three regexes that matter in practice — GPT-2's (also used by ByteLevel
// with `use_regex`), Llama 3's and Qwen2's — are recognized by their exact text
// and run by hand-written scanners that reproduce Oniguruma's leftmost-first
// backtracking semantics, including the case-insensitive contractions of
// Llama 3 (where `(?i:s)` also matches U+017F LATIN SMALL LETTER LONG S).
// `\p{L}` and `\p{N}` are restricted to the Unicode 16.0 repertoire, the version
// of the Oniguruma tables bundled with `tokenizers` 0.23, so that letters first
// assigned in Unicode 17 are classified the same way the library does.
// Any other regex falls back to Foundation's `NSRegularExpression` (ICU).

import Foundation

/// Character classes as the reference regex engine (Oniguruma) defines them.
enum ScalarClass {
    /// Letters and numbers assigned after this Unicode version are not `\p{L}` / `\p{N}` for the reference engine.
    static let referenceUnicodeVersion = (major: 16, minor: 0)

    private static let asciiLetter: UInt8 = 1
    private static let asciiNumber: UInt8 = 2
    private static let asciiSpace: UInt8 = 4

    private static let asciiFlags: [UInt8] = (0..<128).map { value in
        switch value {
        case 0x41...0x5A, 0x61...0x7A: return asciiLetter
        case 0x30...0x39: return asciiNumber
        case 0x09...0x0D, 0x20: return asciiSpace
        default: return 0
        }
    }

    private static func isKnownToReference(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < referenceUnicodeVersion.major
            || (age.major == referenceUnicodeVersion.major && age.minor <= referenceUnicodeVersion.minor)
    }

    /// `\p{L}`: general category Lu, Ll, Lt, Lm or Lo.
    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 128 { return asciiFlags[Int(scalar.value)] & asciiLetter != 0 }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return isKnownToReference(scalar)
        default:
            return false
        }
    }

    /// `\p{N}`: general category Nd, Nl or No.
    static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 128 { return asciiFlags[Int(scalar.value)] & asciiNumber != 0 }
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber:
            return isKnownToReference(scalar)
        default:
            return false
        }
    }

    /// `\s`: the Unicode White_Space property (25 scalars).
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 128 { return asciiFlags[Int(scalar.value)] & asciiSpace != 0 }
        return scalar.properties.isWhitespace
    }

    /// `[^\s\p{L}\p{N}]`.
    static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        !isWhitespace(scalar) && !isLetter(scalar) && !isNumber(scalar)
    }

    /// `[\r\n]`.
    static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool { scalar == "\r" || scalar == "\n" }
}

/// Wraps an `NSRegularExpression`, which is immutable and safe to share across threads.
final class RegularExpressionBox: @unchecked Sendable {
    let expression: NSRegularExpression
    init(_ expression: NSRegularExpression) { self.expression = expression }
}

/// What a `Split` pre-tokenizer (or ByteLevel with `use_regex`) matches.
enum SplitPattern: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// with k = 3 (Llama 3) or a single `\p{N}` (Qwen2, k = 1).
    case llama3(maximumDigits: Int)
    /// A literal string (`{"String": ...}` in tokenizer.json).
    case literal([Unicode.Scalar])
    /// Any other regex, run by `NSRegularExpression`.
    case regex(RegularExpressionBox)

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern for a regex: a hand-written scanner for the known patterns, else `NSRegularExpression`.
    static func regex(_ pattern: String, field: String) throws(TokenizerLoadError) -> SplitPattern {
        switch pattern {
        case gpt2Pattern: return .gpt2
        case llama3Pattern: return .llama3(maximumDigits: 3)
        case qwen2Pattern: return .llama3(maximumDigits: 1)
        default: return try generalRegex(pattern, field: field)
        }
    }

    /// An `NSRegularExpression`-backed pattern, even for the known patterns (used to cross-check the scanners).
    static func generalRegex(_ pattern: String, field: String) throws(TokenizerLoadError) -> SplitPattern {
        do {
            return .regex(RegularExpressionBox(try NSRegularExpression(pattern: pattern, options: [])))
        } catch {
            throw .invalidValue(field: field, reason: "cannot compile regex \(JSONField.quoted(pattern)): \(error)")
        }
    }

    /// The non-overlapping matches in `scalars`, left to right, as scalar index ranges.
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .gpt2: return Self.scan(scalars, Self.gpt2Match)
        case .llama3(let maximumDigits):
            return Self.scan(scalars) { scalars, start in Self.llama3Match(scalars, start, maximumDigits) }
        case .literal(let needle): return Self.literalMatches(needle, in: scalars)
        case .regex(let box): return Self.regexMatches(box.expression, in: scalars)
        }
    }

    // MARK: Hand-written scanners

    /// Runs a scanner that returns the end of the match starting at `start` (every position matches).
    private static func scan(
        _ scalars: [Unicode.Scalar], _ match: ([Unicode.Scalar], Int) -> Int
    ) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        while start < scalars.count {
            let end = max(match(scalars, start), start + 1)
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }

    /// End of the run of scalars satisfying `predicate` from `start`.
    @inline(__always)
    private static func runEnd(_ scalars: [Unicode.Scalar], from start: Int, _ predicate: (Unicode.Scalar) -> Bool) -> Int {
        var end = start
        while end < scalars.count, predicate(scalars[end]) { end += 1 }
        return end
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the run, minus its last scalar when a non-space follows a run of 2+.
    private static func whitespaceMatch(_ scalars: [Unicode.Scalar], _ start: Int) -> Int {
        let end = runEnd(scalars, from: start, ScalarClass.isWhitespace)
        if end == scalars.count || end - start < 2 { return end }
        return end - 1
    }

    /// End of a `'s|'t|'re|'ve|'m|'ll|'d` match at `start`, or nil; `ignoringCase` applies `(?i:...)`.
    private static func contractionMatch(_ scalars: [Unicode.Scalar], _ start: Int, ignoringCase: Bool) -> Int? {
        guard scalars[start] == "'", start + 1 < scalars.count else { return nil }
        func fold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
            guard ignoringCase else { return scalar }
            if scalar == "\u{017F}" { return "s" }  // LATIN SMALL LETTER LONG S folds to s
            if scalar.value >= 0x41 && scalar.value <= 0x5A { return Unicode.Scalar(UInt8(scalar.value + 0x20)) }
            return scalar
        }
        let first = fold(scalars[start + 1])
        switch first {
        case "s", "t", "m", "d": return start + 2
        case "r", "v":
            if start + 2 < scalars.count, fold(scalars[start + 2]) == "e" { return start + 3 }
        case "l":
            if start + 2 < scalars.count, fold(scalars[start + 2]) == "l" { return start + 3 }
        default: break
        }
        return nil
    }

    private static func gpt2Match(_ scalars: [Unicode.Scalar], _ start: Int) -> Int {
        if let end = contractionMatch(scalars, start, ignoringCase: false) { return end }
        let first = scalars[start]
        let hasNext = start + 1 < scalars.count
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, in that order.
        func optionalSpaceThenRun(_ isMember: (Unicode.Scalar) -> Bool) -> Int? {
            if first == " ", hasNext, isMember(scalars[start + 1]) { return runEnd(scalars, from: start + 1, isMember) }
            if isMember(first) { return runEnd(scalars, from: start, isMember) }
            return nil
        }
        if let end = optionalSpaceThenRun(ScalarClass.isLetter) { return end }
        if let end = optionalSpaceThenRun(ScalarClass.isNumber) { return end }
        if let end = optionalSpaceThenRun(ScalarClass.isOther) { return end }
        return whitespaceMatch(scalars, start)
    }

    private static func llama3Match(_ scalars: [Unicode.Scalar], _ start: Int, _ maximumDigits: Int) -> Int {
        if let end = contractionMatch(scalars, start, ignoringCase: true) { return end }
        let first = scalars[start]
        let hasNext = start + 1 < scalars.count
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if ScalarClass.isLetter(first) { return runEnd(scalars, from: start, ScalarClass.isLetter) }
        if hasNext, !ScalarClass.isLineBreak(first), !ScalarClass.isNumber(first), ScalarClass.isLetter(scalars[start + 1]) {
            return runEnd(scalars, from: start + 1, ScalarClass.isLetter)
        }
        // `\p{N}{1,k}`
        if ScalarClass.isNumber(first) {
            return min(runEnd(scalars, from: start, ScalarClass.isNumber), start + maximumDigits)
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var otherStart: Int?
        if first == " ", hasNext, ScalarClass.isOther(scalars[start + 1]) {
            otherStart = start + 1
        } else if ScalarClass.isOther(first) {
            otherStart = start
        }
        if let otherStart {
            let end = runEnd(scalars, from: otherStart, ScalarClass.isOther)
            return runEnd(scalars, from: end, ScalarClass.isLineBreak)
        }
        // `\s*[\r\n]+`: through the last line break of the whitespace run.
        let spaceEnd = runEnd(scalars, from: start, ScalarClass.isWhitespace)
        var index = spaceEnd - 1
        while index >= start {
            if ScalarClass.isLineBreak(scalars[index]) { return index + 1 }
            index -= 1
        }
        // `\s+(?!\S)|\s+`
        return whitespaceMatch(scalars, start)
    }

    // MARK: Literal and general regex

    private static func literalMatches(_ needle: [Unicode.Scalar], in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        if needle.isEmpty { return (0...scalars.count).map { $0..<$0 } }
        var ranges: [Range<Int>] = []
        var start = 0
        while start + needle.count <= scalars.count {
            if scalars[start] == needle[0], scalars[start..<(start + needle.count)].elementsEqual(needle) {
                ranges.append(start..<(start + needle.count))
                start += needle.count
            } else {
                start += 1
            }
        }
        return ranges
    }

    private static func regexMatches(_ expression: NSRegularExpression, in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var string = ""
        string.unicodeScalars.append(contentsOf: scalars)
        // Map UTF-16 offsets to scalar indices.
        var scalarIndexForUTF16: [Int] = []
        scalarIndexForUTF16.reserveCapacity(scalars.count * 2 + 1)
        for (index, scalar) in scalars.enumerated() {
            scalarIndexForUTF16.append(index)
            if scalar.value > 0xFFFF { scalarIndexForUTF16.append(index) }
        }
        scalarIndexForUTF16.append(scalars.count)
        let length = scalarIndexForUTF16.count - 1
        var ranges: [Range<Int>] = []
        for result in expression.matches(in: string, options: [], range: NSRange(location: 0, length: length)) {
            let range = result.range
            guard range.location != NSNotFound, range.location + range.length <= length else { continue }
            ranges.append(scalarIndexForUTF16[range.location]..<scalarIndexForUTF16[range.location + range.length])
        }
        return ranges
    }
}

/// How a `Split` pre-tokenizer turns matches into pieces (the `behavior` field).
enum SplitBehavior: String, Sendable, CaseIterable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Splits `piece` around the matches of `pattern`; empty pieces are dropped.
    func split(_ piece: [Unicode.Scalar], pattern: SplitPattern, invert: Bool) -> [[Unicode.Scalar]] {
        // Matches and the gaps between them, covering the whole piece.
        var spans: [(range: Range<Int>, isMatch: Bool)] = []
        if piece.isEmpty {
            spans.append((0..<0, false))
        } else {
            var previous = 0
            for match in pattern.matches(in: piece) {
                if previous != match.lowerBound { spans.append((previous..<match.lowerBound, false)) }
                spans.append((match, true))
                previous = match.upperBound
            }
            if previous != piece.count { spans.append((previous..<piece.count, false)) }
        }
        if invert { spans = spans.map { ($0.range, !$0.isMatch) } }

        var kept: [Range<Int>] = []
        switch self {
        case .isolated:
            kept = spans.map(\.range)
        case .removed:
            kept = spans.filter { !$0.isMatch }.map(\.range)
        case .contiguous:
            var previousMatch = false
            for span in spans {
                if span.isMatch == previousMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<span.range.upperBound
                } else {
                    kept.append(span.range)
                }
                previousMatch = span.isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for span in spans {
                if span.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<span.range.upperBound
                } else {
                    kept.append(span.range)
                }
                previousMatch = span.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for span in spans.reversed() {
                if span.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = span.range.lowerBound..<last.upperBound
                } else {
                    kept.append(span.range)
                }
                previousMatch = span.isMatch
            }
            kept.reverse()
        }
        return kept.compactMap { $0.isEmpty ? nil : Array(piece[$0]) }
    }
}
