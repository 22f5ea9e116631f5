// JinjaInterpreter.swift
//
// Renders a parsed template. Scoping follows jinja2: `set` inside `if` changes the
// enclosing scope, `set` inside a `for` body does not outlive the iteration (which is why
// templates use `namespace()`), and macros see their defining scope at call time.
// Output goes to the top-level text or, inside macros, `{% set %}` blocks, filter blocks
// and `{% generation %}`, to a capture buffer. Resource limits (output size, loop
// iterations, macro depth) turn runaway templates into errors instead of hangs or crashes.

import Foundation

/// A lexical scope of template variables.
final class Scope {
    var variables: [String: Value] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let current = scope {
            if let value = current.variables[name] { return value }
            scope = current.parent
        }
        return nil
    }
}

/// How a statement list finished.
enum ControlFlow {
    case normal, breakLoop, continueLoop
}

final class JinjaInterpreter {
    let templateName: String
    let options: JinjaRenderOptions

    /// The top-level output, and its length in Unicode scalars (Python's string length).
    private(set) var output = ""
    private(set) var outputLength = 0
    /// Capture buffers for macros, block sets, filter blocks and generation blocks; the last one receives output.
    private var buffers: [(text: String, length: Int)] = []
    /// The ranges of `{% generation %}` output, in Unicode scalar offsets.
    private(set) var generationRanges: [Range<Int>] = []
    private var iterations = 0
    private var macroDepth = 0

    init(templateName: String, options: JinjaRenderOptions) {
        self.templateName = templateName
        self.options = options
    }

    // MARK: Output

    func write(_ text: String) throws(JinjaError) {
        guard !text.isEmpty else { return }
        let length = text.unicodeScalars.count
        if buffers.isEmpty {
            output += text
            outputLength += length
            if outputLength > options.maximumOutputLength { throw outputTooLarge() }
        } else {
            buffers[buffers.count - 1].text += text
            buffers[buffers.count - 1].length += length
            if buffers[buffers.count - 1].length > options.maximumOutputLength { throw outputTooLarge() }
        }
    }

    private func outputTooLarge() -> JinjaError {
        JinjaError(.limit, "the output exceeds \(options.maximumOutputLength) characters")
    }

    /// Renders `statements` into a fresh buffer and returns its text.
    func capture(_ statements: [Statement], in scope: Scope) throws(JinjaError) -> String {
        buffers.append(("", 0))
        defer { buffers.removeLast() }
        _ = try execute(statements, in: scope)
        return buffers[buffers.count - 1].text
    }

    /// Python's `str(value)` within the output limit.
    func str(_ value: Value) throws(JinjaError) -> String { try value.str(limit: options.maximumOutputLength) }

    /// Checks that a string (or list) built by an operation stays within the output limit.
    func checkLength(_ count: Int) throws(JinjaError) {
        if count > options.maximumOutputLength {
            throw JinjaError(.limit, "a value of \(count) characters or items exceeds the limit of \(options.maximumOutputLength)")
        }
    }

    // MARK: Statements

    func execute(_ statements: [Statement], in scope: Scope) throws(JinjaError) -> ControlFlow {
        for statement in statements {
            let flow: ControlFlow
            do {
                flow = try execute(statement, in: scope)
            } catch {
                throw error.positioned(statement.position, templateName: templateName)
            }
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ statement: Statement, in scope: Scope) throws(JinjaError) -> ControlFlow {
        switch statement.kind {
        case .text(let text):
            try write(text)
        case .output(let expression):
            try write(try str(try evaluate(expression, in: scope)))
        case .if(let branches, let otherwise):
            for branch in branches where try evaluate(branch.condition, in: scope).isTruthy {
                return try execute(branch.body, in: scope)
            }
            return try execute(otherwise, in: scope)
        case .for(let target, let iterable, let filter, let body, let otherwise):
            return try executeFor(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise, in: scope)
        case .set(let target, let expression):
            try assign(try evaluate(expression, in: scope), to: target, in: scope)
        case .setBlock(let target, let filters, let body):
            var value = Value.string(try capture(body, in: Scope(parent: scope)))
            value = try applyFilters(filters, to: value, in: scope)
            try assign(value, to: target, in: scope)
        case .macro(let definition):
            scope.variables[definition.name] = .callable(makeMacro(definition, definedIn: scope))
        case .callBlock(let call, let callerDefinition):
            guard case .call(let calleeExpression, let arguments) = call.kind else { return .normal }
            let callee = try evaluate(calleeExpression, in: scope)
            var (positional, keyword) = try evaluateArguments(arguments, in: scope)
            keyword.append(("caller", .callable(makeMacro(callerDefinition, definedIn: scope))))
            try write(try str(try self.call(callee, positional, keyword)))
        case .filterBlock(let filters, let body):
            let text = try capture(body, in: Scope(parent: scope))
            try write(try str(try applyFilters(filters, to: .string(text), in: scope)))
        case .with(let assignments, let body):
            let inner = Scope(parent: scope)
            for (target, expression) in assignments { try assign(try evaluate(expression, in: scope), to: target, in: inner) }
            return try execute(body, in: inner)
        case .break:
            return .breakLoop
        case .continue:
            return .continueLoop
        case .generation(let body):
            // As transformers' AssistantTracker: the start is the length of the top-level output so far,
            // the end adds the length of the block's text.
            let start = outputLength
            let text = try capture(body, in: scope)
            generationRanges.append(start..<start + text.unicodeScalars.count)
            try write(text)
        }
        return .normal
    }

    private func applyFilters(_ filters: [FilterApplication], to start: Value, in scope: Scope) throws(JinjaError) -> Value {
        var value = start
        for filter in filters {
            do {
                let (positional, keyword) = try evaluateArguments(filter.arguments, in: scope)
                value = try applyFilter(filter.name, to: value, positional, keyword)
            } catch {
                throw error.positioned(filter.position, templateName: templateName)
            }
        }
        return value
    }

    private func executeFor(
        target: AssignTarget, iterable: Expression, filter: Expression?, body: [Statement], otherwise: [Statement], in scope: Scope
    ) throws(JinjaError) -> ControlFlow {
        var items = try iterate(try evaluate(iterable, in: scope))
        if let filter {
            var kept: [Value] = []
            for item in items {
                let filterScope = Scope(parent: scope)
                try assign(item, to: target, in: filterScope)
                if try evaluate(filter, in: filterScope).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty { return try execute(otherwise, in: Scope(parent: scope)) }
        // Only recursive loops (not supported) go deeper than depth 1 in jinja2.
        let loop = LoopContext(items: items, depth0: 0)
        for (index, item) in items.enumerated() {
            iterations += 1
            if iterations > options.maximumLoopIterations {
                throw JinjaError(.limit, "the template ran more than \(options.maximumLoopIterations) loop iterations")
            }
            loop.index0 = index
            let iterationScope = Scope(parent: scope)
            iterationScope.variables["loop"] = .loop(loop)
            try assign(item, to: target, in: iterationScope)
            if try execute(body, in: iterationScope) == .breakLoop { break }
        }
        return .normal
    }

    func assign(_ value: Value, to target: AssignTarget, in scope: Scope) throws(JinjaError) {
        switch target {
        case .name(let name):
            scope.variables[name] = value
        case .tuple(let targets):
            let items = try iterate(value)
            guard items.count == targets.count else {
                if items.count > targets.count { throw JinjaError(.value, "too many values to unpack (expected \(targets.count))") }
                throw JinjaError(.value, "not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (item, inner) in zip(items, targets) { try assign(item, to: inner, in: scope) }
        case .attribute(let name, let attribute):
            guard case .namespace(let namespace) = scope.lookup(name) ?? .none else {
                throw JinjaError(.type, "cannot assign attribute on non-namespace object")
            }
            namespace.attributes.set(.string(attribute), value)
        }
    }

    // MARK: Macros

    func makeMacro(_ definition: MacroDefinition, definedIn scope: Scope) -> Callable {
        Callable(name: definition.name, isMacro: true) { positional, keyword, interpreter throws(JinjaError) in
            try interpreter.invokeMacro(definition, definedIn: scope, positional, keyword)
        }
    }

    private func invokeMacro(
        _ definition: MacroDefinition, definedIn defining: Scope, _ positional: [Value], _ keyword: [(String, Value)]
    ) throws(JinjaError) -> Value {
        macroDepth += 1
        defer { macroDepth -= 1 }
        guard macroDepth <= options.maximumMacroDepth else {
            throw JinjaError(.limit, "macro calls nest deeper than \(options.maximumMacroDepth) (maximum recursion depth exceeded)")
        }
        let scope = Scope(parent: defining)
        var keywordLeft = keyword
        for (index, parameter) in definition.parameters.enumerated() {
            let given = keywordLeft.firstIndex { $0.0 == parameter.name }
            let value: Value
            if index < positional.count {
                if given != nil {
                    throw JinjaError(.type, "macro '\(definition.name)' got multiple values for argument '\(parameter.name)'")
                }
                value = positional[index]
            } else if let given {
                value = keywordLeft[given].1
                keywordLeft.remove(at: given)
            } else if let defaultValue = parameter.defaultValue {
                value = try evaluate(defaultValue, in: scope)
            } else {
                value = .undefined(Undefined(name: parameter.name, hint: "parameter '\(parameter.name)' was not provided"))
            }
            scope.variables[parameter.name] = value
        }
        if let callerIndex = keywordLeft.firstIndex(where: { $0.0 == "caller" }) {
            if definition.usesCaller { scope.variables["caller"] = keywordLeft[callerIndex].1 }
            keywordLeft.remove(at: callerIndex)
        } else if definition.usesCaller {
            scope.variables["caller"] = .undefined(Undefined(name: "caller", hint: "No caller defined"))
        }
        if positional.count > definition.parameters.count {
            guard definition.usesVarargs else {
                throw JinjaError(.type, "macro '\(definition.name)' takes not more than \(definition.parameters.count) argument(s)")
            }
            scope.variables["varargs"] = .tuple(Array(positional[definition.parameters.count...]))
        } else if definition.usesVarargs {
            scope.variables["varargs"] = .tuple([])
        }
        if definition.usesKwargs {
            var kwargs = PyDict()
            for (name, value) in keywordLeft { kwargs.set(.string(name), value) }
            scope.variables["kwargs"] = .dict(kwargs)
        } else if let (name, _) = keywordLeft.first {
            throw JinjaError(.type, "macro '\(definition.name)' takes no keyword argument '\(name)'")
        }
        return .string(try capture(definition.body, in: scope))
    }

    // MARK: Expressions

    func evaluate(_ expression: Expression, in scope: Scope) throws(JinjaError) -> Value {
        do {
            return try evaluateUnpositioned(expression, in: scope)
        } catch {
            throw error.positioned(expression.position, templateName: templateName)
        }
    }

    private func evaluateUnpositioned(_ expression: Expression, in scope: Scope) throws(JinjaError) -> Value {
        switch expression.kind {
        case .constant(let constant):
            return Value(constant)
        case .name(let name):
            return scope.lookup(name) ?? .undefined(Undefined(name: name))
        case .list(let items):
            var values: [Value] = []
            for item in items { values.append(try evaluate(item, in: scope)) }
            return .list(values)
        case .tuple(let items):
            var values: [Value] = []
            for item in items { values.append(try evaluate(item, in: scope)) }
            return .tuple(values)
        case .dict(let pairs):
            var dict = PyDict()
            for pair in pairs { try dict.setChecked(try evaluate(pair.key, in: scope), try evaluate(pair.value, in: scope)) }
            return .dict(dict)
        case .attribute(let object, let name):
            return try attribute(of: try evaluate(object, in: scope), name)
        case .item(let object, let index):
            return try item(of: try evaluate(object, in: scope), try evaluate(index, in: scope))
        case .slice(let object, let start, let stop, let step):
            let value = try evaluate(object, in: scope)
            return try slice(
                value, start: try start.map { (e) throws(JinjaError) in try evaluate(e, in: scope) },
                stop: try stop.map { (e) throws(JinjaError) in try evaluate(e, in: scope) },
                step: try step.map { (e) throws(JinjaError) in try evaluate(e, in: scope) })
        case .call(let calleeExpression, let arguments):
            let callee = try evaluate(calleeExpression, in: scope)
            let (positional, keyword) = try evaluateArguments(arguments, in: scope)
            return try call(callee, positional, keyword)
        case .filter(let input, let name, let arguments):
            let value = try evaluate(input, in: scope)
            let (positional, keyword) = try evaluateArguments(arguments, in: scope)
            return try applyFilter(name, to: value, positional, keyword)
        case .test(let input, let name, let arguments, let negated):
            let value = try evaluate(input, in: scope)
            let (positional, keyword) = try evaluateArguments(arguments, in: scope)
            let result = try applyTest(name, to: value, positional, keyword)
            return .bool(result != negated)
        case .negate(let operand):
            return try negate(try evaluate(operand, in: scope))
        case .plus(let operand):
            let value = try evaluate(operand, in: scope)
            if case .undefined(let undefined) = value { throw undefined.error }
            guard let number = value.numericValue else { throw JinjaError(.type, "bad operand type for unary +: '\(value.typeName)'") }
            return number.value
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: scope).isTruthy))
        case .binary(.and, let left, let right):
            let value = try evaluate(left, in: scope)
            return value.isTruthy ? try evaluate(right, in: scope) : value
        case .binary(.or, let left, let right):
            let value = try evaluate(left, in: scope)
            return value.isTruthy ? value : try evaluate(right, in: scope)
        case .binary(let op, let left, let right):
            return try binary(op, try evaluate(left, in: scope), try evaluate(right, in: scope))
        case .concat(let items):
            var text = ""
            for item in items { text += try str(try evaluate(item, in: scope)) }
            try checkLength(text.unicodeScalars.count)
            return .string(text)
        case .compare(let first, let operations):
            var left = try evaluate(first, in: scope)
            for (op, rightExpression) in operations {
                let right = try evaluate(rightExpression, in: scope)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition, in: scope).isTruthy { return try evaluate(then, in: scope) }
            if let otherwise { return try evaluate(otherwise, in: scope) }
            return .undefined(
                Undefined(
                    hint: "the inline if-expression on line \(expression.position.line) evaluated to false and no else section was defined."))
        }
    }

    func evaluateArguments(_ arguments: CallArguments, in scope: Scope) throws(JinjaError) -> ([Value], [(String, Value)]) {
        var positional: [Value] = []
        for argument in arguments.positional { positional.append(try evaluate(argument, in: scope)) }
        var keyword: [(String, Value)] = []
        for (name, argument) in arguments.keyword { keyword.append((name, try evaluate(argument, in: scope))) }
        if let extra = arguments.extraPositional { positional += try iterate(try evaluate(extra, in: scope)) }
        if let extra = arguments.extraKeyword {
            guard case .dict(let mapping) = try evaluate(extra, in: scope) else {
                throw JinjaError(.type, "argument after ** must be a mapping").positioned(extra.position, templateName: templateName)
            }
            for (key, value) in mapping.items {
                guard case .string(let name) = key else { throw JinjaError(.type, "keywords must be strings") }
                keyword.append((name, value))
            }
        }
        return (positional, keyword)
    }

    func call(_ callee: Value, _ positional: [Value], _ keyword: [(String, Value)]) throws(JinjaError) -> Value {
        switch callee {
        case .callable(let callable):
            return try callable.body(positional, keyword, self)
        case .undefined(let undefined):
            throw undefined.error
        default:
            throw JinjaError(.type, "'\(callee.typeName)' object is not callable")
        }
    }

    /// The items a `for` loop visits: list elements, dict keys, string characters; nothing for undefined.
    func iterate(_ value: Value) throws(JinjaError) -> [Value] {
        switch value {
        case .list(let items), .tuple(let items), .iterator(let items), .view(_, let items): return items
        case .dict(let dict): return dict.keys
        case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        case .loop(let loop): return loop.items
        case .failedIterator(let error): throw error
        default: throw JinjaError(.type, "'\(value.typeName)' object is not iterable")
        }
    }

    // MARK: Operators

    private func negate(_ value: Value) throws(JinjaError) -> Value {
        switch value {
        case .undefined(let undefined): throw undefined.error
        case .bool(let flag): return .int(flag ? -1 : 0)
        case .int(let number):
            let (result, overflow) = Int(0).subtractingReportingOverflow(number)
            if overflow { throw integerOverflow() }
            return .int(result)
        case .float(let number): return .float(-number)
        default: throw JinjaError(.type, "bad operand type for unary -: '\(value.typeName)'")
        }
    }

    func integerOverflow() -> JinjaError {
        JinjaError(.value, "integer overflow (integers are limited to 64 bits)")
    }

    func binary(_ op: BinaryOperator, _ left: Value, _ right: Value) throws(JinjaError) -> Value {
        if case .undefined(let undefined) = left { throw undefined.error }
        if case .undefined(let undefined) = right { throw undefined.error }
        if let a = left.numericValue, let b = right.numericValue { return try arithmetic(op, a, b) }
        switch (op, left, right) {
        case (.add, .string(let a), .string(let b)):
            try checkLength(a.unicodeScalars.count + b.unicodeScalars.count)
            return .string(a + b)
        case (.add, .list(let a), .list(let b)):
            try checkLength(a.count + b.count)
            return .list(a + b)
        case (.add, .tuple(let a), .tuple(let b)):
            try checkLength(a.count + b.count)
            return .tuple(a + b)
        case (.multiply, .string(let text), _), (.multiply, _, .string(let text)):
            guard let count = (left.numericValue == nil ? right : left).integerValue else { break }
            guard count > 0, !text.isEmpty else { return .string("") }
            let (total, overflow) = text.unicodeScalars.count.multipliedReportingOverflow(by: count)
            if overflow { throw integerOverflow() }
            try checkLength(total)
            return .string(String(repeating: text, count: count))
        case (.multiply, .list(let items), _), (.multiply, _, .list(let items)):
            guard let count = (left.numericValue == nil ? right : left).integerValue else { break }
            guard count > 0, !items.isEmpty else { return .list([]) }
            let (total, overflow) = items.count.multipliedReportingOverflow(by: count)
            if overflow { throw integerOverflow() }
            try checkLength(total)
            return .list(Array([[Value]](repeating: items, count: count).joined()))
        case (.modulo, .string(let format), _):
            return .string(try percentFormat(format, right))
        default:
            break
        }
        if op == .add, case .string = left {
            throw JinjaError(.type, "can only concatenate str (not \"\(right.typeName)\") to str")
        }
        if op == .add, case .list = left {
            throw JinjaError(.type, "can only concatenate list (not \"\(right.typeName)\") to list")
        }
        if op == .add, case .tuple = left {
            throw JinjaError(.type, "can only concatenate tuple (not \"\(right.typeName)\") to tuple")
        }
        if op == .multiply {
            for (sequence, count) in [(left, right), (right, left)] {
                switch sequence {
                case .string, .list, .tuple:
                    throw JinjaError(.type, "can't multiply sequence by non-int of type '\(count.typeName)'")
                default: break
                }
            }
        }
        let symbol = op == .power ? "** or pow()" : op.rawValue
        throw JinjaError(.type, "unsupported operand type(s) for \(symbol): '\(left.typeName)' and '\(right.typeName)'")
    }

    private func arithmetic(_ op: BinaryOperator, _ a: Number, _ b: Number) throws(JinjaError) -> Value {
        if case .int(let x) = a, case .int(let y) = b {
            switch op {
            case .add:
                let (result, overflow) = x.addingReportingOverflow(y)
                if overflow { throw integerOverflow() }
                return .int(result)
            case .subtract:
                let (result, overflow) = x.subtractingReportingOverflow(y)
                if overflow { throw integerOverflow() }
                return .int(result)
            case .multiply:
                let (result, overflow) = x.multipliedReportingOverflow(by: y)
                if overflow { throw integerOverflow() }
                return .int(result)
            case .divide:
                if y == 0 { throw JinjaError(.value, "division by zero") }
                return .float(Double(x) / Double(y))
            case .floorDivide, .modulo:
                if y == 0 { throw JinjaError(.value, op == .modulo ? "integer modulo by zero" : "integer division or modulo by zero") }
                if x == Int.min && y == -1 {
                    if op == .modulo { return .int(0) }
                    throw integerOverflow()
                }
                var quotient = x / y
                var remainder = x % y
                // Python rounds the quotient toward negative infinity; the remainder takes the divisor's sign.
                if remainder != 0 && ((remainder < 0) != (y < 0)) {
                    quotient -= 1
                    remainder += y
                }
                return .int(op == .modulo ? remainder : quotient)
            case .power:
                if y < 0 { return .float(pow(Double(x), Double(y))) }
                var result = 1
                var base = x
                var exponent = y
                while exponent > 0 {
                    if exponent & 1 == 1 {
                        let (product, overflow) = result.multipliedReportingOverflow(by: base)
                        if overflow { throw integerOverflow() }
                        result = product
                    }
                    exponent >>= 1
                    if exponent > 0 {
                        let (square, overflow) = base.multipliedReportingOverflow(by: base)
                        if overflow { throw integerOverflow() }
                        base = square
                    }
                }
                return .int(result)
            case .and, .or:
                break
            }
        }
        let x = a.double
        let y = b.double
        switch op {
        case .add: return .float(x + y)
        case .subtract: return .float(x - y)
        case .multiply: return .float(x * y)
        case .divide:
            if y == 0 { throw JinjaError(.value, "float division by zero") }
            return .float(x / y)
        case .floorDivide:
            if y == 0 { throw JinjaError(.value, "float floor division by zero") }
            return .float((x / y).rounded(.down))
        case .modulo:
            if y == 0 { throw JinjaError(.value, "float modulo") }
            var remainder = fmod(x, y)
            if remainder != 0 && ((remainder < 0) != (y < 0)) { remainder += y }
            return .float(remainder)
        case .power:
            if x == 0 && y < 0 { throw JinjaError(.value, "0.0 cannot be raised to a negative power") }
            if x < 0 && y.rounded() != y { throw JinjaError(.value, "complex results are not supported") }
            let result = pow(x, y)
            if result.isInfinite && x.isFinite && y.isFinite { throw JinjaError(.value, "(34, 'Numerical result out of range')") }
            return .float(result)
        case .and, .or:
            return .none
        }
    }

    func compare(_ op: CompareOperator, _ left: Value, _ right: Value) throws(JinjaError) -> Bool {
        switch op {
        case .equal: return left.pythonEquals(right)
        case .notEqual: return !left.pythonEquals(right)
        case .less: return try left.pythonLessThan(right, operatorName: "<")
        case .greater: return try right.pythonLessThan(left, operatorName: ">", swapped: true)
        case .lessEqual: return try left.pythonLessThan(right, operatorName: "<=") || left.pythonEquals(right)
        case .greaterEqual: return try right.pythonLessThan(left, operatorName: ">=", swapped: true) || left.pythonEquals(right)
        case .in: return try contains(right, left)
        case .notIn: return !(try contains(right, left))
        }
    }

    /// Python's `item in container`.
    func contains(_ container: Value, _ item: Value) throws(JinjaError) -> Bool {
        switch container {
        case .string(let text):
            guard case .string(let needle) = item else {
                if case .undefined(let undefined) = item { throw undefined.error }
                throw JinjaError(.type, "'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return Self.contains(Array(text.utf8), Array(needle.utf8))
        case .list(let items), .tuple(let items), .iterator(let items), .view(_, let items):
            return items.contains { $0.pythonEquals(item) }
        case .dict(let dict):
            _ = try DictKey(item)
            return dict.get(item) != nil
        case .undefined:
            return false
        case .failedIterator(let error):
            throw error
        default:
            throw JinjaError(.type, "argument of type '\(container.typeName)' is not iterable")
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool { find(needle, in: haystack, from: 0) != nil }

    /// The byte offset of the first occurrence of `needle` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        if needle.isEmpty { return start <= haystack.count ? start : nil }
        guard needle.count <= haystack.count else { return nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    // MARK: Attributes, items, slices

    /// jinja2's sandboxed `getattr`: a Python attribute (a method) first, then the item of that name.
    func attribute(of object: Value, _ name: String) throws(JinjaError) -> Value {
        if case .undefined(let undefined) = object { throw undefined.error }
        if let method = try method(of: object, name) { return method }
        switch object {
        case .dict(let dict):
            if let value = dict.get(name) { return value }
        case .namespace(let namespace):
            if let value = namespace.attributes.get(name) { return value }
        case .loop(let loop):
            if let value = loopAttribute(loop, name) { return value }
        default:
            break
        }
        return .undefined(Undefined(name: name, owner: object.objectTypeDescription))
    }

    /// jinja2's sandboxed `getitem`: the item first, then (for string keys) the attribute of that name.
    func item(of object: Value, _ key: Value) throws(JinjaError) -> Value {
        if case .undefined(let undefined) = object { throw undefined.error }
        switch object {
        case .dict(let dict):
            if let value = dict.get(key) { return value }
        case .list(let items), .tuple(let items):
            if let index = key.integerValue, let position = Self.normalizedIndex(index, count: items.count) { return items[position] }
        case .string(let text):
            if let index = key.integerValue {
                let scalars = text.scalars
                if let position = Self.normalizedIndex(index, count: scalars.count) { return .string(String(scalars[position])) }
            }
        default:
            break
        }
        if case .string(let name) = key {
            if let method = try method(of: object, name) { return method }
            if case .namespace(let namespace) = object, let value = namespace.attributes.get(name) { return value }
            if case .loop(let loop) = object, let value = loopAttribute(loop, name) { return value }
            return .undefined(Undefined(name: name, owner: object.objectTypeDescription))
        }
        return .undefined(Undefined(name: key.pythonRepr, owner: object.objectTypeDescription, isItem: true))
    }

    static func normalizedIndex(_ index: Int, count: Int) -> Int? {
        let position = index < 0 ? index + count : index
        return position >= 0 && position < count ? position : nil
    }

    /// Python slicing of lists, tuples and strings (by code points), with negative indices and steps.
    func slice(_ value: Value, start: Value?, stop: Value?, step: Value?) throws(JinjaError) -> Value {
        func bound(_ value: Value?) throws(JinjaError) -> Int? {
            guard let value, !(value.isNone) else { return nil }
            if case .undefined(let undefined) = value { throw undefined.error }
            guard let integer = value.integerValue else {
                throw JinjaError(.type, "slice indices must be integers or None or have an __index__ method")
            }
            return integer
        }
        let stepValue = try bound(step) ?? 1
        if stepValue == 0 { throw JinjaError(.value, "slice step cannot be zero") }
        func indices(count: Int) throws(JinjaError) -> [Int] {
            let given = (try bound(start), try bound(stop))
            let lower: Int
            let upper: Int
            if stepValue > 0 {
                lower = Self.clamp(given.0 ?? 0, count: count, low: 0, high: count)
                upper = Self.clamp(given.1 ?? count, count: count, low: 0, high: count)
            } else {
                lower = Self.clamp(given.0 ?? count - 1, count: count, low: -1, high: count - 1)
                upper = given.1.map { Self.clamp($0, count: count, low: -1, high: count - 1) } ?? -1
            }
            var result: [Int] = []
            var index = lower
            // Stepping by hand: a huge step must end the slice, not overflow.
            while stepValue > 0 ? index < upper : index > upper {
                result.append(index)
                let (next, overflow) = index.addingReportingOverflow(stepValue)
                if overflow { break }
                index = next
            }
            return result
        }
        switch value {
        case .undefined(let undefined):
            throw undefined.error
        case .list(let items):
            return .list(try indices(count: items.count).map { items[$0] })
        case .tuple(let items):
            return .tuple(try indices(count: items.count).map { items[$0] })
        case .string(let text):
            let scalars = text.scalars
            return .string(String(scalars: try indices(count: scalars.count).map { scalars[$0] }))
        case .dict:
            throw JinjaError(.type, "unhashable type: 'slice'")
        default:
            // Slices bypass jinja2's getitem: a plain Python subscript, so no undefined fallback.
            throw JinjaError(.type, "'\(value.typeName)' object is not subscriptable")
        }
    }

    /// CPython's `PySlice_AdjustIndices` for one bound.
    private static func clamp(_ index: Int, count: Int, low: Int, high: Int) -> Int {
        var position = index
        if position < 0 {
            position += count
            if position < low { position = low }
        } else if position > high {
            position = high
        }
        return position
    }

    // MARK: Loop

    private func loopAttribute(_ loop: LoopContext, _ name: String) -> Value? {
        let count = loop.items.count
        let index0 = loop.index0
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(count - index0)
        case "revindex0": return .int(count - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == count - 1)
        case "length": return .int(count)
        case "depth": return .int(loop.depth0 + 1)
        case "depth0": return .int(loop.depth0)
        case "previtem":
            return index0 > 0 ? loop.items[index0 - 1] : .undefined(Undefined(name: "previtem", hint: "there is no previous item"))
        case "nextitem":
            return index0 + 1 < count ? loop.items[index0 + 1] : .undefined(Undefined(name: "nextitem", hint: "there is no next item"))
        case "cycle":
            return .callable(
                Callable(name: "cycle") { positional, _, _ throws(JinjaError) in
                    guard !positional.isEmpty else { throw JinjaError(.type, "no items for cycling given") }
                    return positional[loop.index0 % positional.count]
                })
        case "changed":
            return .callable(
                Callable(name: "changed") { positional, _, _ throws(JinjaError) in
                    if let last = loop.lastChanged, last.count == positional.count, zip(last, positional).allSatisfy({ $0.pythonEquals($1) }) {
                        return .bool(false)
                    }
                    loop.lastChanged = positional
                    return .bool(true)
                })
        default: return nil
        }
    }
}

extension Value {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// The value as an integer when it is an int or a bool (Python's `__index__`).
    var integerValue: Int? {
        switch self {
        case .int(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        default: return nil
        }
    }
}
