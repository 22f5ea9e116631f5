// JinjaTemplate.swift
//
// The public entry point of the template engine: parse a template once, render it
// many times with different variables. Rendering is deterministic given the options
// (the clock `strftime_now` reads is injectable), never traps on hostile input, and
// stops with a `.limit` error when a template outgrows its output, loop or recursion budget.

import Foundation

/// The clock and resource limits of a rendering.
public struct JinjaRenderOptions: Sendable {
    /// The time `strftime_now` formats.
    public var now: Date
    /// The time zone `strftime_now` formats in (Python formats local time).
    public var timeZone: TimeZone
    /// The most characters (Unicode scalars) the output or any string built on the way may hold.
    public var maximumOutputLength: Int
    /// The most loop iterations a rendering may run, all loops together.
    public var maximumLoopIterations: Int
    /// The deepest macro calls may nest.
    public var maximumMacroDepth: Int

    /// Options with the current time and generous limits.
    public init(
        now: Date = Date(), timeZone: TimeZone = .current, maximumOutputLength: Int = 16_000_000,
        maximumLoopIterations: Int = 1_000_000, maximumMacroDepth: Int = 100
    ) {
        self.now = now
        self.timeZone = timeZone
        self.maximumOutputLength = maximumOutputLength
        self.maximumLoopIterations = maximumLoopIterations
        self.maximumMacroDepth = maximumMacroDepth
    }
}

/// The result of rendering a template.
public struct JinjaRendering: Sendable, Equatable {
    /// The rendered text.
    public var text: String
    /// The ranges `{% generation %}` blocks produced, in Unicode scalar offsets into `text`
    /// (Python string offsets, as transformers reports them).
    public var generationRanges: [Range<Int>]
}

/// A parsed Jinja template, rendered with jinja2's semantics under transformers' chat-template
/// settings (trim_blocks, lstrip_blocks, loop controls, `{% generation %}`).
public struct JinjaTemplate: Sendable {
    /// The name used in error messages (usually the template's file).
    public let name: String
    /// Whether the template marks assistant output with `{% generation %}` blocks.
    public let hasGenerationBlocks: Bool
    let body: [Statement]

    /// Parses `source`; syntax errors name `name` and the line and column at fault.
    public init(source: String, name: String = "<template>") throws(JinjaError) {
        self.name = name
        let tokens = try JinjaLexer.tokenize(source, templateName: name)
        body = try JinjaParser.parse(tokens, templateName: name)
        hasGenerationBlocks = Self.containsGeneration(body)
    }

    /// Renders the template with `variables`.
    ///
    /// Besides the variables, templates see the globals transformers provides:
    /// `raise_exception(message)`, `strftime_now(format)`, `namespace(...)`, `dict(...)` and `range(...)`.
    public func render(_ variables: [String: JinjaValue], options: JinjaRenderOptions = JinjaRenderOptions()) throws(JinjaError)
        -> JinjaRendering
    {
        let interpreter = JinjaInterpreter(templateName: name, options: options)
        let context = Scope(parent: nil)
        context.variables = Self.globals(options)
        for (key, value) in variables { context.variables[key] = Value(value) }
        do {
            _ = try interpreter.execute(body, in: Scope(parent: context))
        } catch {
            var positioned = error
            if positioned.templateName.isEmpty { positioned.templateName = name }
            throw positioned
        }
        return JinjaRendering(text: interpreter.output, generationRanges: interpreter.generationRanges)
    }

    private static func containsGeneration(_ statements: [Statement]) -> Bool {
        statements.contains { statement in
            switch statement.kind {
            case .generation: return true
            case .if(let branches, let otherwise): return branches.contains { containsGeneration($0.body) } || containsGeneration(otherwise)
            case .for(_, _, _, let body, let otherwise): return containsGeneration(body) || containsGeneration(otherwise)
            case .setBlock(_, _, let body), .filterBlock(_, let body), .with(_, let body): return containsGeneration(body)
            case .macro(let definition), .callBlock(_, let definition): return containsGeneration(definition.body)
            default: return false
            }
        }
    }

    // MARK: Globals

    private static func globals(_ options: JinjaRenderOptions) -> [String: Value] {
        [
            "raise_exception": .callable(
                Callable(name: "raise_exception") { positional, keyword, interpreter throws(JinjaError) in
                    let arguments = try BoundArguments("raise_exception", positional, keyword, names: ["message"])
                    throw JinjaError(.raised, try arguments["message"].map { (message) throws(JinjaError) in try interpreter.str(message) } ?? "")
                }),
            "strftime_now": .callable(
                Callable(name: "strftime_now") { positional, keyword, _ throws(JinjaError) in
                    let arguments = try BoundArguments("strftime_now", positional, keyword, names: ["format"])
                    guard let format = try arguments.string("format") else {
                        throw JinjaError(.type, "strftime_now() missing 1 required positional argument: 'format'")
                    }
                    return .string(Strftime.format(format, date: options.now, timeZone: options.timeZone))
                }),
            "namespace": .callable(
                Callable(name: "namespace") { positional, keyword, interpreter throws(JinjaError) in
                    let namespace = Namespace()
                    namespace.attributes = try makeDict(positional, keyword, interpreter, function: "namespace")
                    for key in namespace.attributes.keys {
                        if case .string(let name) = key, name.hasPrefix("_") {
                            throw JinjaError(
                                .limit,
                                "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(name)'. Please rename the attribute."
                            )
                        }
                    }
                    return .namespace(namespace)
                }),
            "dict": .callable(
                Callable(name: "dict") { positional, keyword, interpreter throws(JinjaError) in
                    .dict(try makeDict(positional, keyword, interpreter, function: "dict"))
                }),
            "range": .callable(Callable(name: "range") { positional, keyword, _ throws(JinjaError) in try range(positional, keyword) }),
        ]
    }

    /// `dict(mapping_or_pairs, **kwargs)`.
    private static func makeDict(_ positional: [Value], _ keyword: [(String, Value)], _ interpreter: JinjaInterpreter, function: String)
        throws(JinjaError) -> PyDict
    {
        var dict = PyDict()
        if positional.count > 1 { throw JinjaError(.type, "\(function) expected at most 1 argument, got \(positional.count)") }
        if let source = positional.first {
            if case .dict(let given) = source {
                dict = given
            } else {
                for pair in try interpreter.iterate(source) {
                    let items = try interpreter.iterate(pair)
                    guard items.count == 2 else {
                        throw JinjaError(.value, "dictionary update sequence element has length \(items.count); 2 is required")
                    }
                    try dict.setChecked(items[0], items[1])
                }
            }
        }
        for (key, value) in keyword { dict.set(.string(key), value) }
        return dict
    }

    /// `range(stop)` / `range(start, stop[, step])`, limited like jinja2's sandbox.
    private static func range(_ positional: [Value], _ keyword: [(String, Value)]) throws(JinjaError) -> Value {
        guard keyword.isEmpty else { throw JinjaError(.type, "range() takes no keyword arguments") }
        var bounds: [Int] = []
        for value in positional {
            if case .undefined(let undefined) = value { throw undefined.error }
            guard let integer = value.integerValue else {
                throw JinjaError(.type, "'\(value.typeName)' object cannot be interpreted as an integer")
            }
            bounds.append(integer)
        }
        let (start, stop, step): (Int, Int, Int)
        switch bounds.count {
        case 1: (start, stop, step) = (0, bounds[0], 1)
        case 2: (start, stop, step) = (bounds[0], bounds[1], 1)
        case 3: (start, stop, step) = (bounds[0], bounds[1], bounds[2])
        default: throw JinjaError(.type, "range expected 1 to 3 arguments, got \(bounds.count)")
        }
        if step == 0 { throw JinjaError(.value, "range() arg 3 must not be zero") }
        // ceil((stop - start) / step), in floating point first so that huge bounds cannot overflow.
        let estimate = (Double(stop) - Double(start)) / Double(step)
        guard estimate <= 100_000 else {
            throw JinjaError(.limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
        }
        var count = 0
        if estimate > 0 {
            let (span, spanOverflow) = stop.subtractingReportingOverflow(start)
            let (rounded, roundOverflow) = span.addingReportingOverflow(step > 0 ? step - 1 : step + 1)
            count = spanOverflow || roundOverflow ? Int(estimate.rounded(.up)) : rounded / step
        }
        if count > 100_000 {
            throw JinjaError(.limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
        }
        return .list((0..<count).map { .int(start + $0 * step) })
    }
}

/// C's `strftime` in the C locale, as Python's `datetime.strftime` calls it on Linux.
enum Strftime {
    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
    ]

    static func format(_ format: String, date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let year = parts.year ?? 1970
        let month = parts.month ?? 1
        let day = parts.day ?? 1
        let hour = parts.hour ?? 0
        let minute = parts.minute ?? 0
        let second = parts.second ?? 0
        let weekday = (parts.weekday ?? 1) - 1  // 0 = Sunday
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1

        func padded(_ value: Int, _ width: Int, _ pad: Character, _ noPad: Bool) -> String {
            let digits = String(value)
            if noPad { return digits }
            return String(repeating: pad, count: max(0, width - digits.count)) + digits
        }

        var result = ""
        var scalars = format.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "%" else {
                result.unicodeScalars.append(scalar)
                continue
            }
            guard var directive = scalars.next() else {
                result += "%"
                break
            }
            var noPad = false
            if directive == "-", let next = scalars.next() {
                noPad = true
                directive = next
            }
            let hour12 = hour % 12 == 0 ? 12 : hour % 12
            switch directive {
            case "a": result += String(weekdays[weekday].prefix(3))
            case "A": result += weekdays[weekday]
            case "b", "h": result += String(months[month - 1].prefix(3))
            case "B": result += months[month - 1]
            case "c":
                result += "\(weekdays[weekday].prefix(3)) \(months[month - 1].prefix(3)) \(padded(day, 2, " ", false)) "
                    + "\(padded(hour, 2, "0", false)):\(padded(minute, 2, "0", false)):\(padded(second, 2, "0", false)) \(year)"
            case "C": result += padded(year / 100, 2, "0", noPad)
            case "d": result += padded(day, 2, "0", noPad)
            case "D": result += "\(padded(month, 2, "0", false))/\(padded(day, 2, "0", false))/\(padded(year % 100, 2, "0", false))"
            case "e": result += padded(day, 2, " ", noPad)
            case "F": result += "\(padded(year, 4, "0", false))-\(padded(month, 2, "0", false))-\(padded(day, 2, "0", false))"
            case "H": result += padded(hour, 2, "0", noPad)
            case "I": result += padded(hour12, 2, "0", noPad)
            case "j": result += padded(dayOfYear, 3, "0", noPad)
            case "k": result += padded(hour, 2, " ", noPad)
            case "l": result += padded(hour12, 2, " ", noPad)
            case "m": result += padded(month, 2, "0", noPad)
            case "M": result += padded(minute, 2, "0", noPad)
            case "n": result += "\n"
            case "p": result += hour < 12 ? "AM" : "PM"
            case "P": result += hour < 12 ? "am" : "pm"
            case "R": result += "\(padded(hour, 2, "0", false)):\(padded(minute, 2, "0", false))"
            case "S": result += padded(second, 2, "0", noPad)
            case "t": result += "\t"
            case "T", "X": result += "\(padded(hour, 2, "0", false)):\(padded(minute, 2, "0", false)):\(padded(second, 2, "0", false))"
            case "u": result += String(weekday == 0 ? 7 : weekday)
            case "w": result += String(weekday)
            case "x": result += "\(padded(month, 2, "0", false))/\(padded(day, 2, "0", false))/\(padded(year % 100, 2, "0", false))"
            case "y": result += padded(year % 100, 2, "0", noPad)
            case "Y": result += String(year)
            case "Z", "z": break  // Python's datetime.now() is naive: no zone name or offset
            case "%": result += "%"
            default:
                result += "%" + (noPad ? "-" : "") + String(directive)
            }
        }
        return result
    }
}
