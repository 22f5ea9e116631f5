// TOMLValue.swift
//
// What `TOMLParser` reads: TOML 1.0 values, tables that remember where each key was written,
// dates and times, and the parse error with its line and column.

/// A TOML value as written in a document.
enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// An offset date-time, local date-time, local date or local time.
    case dateTime(TOMLDateTime)
    /// A static array or an array of tables (`[[name]]`).
    case array([TOMLValue])
    /// A `[table]`, a table made by dotted keys, or an inline table.
    case table(TOMLTable)
}

/// A TOML table: its keys in the order they were first written, each with its position.
struct TOMLTable: Sendable, Equatable {
    /// One key of the table.
    struct Entry: Sendable, Equatable {
        var key: String
        var value: TOMLValue
        /// The 1-based line and column of the key (for a table made by a header, the header's key).
        var line: Int
        var column: Int
    }

    var entries: [Entry]

    init(entries: [Entry] = []) {
        self.entries = entries
    }

    /// The value of `key`, or nil.
    subscript(key: String) -> TOMLValue? {
        entries.first { $0.key == key }?.value
    }

    /// The keys, in file order.
    var keys: [String] { entries.map(\.key) }
}

/// A TOML date and/or time. Which parts are present gives its kind: date, time and offset
/// (offset date-time), date and time (local date-time), date only (local date), time only
/// (local time).
struct TOMLDateTime: Sendable, Equatable, CustomStringConvertible {
    /// A calendar date.
    struct Date: Sendable, Equatable {
        var year: Int
        var month: Int
        var day: Int
    }

    /// A time of day; `nanosecond` holds the fraction of a second (digits past the ninth are
    /// dropped, as the spec asks: truncated, not rounded).
    struct Time: Sendable, Equatable {
        var hour: Int
        var minute: Int
        var second: Int
        var nanosecond: Int
    }

    var date: Date?
    var time: Time?
    /// Minutes east of UTC (`Z` is 0); nil for local dates and times.
    var offsetMinutes: Int?

    /// The RFC 3339 form, e.g. `1979-05-27T07:32:00.5-07:00`, `1979-05-27`, `07:32:00`.
    var description: String {
        func pad(_ n: Int, _ width: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var out = ""
        if let date { out += "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2))" }
        if let time {
            if date != nil { out += "T" }
            out += "\(pad(time.hour, 2)):\(pad(time.minute, 2)):\(pad(time.second, 2))"
            if time.nanosecond > 0 {
                var fraction = pad(time.nanosecond, 9)
                while fraction.hasSuffix("0") { fraction.removeLast() }
                out += "." + fraction
            }
        }
        if let offsetMinutes {
            if offsetMinutes == 0 {
                out += "Z"
            } else {
                let magnitude = abs(offsetMinutes)
                out += (offsetMinutes < 0 ? "-" : "+") + "\(pad(magnitude / 60, 2)):\(pad(magnitude % 60, 2))"
            }
        }
        return out
    }
}

/// Why a TOML document could not be read, and where (1-based line and column, the column
/// counted in Unicode characters).
struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    var line: Int
    var column: Int
    var message: String

    var description: String { "line \(line), column \(column): \(message)" }
}
