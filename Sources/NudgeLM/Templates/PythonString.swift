// PythonString.swift
//
// Python's string operations, which chat templates call as methods (`content.strip()`,
// `content.split('</think>')`) and through filters (`trim`, `title`). They work on
// Unicode code points, as Python strings do.

enum PythonString {
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool { isPythonWhitespace(scalar) }

    /// `str.strip`, `lstrip`, `rstrip`: whitespace, or the characters in `characters`.
    static func strip(_ text: String, _ characters: String?, leading: Bool, trailing: Bool) -> String {
        let scalars = text.scalars
        let set = characters.map { Set($0.unicodeScalars) }
        func strippable(_ scalar: Unicode.Scalar) -> Bool { set?.contains(scalar) ?? isWhitespace(scalar) }
        var start = 0
        var end = scalars.count
        if leading { while start < end, strippable(scalars[start]) { start += 1 } }
        if trailing { while end > start, strippable(scalars[end - 1]) { end -= 1 } }
        return String(scalars: scalars[start..<end])
    }

    /// `str.split(sep, maxsplit)`; with no separator, splits on runs of whitespace.
    static func split(_ text: String, _ separator: String?, maxSplit: Int) throws(JinjaError) -> [String] {
        let scalars = text.scalars
        var pieces: [String] = []
        guard let separator else {
            var index = 0
            var splits = 0
            while true {
                while index < scalars.count, isWhitespace(scalars[index]) { index += 1 }
                if index == scalars.count { break }
                if maxSplit >= 0 && splits == maxSplit {
                    pieces.append(String(scalars: scalars[index...]))
                    break
                }
                let start = index
                while index < scalars.count, !isWhitespace(scalars[index]) { index += 1 }
                pieces.append(String(scalars: scalars[start..<index]))
                splits += 1
            }
            return pieces
        }
        let needle = separator.scalars
        if needle.isEmpty { throw JinjaError(.value, "empty separator") }
        var start = 0
        var splits = 0
        while maxSplit < 0 || splits < maxSplit, let found = find(needle, in: scalars, from: start) {
            pieces.append(String(scalars: scalars[start..<found]))
            start = found + needle.count
            splits += 1
        }
        pieces.append(String(scalars: scalars[start...]))
        return pieces
    }

    /// `str.rsplit(sep, maxsplit)`.
    static func rsplit(_ text: String, _ separator: String?, maxSplit: Int) throws(JinjaError) -> [String] {
        if maxSplit < 0 { return try split(text, separator, maxSplit: -1) }
        let scalars = text.scalars
        var pieces: [String] = []
        guard let separator else {
            var index = scalars.count
            var splits = 0
            while true {
                while index > 0, isWhitespace(scalars[index - 1]) { index -= 1 }
                if index == 0 { break }
                if splits == maxSplit {
                    pieces.append(String(scalars: scalars[..<index]))
                    break
                }
                let end = index
                while index > 0, !isWhitespace(scalars[index - 1]) { index -= 1 }
                pieces.append(String(scalars: scalars[index..<end]))
                splits += 1
            }
            return pieces.reversed()
        }
        let needle = separator.scalars
        if needle.isEmpty { throw JinjaError(.value, "empty separator") }
        var end = scalars.count
        var splits = 0
        while splits < maxSplit, let found = findLast(needle, in: scalars, before: end) {
            pieces.append(String(scalars: scalars[(found + needle.count)..<end]))
            end = found
            splits += 1
        }
        pieces.append(String(scalars: scalars[..<end]))
        return pieces.reversed()
    }

    /// `str.splitlines(keepends)`.
    static func splitLines(_ text: String, keepEnds: Bool = false) -> [String] {
        let scalars = text.scalars
        var lines: [String] = []
        var start = 0
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            let isBreak: Bool
            switch scalar.value {
            case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: isBreak = true
            default: isBreak = false
            }
            if !isBreak {
                index += 1
                continue
            }
            var end = index + 1
            if scalar == "\r", end < scalars.count, scalars[end] == "\n" { end += 1 }
            lines.append(String(scalars: scalars[start..<(keepEnds ? end : index)]))
            start = end
            index = end
        }
        if start < scalars.count { lines.append(String(scalars: scalars[start...])) }
        return lines
    }

    static func find(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from start: Int, to end: Int? = nil) -> Int? {
        let limit = min(end ?? haystack.count, haystack.count)
        guard start >= 0, needle.count <= limit - start else { return nil }
        if needle.isEmpty { return start }
        var index = start
        while index + needle.count <= limit {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    static func findLast(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], before end: Int, from start: Int = 0) -> Int? {
        guard needle.count <= end - start else { return nil }
        var index = end - needle.count
        while index >= start {
            if haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index -= 1
        }
        return nil
    }

    /// `str.count(sub)`: non-overlapping occurrences.
    static func count(_ needle: String, in text: String) -> Int {
        let scalars = text.scalars
        let pattern = needle.scalars
        if pattern.isEmpty { return scalars.count + 1 }
        var count = 0
        var index = 0
        while let found = find(pattern, in: scalars, from: index) {
            count += 1
            index = found + pattern.count
        }
        return count
    }

    /// `str.replace(old, new, count)`.
    static func replace(_ text: String, _ old: String, _ new: String, count: Int) -> String {
        let scalars = text.scalars
        let pattern = old.scalars
        let replacement = new.scalars
        var result: [Unicode.Scalar] = []
        var replaced = 0
        if pattern.isEmpty {
            // Python inserts the replacement before every character and at the end.
            for scalar in scalars {
                if count < 0 || replaced < count {
                    result += replacement
                    replaced += 1
                }
                result.append(scalar)
            }
            if count < 0 || replaced < count { result += replacement }
            return String(scalars: result)
        }
        var index = 0
        while count < 0 || replaced < count, let found = find(pattern, in: scalars, from: index) {
            result += scalars[index..<found]
            result += replacement
            index = found + pattern.count
            replaced += 1
        }
        result += scalars[index...]
        return String(scalars: result)
    }

    static func upper(_ text: String) -> String { text.uppercased() }
    static func lower(_ text: String) -> String { text.lowercased() }

    /// Whether a character has case (Python's "cased" characters).
    static func isCased(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        return properties.isLowercase || properties.isUppercase || properties.generalCategory == .titlecaseLetter
    }

    /// `str.title()`: a cased character after an uncased one is titlecased, the others lowercased.
    static func title(_ text: String) -> String {
        var result = ""
        var previousCased = false
        for scalar in text.unicodeScalars {
            if isCased(scalar) {
                result += previousCased ? scalar.properties.lowercaseMapping : scalar.properties.titlecaseMapping
                previousCased = true
            } else {
                result.unicodeScalars.append(scalar)
                previousCased = false
            }
        }
        return result
    }

    /// `str.capitalize()`: the first character titlecased, the rest lowercased.
    static func capitalize(_ text: String) -> String {
        guard let first = text.unicodeScalars.first else { return "" }
        return first.properties.titlecaseMapping + String(scalars: text.unicodeScalars.dropFirst()).lowercased()
    }

    static func swapcase(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.properties.isUppercase {
                result += scalar.properties.lowercaseMapping
            } else if scalar.properties.isLowercase {
                result += scalar.properties.uppercaseMapping
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// jinja2's `title` filter: each word (split at whitespace, `-`, and opening brackets) gets
    /// an uppercase first character and lowercase rest.
    static func jinjaTitle(_ text: String) -> String {
        var result = ""
        var atWordStart = true
        for scalar in text.unicodeScalars {
            let isSeparator = isWhitespace(scalar) || "-({[<".unicodeScalars.contains(scalar)
            if isSeparator {
                result.unicodeScalars.append(scalar)
                atWordStart = true
            } else if atWordStart {
                result += scalar.properties.uppercaseMapping
                atWordStart = false
            } else {
                result += scalar.properties.lowercaseMapping
            }
        }
        return result
    }

    /// Pads `text` to `width` characters with `fill`, as `str.center`, `ljust`, `rjust` do.
    static func pad(_ text: String, width: Int, fill: Unicode.Scalar, alignment: String) -> String {
        let length = text.unicodeScalars.count
        guard width > length else { return text }
        let total = width - length
        let fillText = String(Character(fill))
        switch alignment {
        case "left": return text + String(repeating: fillText, count: total)
        case "right": return String(repeating: fillText, count: total) + text
        default:
            // CPython puts the extra character on the left when both the padding and the width are odd.
            let left = total / 2 + (total & width & 1)
            return String(repeating: fillText, count: left) + text + String(repeating: fillText, count: total - left)
        }
    }

    /// HTML escaping as markupsafe does it.
    static func htmlEscape(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&#34;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Python's `\w`: letters, digits and the underscore.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType != nil
    }
}
