// JinjaParser.swift
//
// Builds the syntax tree from tokens, following jinja2's grammar and operator precedence
// (lowest first): `x if c else y`, `or`, `and`, `not`, comparisons (`== != < <= > >= in`,
// `not in`), `+ -`, `~`, `* / // %`, `**`, unary `- +`, then postfix (`.attr`, `[item]`,
// `[a:b:c]`, calls) with filters (`|f`) and tests (`is t`). Filters and tests are checked
// against the ones the engine provides at parse time, as jinja2 does at compile time.

struct JinjaParser {
    private let tokens: [JinjaToken]
    private let templateName: String
    private var index = 0
    private var depth = 0
    /// Names read inside the macros being parsed (to know whether they use varargs, kwargs, caller).
    private var macroNameScopes: [Set<String>] = []
    /// How deeply expressions and blocks may nest before the template is rejected.
    static let maximumNesting = 200

    static func parse(_ tokens: [JinjaToken], templateName: String) throws(JinjaError) -> [Statement] {
        var parser = JinjaParser(tokens: tokens, templateName: templateName)
        let (body, _) = try parser.parseStatements(until: [], blockName: nil)
        return body
    }

    private init(tokens: [JinjaToken], templateName: String) {
        self.tokens = tokens
        self.templateName = templateName
    }

    // MARK: Token helpers

    private var current: JinjaToken { tokens[index] }

    private func peek(_ ahead: Int = 1) -> JinjaToken {
        tokens[min(index + ahead, tokens.count - 1)]
    }

    private mutating func next() -> JinjaToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func error(_ message: String, at position: SourcePosition? = nil) -> JinjaError {
        let where_ = position ?? current.position
        return JinjaError(.syntax, message, templateName: templateName, line: where_.line, column: where_.column)
    }

    private func isOp(_ op: String, _ token: JinjaToken? = nil) -> Bool {
        if case .op(let value) = (token ?? current).kind { return value == op }
        return false
    }

    private func isName(_ name: String, _ token: JinjaToken? = nil) -> Bool {
        if case .name(let value) = (token ?? current).kind { return value == name }
        return false
    }

    private var currentName: String? {
        if case .name(let value) = current.kind { return value }
        return nil
    }

    private mutating func skipOp(_ op: String) -> Bool {
        guard isOp(op) else { return false }
        _ = next()
        return true
    }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        _ = next()
        return true
    }

    private mutating func expectOp(_ op: String) throws(JinjaError) {
        guard skipOp(op) else { throw error("expected token '\(op)', got '\(current.description)'") }
    }

    private mutating func expectName() throws(JinjaError) -> String {
        guard let name = currentName else { throw error("expected token 'name', got '\(current.description)'") }
        _ = next()
        return name
    }

    private mutating func expectBlockEnd() throws(JinjaError) {
        guard case .blockEnd = current.kind else {
            throw error("expected token 'end of statement block', got '\(current.description)'")
        }
        _ = next()
    }

    private mutating func enterNesting() throws(JinjaError) {
        depth += 1
        if depth > Self.maximumNesting { throw error("the template nests deeper than \(Self.maximumNesting) levels") }
    }

    // MARK: Statements

    /// Parses statements up to a block tag named in `until` (left unconsumed after `{%`);
    /// returns them and the tag that ended them.
    private mutating func parseStatements(until endTags: [String], blockName: String?) throws(JinjaError) -> ([Statement], String?) {
        try enterNesting()
        defer { depth -= 1 }
        var body: [Statement] = []
        while true {
            let token = current
            switch token.kind {
            case .data(let text):
                _ = next()
                body.append(Statement(kind: .text(text), position: token.position))
            case .variableBegin:
                _ = next()
                let expression = try parseTuple(withCondition: true)
                guard case .variableEnd = current.kind else {
                    throw error("expected token 'end of print statement', got '\(current.description)'")
                }
                _ = next()
                body.append(Statement(kind: .output(expression), position: token.position))
            case .blockBegin:
                let tag = peek()
                if case .name(let name) = tag.kind, endTags.contains(name) {
                    _ = next()
                    return (body, name)
                }
                _ = next()
                body.append(try parseStatement(endTags: endTags, blockName: blockName))
            case .end:
                if let blockName {
                    throw error(
                        "Unexpected end of template. Jinja was looking for the following tags: \(Self.describe(endTags)). "
                            + "The innermost block that needs to be closed is '\(blockName)'.")
                }
                return (body, nil)
            default:
                throw error("unexpected '\(token.description)'")
            }
        }
    }

    private static func describe(_ tags: [String]) -> String {
        tags.map { "'\($0)'" }.joined(separator: " or ")
    }

    private mutating func parseStatement(endTags: [String], blockName: String?) throws(JinjaError) -> Statement {
        let position = current.position
        guard let tag = currentName else { throw error("tag name expected") }
        _ = next()
        switch tag {
        case "if": return try parseIf(position)
        case "for": return try parseFor(position)
        case "set": return try parseSet(position)
        case "macro": return try parseMacro(position)
        case "call": return try parseCallBlock(position)
        case "filter": return try parseFilterBlock(position)
        case "with": return try parseWith(position)
        case "generation":
            try expectBlockEnd()
            let body = try parseBody(until: ["endgeneration"], blockName: "generation")
            return Statement(kind: .generation(body), position: position)
        case "break", "continue":
            try expectBlockEnd()
            return Statement(kind: tag == "break" ? .break : .continue, position: position)
        case "block", "extends", "include", "import", "from", "autoescape", "do", "trans":
            throw error("the '\(tag)' tag is not supported in chat templates", at: position)
        default:
            var message = "Encountered unknown tag '\(tag)'."
            if let blockName {
                message += " Jinja was looking for the following tags: \(Self.describe(endTags)). "
                    + "The innermost block that needs to be closed is '\(blockName)'."
            }
            throw error(message, at: position)
        }
    }

    /// Parses a body ended by one of `endTags`, consuming the end tag and its `%}`.
    private mutating func parseBody(until endTags: [String], blockName: String) throws(JinjaError) -> [Statement] {
        let (body, _) = try parseStatements(until: endTags, blockName: blockName)
        _ = next()  // the end tag's name
        try expectBlockEnd()
        return body
    }

    private mutating func parseIf(_ position: SourcePosition) throws(JinjaError) -> Statement {
        var branches: [(condition: Expression, body: [Statement])] = []
        var otherwise: [Statement] = []
        var condition = try parseTuple(withCondition: false)
        while true {
            try expectBlockEnd()
            let (body, endTag) = try parseStatements(until: ["elif", "else", "endif"], blockName: "if")
            branches.append((condition, body))
            _ = next()
            if endTag == "elif" {
                condition = try parseTuple(withCondition: false)
                continue
            }
            if endTag == "else" {
                try expectBlockEnd()
                otherwise = try parseBody(until: ["endif"], blockName: "if")
            } else {
                try expectBlockEnd()
            }
            break
        }
        return Statement(kind: .if(branches: branches, otherwise: otherwise), position: position)
    }

    private mutating func parseFor(_ position: SourcePosition) throws(JinjaError) -> Statement {
        let target = try parseAssignTarget(endNames: ["in"], allowNamespace: false)
        guard skipName("in") else { throw error("expected token 'in', got '\(current.description)'") }
        let iterable = try parseTuple(withCondition: false, endNames: ["recursive"])
        var filter: Expression?
        if skipName("if") { filter = try parseExpression() }
        if isName("recursive") { throw error("recursive for loops are not supported") }
        try expectBlockEnd()
        let (body, endTag) = try parseStatements(until: ["endfor", "else"], blockName: "for")
        _ = next()
        try expectBlockEnd()
        var otherwise: [Statement] = []
        if endTag == "else" { otherwise = try parseBody(until: ["endfor"], blockName: "for") }
        return Statement(
            kind: .for(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise), position: position)
    }

    private mutating func parseSet(_ position: SourcePosition) throws(JinjaError) -> Statement {
        let target = try parseAssignTarget(endNames: [], allowNamespace: true)
        if skipOp("=") {
            let value = try parseTuple(withCondition: true)
            try expectBlockEnd()
            return Statement(kind: .set(target, value), position: position)
        }
        let filters = try parseFilterChain(requireFirstPipe: true)
        try expectBlockEnd()
        let body = try parseBody(until: ["endset"], blockName: "set")
        return Statement(kind: .setBlock(target, filters: filters, body: body), position: position)
    }

    private mutating func parseMacro(_ position: SourcePosition) throws(JinjaError) -> Statement {
        let name = try expectName()
        let parameters = try parseSignature()
        try expectBlockEnd()
        let definition = try parseMacroBody(name: name, parameters: parameters, endTag: "endmacro")
        return Statement(kind: .macro(definition), position: position)
    }

    private mutating func parseMacroBody(name: String, parameters: [MacroParameter], endTag: String) throws(JinjaError) -> MacroDefinition {
        macroNameScopes.append([])
        let body = try parseBody(until: [endTag], blockName: endTag.dropFirst(3).description)
        let names = macroNameScopes.removeLast()
        if !macroNameScopes.isEmpty { macroNameScopes[macroNameScopes.count - 1].formUnion(names) }
        return MacroDefinition(
            name: name, parameters: parameters, body: body,
            usesVarargs: names.contains("varargs"), usesKwargs: names.contains("kwargs"), usesCaller: names.contains("caller"))
    }

    private mutating func parseSignature() throws(JinjaError) -> [MacroParameter] {
        var parameters: [MacroParameter] = []
        try expectOp("(")
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            let name = try expectName()
            if skipOp("=") {
                parameters.append(MacroParameter(name: name, defaultValue: try parseExpression()))
            } else {
                if parameters.contains(where: { $0.defaultValue != nil }) {
                    throw error("non-default argument follows default argument")
                }
                parameters.append(MacroParameter(name: name, defaultValue: nil))
            }
        }
        try expectOp(")")
        return parameters
    }

    private mutating func parseCallBlock(_ position: SourcePosition) throws(JinjaError) -> Statement {
        let parameters = isOp("(") ? try parseSignature() : []
        let call = try parseExpression()
        guard case .call = call.kind else { throw error("expected call", at: call.position) }
        try expectBlockEnd()
        let caller = try parseMacroBody(name: "caller", parameters: parameters, endTag: "endcall")
        return Statement(kind: .callBlock(call: call, caller: caller), position: position)
    }

    private mutating func parseFilterBlock(_ position: SourcePosition) throws(JinjaError) -> Statement {
        let filters = try parseFilterChain(requireFirstPipe: false)
        try expectBlockEnd()
        let body = try parseBody(until: ["endfilter"], blockName: "filter")
        return Statement(kind: .filterBlock(filters, body: body), position: position)
    }

    private mutating func parseWith(_ position: SourcePosition) throws(JinjaError) -> Statement {
        var assignments: [(AssignTarget, Expression)] = []
        while !isBlockEnd {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget(endNames: [], allowNamespace: false)
            try expectOp("=")
            assignments.append((target, try parseExpression()))
        }
        try expectBlockEnd()
        let body = try parseBody(until: ["endwith"], blockName: "with")
        return Statement(kind: .with(assignments: assignments, body: body), position: position)
    }

    private var isBlockEnd: Bool {
        if case .blockEnd = current.kind { return true }
        return false
    }

    /// `| name(args) | name ...` for filter blocks and filtered block sets.
    private mutating func parseFilterChain(requireFirstPipe: Bool) throws(JinjaError) -> [FilterApplication] {
        var filters: [FilterApplication] = []
        var first = !requireFirstPipe
        while first || isOp("|") {
            if !first { _ = next() }
            first = false
            let position = current.position
            let name = try parseDottedName()
            try checkFilter(name, at: position)
            let arguments = isOp("(") ? try parseCallArguments() : CallArguments()
            filters.append(FilterApplication(name: name, arguments: arguments, position: position))
        }
        return filters
    }

    private mutating func parseAssignTarget(endNames: Set<String>, allowNamespace: Bool) throws(JinjaError) -> AssignTarget {
        if allowNamespace, case .name(let name) = current.kind, isOp(".", peek()) {
            _ = next()
            _ = next()
            let attribute = try expectName()
            return .attribute(name, attribute)
        }
        var targets: [AssignTarget] = []
        var isTuple = false
        while true {
            if !targets.isEmpty { try expectOp(",") }
            if isBlockEnd || isOp(")") || isOp("=") || endNames.contains(currentName ?? "\u{0}") { break }
            targets.append(try parseSimpleTarget())
            if isOp(",") { isTuple = true } else { break }
        }
        if targets.isEmpty { throw error("expected an assignment target, got '\(current.description)'") }
        return isTuple ? .tuple(targets) : targets[0]
    }

    private mutating func parseSimpleTarget() throws(JinjaError) -> AssignTarget {
        if skipOp("(") {
            var targets: [AssignTarget] = []
            while !isOp(")") {
                if !targets.isEmpty { try expectOp(",") }
                if isOp(")") { break }
                targets.append(try parseSimpleTarget())
            }
            try expectOp(")")
            return .tuple(targets)
        }
        let position = current.position
        let name = try expectName()
        if ["true", "false", "none", "True", "False", "None"].contains(name) {
            throw error("can't assign to '\(name)'", at: position)
        }
        return .name(name)
    }

    // MARK: Expressions

    /// A comma-separated list of expressions: one expression, or a tuple when there is a comma.
    private mutating func parseTuple(withCondition: Bool, endNames: Set<String> = [], explicitParentheses: Bool = false) throws(JinjaError) -> Expression {
        let position = current.position
        var items: [Expression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(endNames) { break }
            items.append(withCondition ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParentheses { throw error("Expected an expression, got '\(current.description)'") }
        }
        return Expression(kind: .tuple(items), position: position)
    }

    private func isTupleEnd(_ endNames: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .end: return true
        case .op(")"): return true
        case .name(let name): return endNames.contains(name)
        default: return false
        }
    }

    private mutating func parseExpression() throws(JinjaError) -> Expression {
        try enterNesting()
        defer { depth -= 1 }
        var expression = try parseOr()
        while isName("if") {
            let position = current.position
            _ = next()
            let condition = try parseOr()
            let otherwise = skipName("else") ? try parseExpression() : nil
            expression = Expression(kind: .conditional(condition: condition, then: expression, otherwise: otherwise), position: position)
        }
        return expression
    }

    private mutating func parseOr() throws(JinjaError) -> Expression {
        var left = try parseAnd()
        while isName("or") {
            let position = current.position
            _ = next()
            left = Expression(kind: .binary(.or, left, try parseAnd()), position: position)
        }
        return left
    }

    private mutating func parseAnd() throws(JinjaError) -> Expression {
        var left = try parseNot()
        while isName("and") {
            let position = current.position
            _ = next()
            left = Expression(kind: .binary(.and, left, try parseNot()), position: position)
        }
        return left
    }

    private mutating func parseNot() throws(JinjaError) -> Expression {
        if isName("not") {
            let position = current.position
            _ = next()
            try enterNesting()
            defer { depth -= 1 }
            return Expression(kind: .not(try parseNot()), position: position)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(JinjaError) -> Expression {
        let position = current.position
        let left = try parseMath1()
        var operations: [(CompareOperator, Expression)] = []
        while true {
            if case .op(let op) = current.kind, let comparison = CompareOperator(rawValue: op), comparison != .in, comparison != .notIn {
                _ = next()
                operations.append((comparison, try parseMath1()))
            } else if skipName("in") {
                operations.append((.in, try parseMath1()))
            } else if isName("not") && isName("in", peek()) {
                _ = next()
                _ = next()
                operations.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? left : Expression(kind: .compare(left, operations), position: position)
    }

    private mutating func parseMath1() throws(JinjaError) -> Expression {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let position = current.position
            let op: BinaryOperator = isOp("+") ? .add : .subtract
            _ = next()
            left = Expression(kind: .binary(op, left, try parseConcat()), position: position)
        }
        return left
    }

    private mutating func parseConcat() throws(JinjaError) -> Expression {
        let position = current.position
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : Expression(kind: .concat(items), position: position)
    }

    private mutating func parseMath2() throws(JinjaError) -> Expression {
        var left = try parsePower()
        while true {
            let op: BinaryOperator
            if isOp("*") { op = .multiply } else if isOp("/") { op = .divide } else if isOp("//") { op = .floorDivide } else if isOp("%") {
                op = .modulo
            } else {
                break
            }
            let position = current.position
            _ = next()
            left = Expression(kind: .binary(op, left, try parsePower()), position: position)
        }
        return left
    }

    private mutating func parsePower() throws(JinjaError) -> Expression {
        var left = try parseUnary(withFilter: true)
        while isOp("**") {
            let position = current.position
            _ = next()
            left = Expression(kind: .binary(.power, left, try parseUnary(withFilter: true)), position: position)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool) throws(JinjaError) -> Expression {
        try enterNesting()
        defer { depth -= 1 }
        let position = current.position
        var node: Expression
        if skipOp("-") {
            node = Expression(kind: .negate(try parseUnary(withFilter: false)), position: position)
        } else if skipOp("+") {
            node = Expression(kind: .plus(try parseUnary(withFilter: false)), position: position)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws(JinjaError) -> Expression {
        let token = current
        switch token.kind {
        case .name(let name):
            _ = next()
            switch name {
            case "true", "True": return Expression(kind: .constant(.bool(true)), position: token.position)
            case "false", "False": return Expression(kind: .constant(.bool(false)), position: token.position)
            case "none", "None": return Expression(kind: .constant(.none), position: token.position)
            default:
                if !macroNameScopes.isEmpty { macroNameScopes[macroNameScopes.count - 1].insert(name) }
                return Expression(kind: .name(name), position: token.position)
            }
        case .string(let text):
            _ = next()
            var joined = text
            // Adjacent string literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                joined += more
                _ = next()
            }
            return Expression(kind: .constant(.string(joined)), position: token.position)
        case .integer(let value):
            _ = next()
            return Expression(kind: .constant(.int(value)), position: token.position)
        case .float(let value):
            _ = next()
            return Expression(kind: .constant(.float(value)), position: token.position)
        case .op("("):
            _ = next()
            let expression = try parseTuple(withCondition: true, explicitParentheses: true)
            try expectOp(")")
            return expression
        case .op("["):
            _ = next()
            var items: [Expression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return Expression(kind: .list(items), position: token.position)
        case .op("{"):
            _ = next()
            var items: [(key: Expression, value: Expression)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return Expression(kind: .dict(items), position: token.position)
        default:
            throw error("unexpected '\(token.description)'")
        }
    }

    private mutating func parsePostfix(_ start: Expression) throws(JinjaError) -> Expression {
        var node = start
        while true {
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = Expression(kind: .call(node, try parseCallArguments()), position: node.position)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ start: Expression) throws(JinjaError) -> Expression {
        var node = start
        while true {
            if isOp("|") {
                _ = next()
                let position = current.position
                let name = try parseDottedName()
                try checkFilter(name, at: position)
                let arguments = isOp("(") ? try parseCallArguments() : CallArguments()
                node = Expression(kind: .filter(node, name: name, arguments), position: position)
            } else if isName("is") {
                _ = next()
                let negated = skipName("not")
                let position = current.position
                let name = try parseDottedName()
                try checkTest(name, at: position)
                var arguments = CallArguments()
                if isOp("(") {
                    arguments = try parseCallArguments()
                } else if startsTestArgument {
                    if isName("is") { throw error("You cannot chain multiple tests with is") }
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                node = Expression(kind: .test(node, name: name, arguments, negated: negated), position: position)
            } else if isOp("(") {
                node = Expression(kind: .call(node, try parseCallArguments()), position: node.position)
            } else {
                return node
            }
        }
    }

    /// Whether the token after a test name starts its single argument (`x is divisibleby 3`).
    private var startsTestArgument: Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and"].contains(name)
        case .string, .integer, .float, .op("["), .op("{"): return true
        default: return false
        }
    }

    private mutating func parseDottedName() throws(JinjaError) -> String {
        var name = try expectName()
        while isOp(".") {
            _ = next()
            name += "." + (try expectName())
        }
        return name
    }

    private mutating func parseSubscript(_ node: Expression) throws(JinjaError) -> Expression {
        let token = next()
        if case .op(".") = token.kind {
            let attribute = current
            switch attribute.kind {
            case .name(let name):
                _ = next()
                return Expression(kind: .attribute(node, name), position: attribute.position)
            case .integer(let value):
                _ = next()
                return Expression(
                    kind: .item(node, Expression(kind: .constant(.int(value)), position: attribute.position)), position: attribute.position)
            default:
                throw error("expected name or number")
            }
        }
        var arguments: [Expression] = []
        while !isOp("]") {
            if !arguments.isEmpty { try expectOp(",") }
            arguments.append(try parseSubscribed())
        }
        try expectOp("]")
        let index = arguments.count == 1 ? arguments[0] : Expression(kind: .tuple(arguments), position: token.position)
        if case .slice(_, let start, let stop, let step) = index.kind {
            return Expression(kind: .slice(node, start: start, stop: stop, step: step), position: token.position)
        }
        return Expression(kind: .item(node, index), position: token.position)
    }

    /// One subscript: an expression or a slice `start:stop:step` (a placeholder node carries the slice parts).
    private mutating func parseSubscribed() throws(JinjaError) -> Expression {
        let position = current.position
        var start: Expression?
        if isOp(":") {
            _ = next()
        } else {
            let expression = try parseExpression()
            if !isOp(":") { return expression }
            _ = next()
            start = expression
        }
        var stop: Expression?
        if !isOp(":") && !isOp("]") && !isOp(",") { stop = try parseExpression() }
        var step: Expression?
        if skipOp(":"), !isOp("]") && !isOp(",") { step = try parseExpression() }
        let placeholder = Expression(kind: .constant(.none), position: position)
        return Expression(kind: .slice(placeholder, start: start, stop: stop, step: step), position: position)
    }

    private mutating func parseCallArguments() throws(JinjaError) -> CallArguments {
        try expectOp("(")
        var arguments = CallArguments()
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            let hasExtras = arguments.extraPositional != nil || arguments.extraKeyword != nil
            if isOp("*") {
                if hasExtras { throw error("invalid syntax for function call expression") }
                _ = next()
                arguments.extraPositional = try parseExpression()
            } else if isOp("**") {
                if arguments.extraKeyword != nil { throw error("invalid syntax for function call expression") }
                _ = next()
                arguments.extraKeyword = try parseExpression()
            } else if case .name(let name) = current.kind, isOp("=", peek()) {
                if hasExtras { throw error("invalid syntax for function call expression") }
                _ = next()
                _ = next()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                if !arguments.keyword.isEmpty || hasExtras { throw error("invalid syntax for function call expression") }
                arguments.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return arguments
    }

    private func checkFilter(_ name: String, at position: SourcePosition) throws(JinjaError) {
        guard JinjaBuiltins.filterNames.contains(name) else { throw error("No filter named '\(name)'.", at: position) }
    }

    private func checkTest(_ name: String, at position: SourcePosition) throws(JinjaError) {
        guard JinjaBuiltins.testNames.contains(name) else { throw error("No test named '\(name)'.", at: position) }
    }
}
