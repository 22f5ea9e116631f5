// CSV and TSV datasets (RFC 4180: a header row, fields separated by a comma or a tab, quoted with
// double quotes where they hold the separator, quotes or line breaks, "" for a quote inside), and
// JSON files holding one top-level array of row objects. Each row becomes the same JSON object a
// JSONL line would be, so the shapes, column mapping and errors are those of JSONL.

import Foundation

enum DelimitedText {
    /// The rows of CSV/TSV text as objects keyed by the header, with their 1-based line numbers.
    static func objects(_ data: Data, separator: UInt8, fileName: String) throws -> [(number: Int, object: [String: JSONValue])] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw DatasetError(file: fileName, line: 0, field: nil, kind: .notUTF8("invalid UTF-8 bytes"))
        }
        let bytes = Array(text.utf8.drop { $0 == 0xEF || $0 == 0xBB || $0 == 0xBF })  // a UTF-8 byte-order mark
        var records: [(line: Int, fields: [String])] = []
        var field: [UInt8] = [], fields: [String] = []
        var line = 1, recordLine = 1, i = 0, quoted = false, fieldStarted = false
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            fieldStarted = false
        }
        func endRecord() {
            endField()
            if !(fields.count == 1 && fields[0].isEmpty) { records.append((recordLine, fields)) }  // blank lines
            fields.removeAll()
        }
        while i < bytes.count {
            let b = bytes[i]
            if quoted {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(b)
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if b == 0x0A { line += 1 }
                    field.append(b)
                }
            } else if b == UInt8(ascii: "\"") && !fieldStarted && field.isEmpty {
                quoted = true
                fieldStarted = true
            } else if b == separator {
                endField()
            } else if b == 0x0A || b == 0x0D {
                if b == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A { i += 1 }
                endRecord()
                line += 1
                recordLine = line
            } else {
                field.append(b)
                fieldStarted = true
            }
            i += 1
        }
        if quoted { throw DatasetError(file: fileName, line: recordLine, field: nil, kind: .inconsistent("a quoted field is not closed before the end of the file")) }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        guard let header = records.first else { return [] }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        if let empty = names.firstIndex(of: "") {
            throw DatasetError(file: fileName, line: header.line, field: nil, kind: .inconsistent("header column \(empty + 1) has no name"))
        }
        if let twice = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw DatasetError(file: fileName, line: header.line, field: twice, kind: .inconsistent("the header names this column twice"))
        }
        return try records.dropFirst().map { record in
            guard record.fields.count == names.count else {
                throw DatasetError(file: fileName, line: record.line, field: nil,
                                   kind: .inconsistent("\(record.fields.count) fields where the header has \(names.count)"))
            }
            return (record.line, Dictionary(uniqueKeysWithValues: zip(names, record.fields.map { JSONValue.string($0) })))
        }
    }

    /// The objects of a JSON file that holds one top-level array, numbered by position (1-based).
    static func arrayObjects(_ data: Data, fileName: String) throws -> [(number: Int, object: [String: JSONValue])] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw DatasetError(file: fileName, line: 0, field: nil, kind: .invalidJSON)
        }
        guard case .array(let items) = value else { throw DatasetError(file: fileName, line: 0, field: nil, kind: .notAnObject) }
        return try items.enumerated().map { index, item in
            guard case .object(let object) = item else { throw DatasetError(file: fileName, line: index + 1, field: nil, kind: .notAnObject, isRow: true) }
            return (index + 1, object)
        }
    }
}
