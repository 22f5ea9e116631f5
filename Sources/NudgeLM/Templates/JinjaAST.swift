// JinjaAST.swift
//
// The syntax tree of a parsed template. Every expression and statement keeps its source
// position so that runtime errors can name the line and column at fault.

/// A literal constant.
enum JinjaConstant: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
}

/// A binary operator.
enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%", power = "**"
    case and, or
}

/// A comparison operator (comparisons chain as in Python: `a < b < c`).
enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case `in` = "in", notIn = "not in"
}

/// A call's arguments: positional, then keyword, then `*sequence` and `**mapping`.
struct CallArguments: Sendable {
    var positional: [Expression] = []
    var keyword: [(name: String, value: Expression)] = []
    var extraPositional: Expression?
    var extraKeyword: Expression?
}

/// An expression node.
struct Expression: Sendable {
    indirect enum Kind: Sendable {
        case constant(JinjaConstant)
        case name(String)
        case list([Expression])
        case tuple([Expression])
        case dict([(key: Expression, value: Expression)])
        /// `object.name`
        case attribute(Expression, String)
        /// `object[index]`
        case item(Expression, Expression)
        /// `object[start:stop:step]`
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, CallArguments)
        /// `value | name(arguments)`
        case filter(Expression, name: String, CallArguments)
        /// `value is [not] name(arguments)`
        case test(Expression, name: String, CallArguments, negated: Bool)
        case negate(Expression)
        case plus(Expression)
        case not(Expression)
        case binary(BinaryOperator, Expression, Expression)
        /// `a ~ b ~ c`
        case concat([Expression])
        case compare(Expression, [(CompareOperator, Expression)])
        /// `then if condition else otherwise`; without `else` the result is undefined when the condition is false.
        case conditional(condition: Expression, then: Expression, otherwise: Expression?)
    }

    var kind: Kind
    var position: SourcePosition
}

/// What `set` and `for` assign to.
indirect enum AssignTarget: Sendable {
    case name(String)
    case tuple([AssignTarget])
    /// `namespace.attribute`
    case attribute(String, String)
}

/// A macro parameter and its default.
struct MacroParameter: Sendable {
    var name: String
    var defaultValue: Expression?
}

/// A `{% macro %}` definition (also the body of a `{% call %}` block).
struct MacroDefinition: Sendable {
    var name: String
    var parameters: [MacroParameter]
    var body: [Statement]
    /// Whether the body reads `varargs`, `kwargs` and `caller`, which makes jinja2 accept extra arguments.
    var usesVarargs: Bool
    var usesKwargs: Bool
    var usesCaller: Bool
}

/// A filter application in `{% filter %}` or a filtered `{% set %}` block.
struct FilterApplication: Sendable {
    var name: String
    var arguments: CallArguments
    var position: SourcePosition
}

/// A statement node.
struct Statement: Sendable {
    indirect enum Kind: Sendable {
        /// Literal template text.
        case text(String)
        /// `{{ expression }}`
        case output(Expression)
        case `if`(branches: [(condition: Expression, body: [Statement])], otherwise: [Statement])
        case `for`(target: AssignTarget, iterable: Expression, filter: Expression?, body: [Statement], otherwise: [Statement])
        case set(AssignTarget, Expression)
        case setBlock(AssignTarget, filters: [FilterApplication], body: [Statement])
        case macro(MacroDefinition)
        /// `{% call(parameters) callee(arguments) %}body{% endcall %}`
        case callBlock(call: Expression, caller: MacroDefinition)
        case filterBlock([FilterApplication], body: [Statement])
        case with(assignments: [(AssignTarget, Expression)], body: [Statement])
        case `break`
        case `continue`
        /// `{% generation %}...{% endgeneration %}`: output whose range transformers records as assistant-generated.
        case generation([Statement])
    }

    var kind: Kind
    var position: SourcePosition
}
