// ParquetFile.swift
//
// Reads a Parquet file (the format of datasets on the Hugging Face Hub) into rows of `JSONValue`,
// the same values a JSON Lines line parses to, so that both go through one row parser.
//
// Layout: `PAR1`, column chunks of pages, the Thrift-encoded FileMetaData, its 4-byte length,
// `PAR1`. Each leaf column of the schema is stored on its own as (repetition level, definition
// level, value) triples; rows are rebuilt per column, following the levels down the column's path
// (structs, optional fields, LIST groups), and the columns' partial rows are then merged into one
// object per row. Every failure is a `ParquetError` naming the file, and where it applies the
// row group, column and page.
//
// A file opened by path is read by ranges (the footer, then page by page), and rows are decoded a
// batch at a time across all columns (`makeRowIterator`; `forEachRowGroup` collects a row group),
// so memory holds the footer, a page per column and one batch of rows, not the file or a row group:
// a 1 GB file reads in about 50 MB, whether it has 76 row groups or one.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Parquet file that could not be read: `file: row group 0, column "messages.list.element.role", page 2: message`.
public struct ParquetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's name.
    public var file: String
    /// Where in the file (row group, column, page), or empty for the whole file.
    public var location: String
    /// What is wrong.
    public var message: String

    /// A readable message.
    public var description: String {
        location.isEmpty ? "\(file): \(message)" : "\(file): \(location): \(message)"
    }
}

/// Where a Parquet file's bytes come from: an array in memory, or a file read by ranges with `pread`
/// (not memory-mapped, so pages already decoded do not stay resident and count against RSS).
final class ParquetSource {
    let size: Int
    private let memory: [UInt8]
    private let descriptor: Int32

    init(bytes: [UInt8]) {
        memory = bytes
        size = bytes.count
        descriptor = -1
    }

    /// Opens `path` for reading; throws a message for a missing or unreadable file.
    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ParquetFailure("cannot open the file: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw ParquetFailure("cannot read the file's size: \(String(cString: strerror(errno)))")
        }
        memory = []
        size = Int(info.st_size)
        descriptor = fd
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The bytes at `range`, which the caller has checked lies within `size`.
    func read(_ range: Range<Int>) throws -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw ParquetFailure("bytes \(range) lie outside the file's \(size) bytes")
        }
        if descriptor < 0 { return Array(memory[range]) }
        var output = [UInt8](repeating: 0, count: range.count)
        var done = 0
        try output.withUnsafeMutableBytes { buffer in
            while done < range.count {
                let n = pread(descriptor, buffer.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw ParquetFailure(n == 0 ? "the file ended at byte \(range.lowerBound + done) (was it truncated while being read?)"
                                                : "read error: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
        return output
    }
}

/// A node of the Parquet schema as the file stores it (a flattened tree).
struct ParquetSchemaNode: Sendable {
    var name: String
    /// 0 required, 1 optional, 2 repeated.
    var repetition: Int
    var children: [ParquetSchemaNode]
    var leaf: ParquetLeafType?
    /// A LIST (or MAP) annotated group: its repeated child holds the elements.
    var isList: Bool
}

/// A node of the logical shape of rows, with the levels at which its values are present.
final class ParquetShape {
    enum Kind {
        case leaf(column: Int)
        case object([(name: String, shape: ParquetShape)])
        case list(element: ParquetShape, repetition: Int, nonEmptyDefinition: Int)
    }
    let kind: Kind
    /// Null when the definition level is below `presentDefinition` (optional fields only).
    let optional: Bool
    let presentDefinition: Int

    init(kind: Kind, optional: Bool, presentDefinition: Int) {
        self.kind = kind
        self.optional = optional
        self.presentDefinition = presentDefinition
    }
}

/// A leaf column: its path of shapes from the top-level field down, and its maximum levels.
struct ParquetColumn {
    var path: [ParquetShape]
    var dottedName: String
    var type: ParquetLeafType
    var maxDefinition: Int
    var maxRepetition: Int
}

/// Reads the rows of a Parquet file.
public struct ParquetFile {
    /// The file's name, used in errors.
    public let fileName: String
    /// The number of rows the footer declares.
    public let rowCount: Int
    /// The top-level column names, in schema order.
    public let columnNames: [String]

    let source: ParquetSource
    let metadata: ThriftStruct
    /// Rows decoded at a time: small enough that a batch of long texts stays a few megabytes
    /// (tests set it lower, so that batches end inside pages and rows span pages).
    var batchRows = 1024
    let topLevel: [(name: String, shape: ParquetShape)]
    let columns: [ParquetColumn]

    /// Parses the footer and schema of a Parquet file held in `data`.
    ///
    /// - Throws: `ParquetError` when the data is not Parquet or its metadata is corrupt.
    public init(data: Data, fileName: String) throws {
        try self.init(source: ParquetSource(bytes: [UInt8](data)), fileName: fileName)
    }

    /// Opens the Parquet file at `url` and parses its footer and schema; the rest is read as rows are asked for.
    ///
    /// - Throws: `ParquetError` when the file cannot be opened, is not Parquet or its metadata is corrupt.
    public init(contentsOf url: URL) throws {
        let source: ParquetSource
        do { source = try ParquetSource(path: url.path) } catch let failure as ParquetFailure {
            throw ParquetError(file: url.lastPathComponent, location: "", message: failure.message)
        }
        try self.init(source: source, fileName: url.lastPathComponent)
    }

    init(source: ParquetSource, fileName: String) throws {
        self.fileName = fileName
        self.source = source
        func fail(_ message: String) -> ParquetError { ParquetError(file: fileName, location: "", message: message) }
        let magic: [UInt8] = Array("PAR1".utf8)
        let size = source.size
        guard size >= 12 else { throw fail("not a Parquet file (it must start and end with PAR1)") }
        let head: [UInt8], tail: [UInt8]
        do {
            head = try source.read(0..<4)
            tail = try source.read(size - 8..<size)
        } catch let failure as ParquetFailure {
            throw fail(failure.message)
        }
        guard head == magic, Array(tail.suffix(4)) == magic else {
            throw fail("not a Parquet file (it must start and end with PAR1)")
        }
        let footerLength = Int(tail[0]) | Int(tail[1]) << 8 | Int(tail[2]) << 16 | Int(tail[3]) << 24
        guard footerLength > 0, footerLength <= size - 12 else {
            throw fail("footer length \(footerLength) does not fit in the file's \(size) bytes (truncated?)")
        }
        do {
            let footer = try source.read(size - 8 - footerLength..<size - 8)
            var reader = CompactReader(footer, from: 0, to: footer.count)
            var meta = try reader.readStruct()
            meta.name = "FileMetaData"
            metadata = meta
            rowCount = try meta.int(3, "num_rows", in: 0...Int64(Int.max))
            guard let schema = meta.list(2), !schema.isEmpty else { throw ParquetFailure("FileMetaData has no schema") }
            var elements: [ThriftStruct] = []
            for item in schema {
                guard case .structure(var element) = item else { throw ParquetFailure("schema entry is not a struct") }
                element.name = "SchemaElement"
                elements.append(element)
            }
            var index = 0
            let root = try Self.schemaNode(elements, &index, depth: 0)
            guard index == elements.count else { throw ParquetFailure("schema has \(elements.count - index) entries outside the tree") }
            var columns: [ParquetColumn] = []
            var fields: [(name: String, shape: ParquetShape)] = []
            for child in root.children {
                fields.append((child.name, try Self.shape(child, definition: 0, repetition: 0, path: [], prefix: "", columns: &columns)))
            }
            topLevel = fields
            self.columns = columns
            columnNames = fields.map(\.name)
        } catch let failure as ParquetFailure {
            throw fail("footer: \(failure.message)")
        }
    }

    /// Reads the schema element at `index` and its children.
    static func schemaNode(_ elements: [ThriftStruct], _ index: inout Int, depth: Int) throws -> ParquetSchemaNode {
        guard depth < 64 else { throw ParquetFailure("schema nests deeper than 64 levels") }
        guard index < elements.count else { throw ParquetFailure("schema ends inside a group") }
        let element = elements[index]
        index += 1
        let name = element.string(4) ?? ""
        let repetition = element.int(3).map(Int.init) ?? 0
        guard (0...2).contains(repetition) else { throw ParquetFailure("field \"\(name)\" has repetition type \(repetition)") }
        let childCount = element.int(5) ?? 0
        let logical = element.structure(10, named: "LogicalType")
        let converted = element.int(6)
        if childCount != 0 || element.int(1) == nil {
            guard childCount >= 0, childCount <= Int64(elements.count - index) else {
                throw ParquetFailure("field \"\(name)\" claims \(childCount) children")
            }
            var children: [ParquetSchemaNode] = []
            for _ in 0..<childCount { children.append(try schemaNode(elements, &index, depth: depth + 1)) }
            // LIST and MAP groups (converted types 3, 1, 2; logical types 3 and 2).
            let isList = converted == 3 || converted == 1 || converted == 2
                || logical?.fields[3] != nil || logical?.fields[2] != nil
            return ParquetSchemaNode(name: name, repetition: repetition, children: children, leaf: nil, isList: isList)
        }
        let physical = try element.int(1, "type", in: 0...7)
        var unsigned = converted == 13 || converted == 14
        if let integer = logical?.structure(10, named: "IntType"), integer.bool(2) == false { unsigned = true }
        // UTF8, ENUM and JSON converted types; STRING, ENUM and JSON logical types.
        let isText = converted == 0 || converted == 4 || converted == 19
            || logical?.fields[1] != nil || logical?.fields[4] != nil || logical?.fields[7] != nil
        let typeLength = try element.int(2).map { _ in try element.int(2, "type_length", in: 0...Int64(Int32.max)) } ?? 0
        let leaf = ParquetLeafType(physical: physical, typeLength: typeLength, unsigned: unsigned, isText: isText)
        return ParquetSchemaNode(name: name, repetition: repetition, children: [], leaf: leaf, isList: false)
    }

    /// The logical shape of `node`, whose parent's values are present at `definition`; appends its leaf columns.
    static func shape(_ node: ParquetSchemaNode, definition: Int, repetition: Int, path: [ParquetShape],
                      prefix: String, columns: inout [ParquetColumn]) throws -> ParquetShape {
        let name = prefix.isEmpty ? node.name : prefix + "." + node.name
        if node.repetition == 2 {
            // A repeated field outside a LIST group is a list of required elements.
            let element = ParquetSchemaNode(name: node.name, repetition: 0, children: node.children, leaf: node.leaf, isList: node.isList)
            return try list(element: element, elementName: prefix, optional: false, definition: definition,
                            presentDefinition: definition, repetition: repetition, path: path, columns: &columns)
        }
        let optional = node.repetition == 1
        let present = definition + (optional ? 1 : 0)
        if let leaf = node.leaf {
            let shape = ParquetShape(kind: .leaf(column: columns.count), optional: optional, presentDefinition: present)
            columns.append(ParquetColumn(path: path + [shape], dottedName: name, type: leaf,
                                         maxDefinition: present, maxRepetition: repetition))
            return shape
        }
        if node.isList, node.children.count == 1, node.children[0].repetition == 2 {
            let repeated = node.children[0]
            // Three-level lists wrap each element in a repeated one-field group; older two-level
            // writers repeat the element itself (a group named "array" or "<list>_tuple" is an element).
            let threeLevel = repeated.leaf == nil && repeated.children.count == 1
                && repeated.name != "array" && repeated.name != node.name + "_tuple"
            let element = threeLevel ? repeated.children[0]
                : ParquetSchemaNode(name: repeated.name, repetition: 0, children: repeated.children, leaf: repeated.leaf, isList: repeated.isList)
            let elementPrefix = threeLevel ? name + "." + repeated.name : name
            return try list(element: element, elementName: elementPrefix, optional: optional, definition: present,
                            presentDefinition: present, repetition: repetition, path: path, columns: &columns)
        }
        // A struct; a LIST/MAP group not in the standard layout reads as one too.
        var fields: [(name: String, shape: ParquetShape)] = []
        let placeholder = ParquetShape(kind: .object([]), optional: optional, presentDefinition: present)
        let first = columns.count
        for child in node.children {
            fields.append((child.name, try shape(child, definition: present, repetition: repetition, path: path + [placeholder],
                                                 prefix: name, columns: &columns)))
        }
        let shape = ParquetShape(kind: .object(fields), optional: optional, presentDefinition: present)
        // The children's paths were built with a placeholder for this node; put the real one in.
        for index in first..<columns.count { columns[index].path[path.count] = shape }
        return shape
    }

    /// A list shape whose elements are `element`; the list itself is present at `presentDefinition`.
    static func list(element: ParquetSchemaNode, elementName: String, optional: Bool, definition: Int, presentDefinition: Int,
                     repetition: Int, path: [ParquetShape], columns: inout [ParquetColumn]) throws -> ParquetShape {
        let placeholder = ParquetShape(kind: .object([]), optional: optional, presentDefinition: presentDefinition)
        let first = columns.count
        let elementShape = try shape(element, definition: definition + 1, repetition: repetition + 1,
                                     path: path + [placeholder], prefix: elementName, columns: &columns)
        let shape = ParquetShape(kind: .list(element: elementShape, repetition: repetition + 1, nonEmptyDefinition: definition + 1),
                                 optional: optional, presentDefinition: presentDefinition)
        for index in first..<columns.count { columns[index].path[path.count] = shape }
        return shape
    }

    /// The number of row groups.
    public var rowGroupCount: Int { metadata.list(4)?.count ?? 0 }

    /// Every row, as an object from top-level column names to values (the whole file in memory;
    /// `forEachRowGroup` holds one row group at a time, `makeRowIterator` one batch of rows).
    ///
    /// - Throws: `ParquetError` naming the row group, column and page of the first corrupt or unsupported data.
    public func rows() throws -> [[String: JSONValue]] {
        var rows: [[String: JSONValue]] = []
        try forEachRowGroup { rows.append(contentsOf: $0) }
        return rows
    }

    /// Calls `body` with each row group's rows in file order, decoding one row group at a time, and
    /// checks at the end that the row groups held the rows the footer declares.
    ///
    /// - Throws: `ParquetError` for corrupt data, or whatever `body` throws.
    public func forEachRowGroup(_ body: ([[String: JSONValue]]) throws -> Void) throws {
        let budget = DecodeBudget(fileSize: source.size)
        var total = 0
        for index in 0..<rowGroupCount {
            let reader = try RowGroupReader(file: self, group: index, budget: budget)
            var rows: [[String: JSONValue]] = []
            rows.reserveCapacity(reader.rowCount)
            while let batch = try reader.nextBatch() { rows += batch }
            total += rows.count
            try body(rows)
        }
        guard total == rowCount else {
            throw ParquetError(file: fileName, location: "", message: "the row groups hold \(total) rows but the footer says \(rowCount)")
        }
    }

    /// Rows one at a time, decoded a batch of rows at a time.
    public func makeRowIterator() -> RowIterator { RowIterator(file: self) }

    /// Yields a Parquet file's rows in order. Pages are read and decoded as rows are asked for, a
    /// batch of rows across all columns at a time, so memory holds one page per column and one batch
    /// of rows, even when a large file is a single row group (pyarrow's default up to a million rows).
    public struct RowIterator {
        let file: ParquetFile
        let budget: DecodeBudget
        var group = 0
        var reader: RowGroupReader?
        var buffer: [[String: JSONValue]] = []
        var position = 0
        var total = 0

        init(file: ParquetFile) {
            self.file = file
            budget = DecodeBudget(fileSize: file.source.size)
        }

        /// The next row, or nil after the last (having checked the footer's row count).
        ///
        /// - Throws: `ParquetError` for corrupt data.
        public mutating func next() throws -> [String: JSONValue]? {
            while position == buffer.count {
                // Released before the next batch is decoded, so two are never held at once.
                buffer = []
                position = 0
                if let reader, let batch = try reader.nextBatch() {
                    buffer = batch
                    total += batch.count
                    continue
                }
                reader = nil
                guard group < file.rowGroupCount else {
                    guard total == file.rowCount else {
                        throw ParquetError(file: file.fileName, location: "",
                                           message: "the row groups hold \(total) rows but the footer says \(file.rowCount)")
                    }
                    return nil
                }
                reader = try RowGroupReader(file: file, group: group, budget: budget)
                group += 1
            }
            defer { position += 1 }
            return buffer[position]
        }
    }

    func topLevelIndex(of column: ParquetColumn) -> Int {
        topLevel.firstIndex { $0.shape === column.path[0] } ?? 0
    }

    /// One column's values merged with another's: structs take both columns' fields, lists pair their elements.
    static func merge(_ a: JSONValue, _ b: JSONValue) throws -> JSONValue {
        switch (a, b) {
        case (.object(var x), .object(let y)):
            for (key, value) in y { x[key] = try x[key].map { try merge($0, value) } ?? value }
            return .object(x)
        case (.array(let x), .array(let y)):
            guard x.count == y.count else { throw ParquetFailure("columns of one list disagree on its length (\(x.count) and \(y.count))") }
            return .array(try zip(x, y).map { try merge($0, $1) })
        case (.null, .null): return .null
        default: throw ParquetFailure("columns of one struct disagree on whether it is null")
        }
    }

    /// Appends `count` levels of at most `max` (none when `max` is 0: all are 0).
    static func readLevels(_ cursor: inout ByteCursor, max: Int, count: Int, lengthPrefixed: Bool, into levels: inout [UInt32]) throws {
        guard max > 0 else {
            levels.append(contentsOf: repeatElement(0, count: count))
            return
        }
        var section = cursor
        if lengthPrefixed {
            let length = Int(try cursor.littleEndian(4))
            section = ByteCursor(cursor.bytes, try cursor.take(length))
        }
        let width = Int.bitWidth - max.leadingZeroBitCount
        let before = levels.count
        try ParquetEncoding.hybrid(&section, bitWidth: width, count: count, into: &levels)
        for level in levels[before...] where level > UInt32(max) {
            throw ParquetFailure("level \(level) above the column's maximum \(max)")
        }
    }

    /// Rebuilds `records` rows' values of one column from levels and values starting at `position`
    /// and `valueIndex` (which advance past them); `count` is how many levels are buffered, which
    /// must include the start of the record after the last one asked for, unless the chunk ends.
    static func assemble(_ column: ParquetColumn, repetitions: [UInt32], definitions: [UInt32], values: [JSONValue], count: Int,
                         records: Int, position: inout Int, valueIndex: inout Int) throws -> [JSONValue] {
        guard repetitions.count == count, definitions.count == count else { throw ParquetFailure("level counts disagree with the values") }
        func decode(_ depth: Int) throws -> JSONValue {
            let shape = column.path[depth]
            let definition = Int(definitions[position])
            if shape.optional && definition < shape.presentDefinition {
                position += 1
                return .null
            }
            switch shape.kind {
            case .leaf:
                position += 1
                guard valueIndex < values.count else { throw ParquetFailure("fewer values than levels say") }
                defer { valueIndex += 1 }
                return values[valueIndex]
            case .object(let fields):
                let key = fields.first { $0.shape === column.path[depth + 1] }?.name ?? ""
                return .object([key: try decode(depth + 1)])
            case .list(_, let repetition, let nonEmpty):
                if definition < nonEmpty {
                    position += 1
                    return .array([])
                }
                var items: [JSONValue] = []
                repeat {
                    items.append(try decode(depth + 1))
                } while position < count && Int(repetitions[position]) == repetition
                if position < count, Int(repetitions[position]) > repetition {
                    throw ParquetFailure("repetition level \(repetitions[position]) where at most \(repetition) can follow")
                }
                return .array(items)
            }
        }
        var rows: [JSONValue] = []
        rows.reserveCapacity(records)
        while rows.count < records && position < count {
            guard repetitions[position] == 0 else { throw ParquetFailure("a row starts at repetition level \(repetitions[position]), not 0") }
            rows.append(try decode(0))
        }
        return rows
    }
}

/// Decodes one row group a batch of rows at a time: each column chunk is read page by page, and
/// a batch takes the next rows of every column and merges them into objects.
final class RowGroupReader {
    let file: ParquetFile
    let group: Int
    let rowCount: Int
    let columns: [ColumnChunkReader]
    private var done = 0

    init(file: ParquetFile, group: Int, budget: DecodeBudget) throws {
        self.file = file
        self.group = group
        var location = "row group \(group)"
        do {
            guard case .structure(var metadata) = (file.metadata.list(4) ?? [])[group] else { throw ParquetFailure("not a struct") }
            metadata.name = "RowGroup"
            rowCount = try metadata.int(3, "num_rows", in: 0...Int64(Int.max))
            try budget.take(values: rowCount)
            let chunks = metadata.list(1) ?? []
            guard chunks.count == file.columns.count else {
                throw ParquetFailure("has \(chunks.count) column chunks but the schema has \(file.columns.count) columns")
            }
            var readers: [ColumnChunkReader] = []
            for (index, column) in file.columns.enumerated() {
                location = "row group \(group), column \"\(column.dottedName)\""
                guard case .structure(var chunk) = chunks[index] else { throw ParquetFailure("column chunk is not a struct") }
                chunk.name = "ColumnChunk"
                guard chunk.string(1) == nil else { throw ParquetFailure("column data in another file is not supported") }
                guard let meta = chunk.structure(3, named: "ColumnMetaData") else { throw ParquetFailure("column chunk lacks its metadata") }
                readers.append(try ColumnChunkReader(source: file.source, column: column, meta: meta, budget: budget, location: location))
            }
            columns = readers
        } catch let failure as ParquetFailure {
            throw ParquetError(file: file.fileName, location: location, message: failure.message)
        }
    }

    /// The next batch of rows, or nil after the row group's last (having checked that every column
    /// chunk ended with it).
    func nextBatch() throws -> [[String: JSONValue]]? {
        var current: ColumnChunkReader?
        do {
            guard done < rowCount else {
                for reader in columns {
                    current = reader
                    try reader.finish()
                }
                return nil
            }
            let count = min(file.batchRows, rowCount - done)
            var rows = [[String: JSONValue]](repeating: [:], count: count)
            for reader in columns {
                current = reader
                let values = try reader.rows(count)
                guard values.count == count else {
                    throw ParquetFailure("holds \(done + values.count) rows but the row group has \(rowCount)")
                }
                let name = file.topLevel[file.topLevelIndex(of: reader.column)].name
                for row in 0..<count {
                    if let existing = rows[row][name] {
                        rows[row][name] = try ParquetFile.merge(existing, values[row])
                    } else {
                        rows[row][name] = values[row]
                    }
                }
            }
            done += count
            return rows
        } catch let failure as ParquetFailure {
            throw ParquetError(file: file.fileName, location: current?.location ?? "row group \(group)", message: failure.message)
        }
    }
}

/// Reads one column chunk page by page (each page's header and body read from the file by range)
/// and hands out its rows' values a batch at a time, keeping only the levels and values of pages
/// not yet handed out.
final class ColumnChunkReader {
    let source: ParquetSource
    let column: ParquetColumn
    let codec: ParquetCodec
    let budget: DecodeBudget
    let totalValues: Int
    /// File offsets: the next page, and the end of the chunk.
    private var position: Int
    private let end: Int
    private var read = 0
    private var pageIndex = 0
    private var dictionary: [JSONValue]?
    // Levels and values of the pages read, from `levelStart` and `valueStart` on not yet handed out.
    private var repetitions: [UInt32] = []
    private var definitions: [UInt32] = []
    private var values: [JSONValue] = []
    private var levelStart = 0
    private var valueStart = 0
    /// Buffered levels from `levelStart` on that start a row (repetition level 0).
    private var rowStarts = 0
    private let baseLocation: String
    /// Where an error would be: the chunk, and the page being read.
    private(set) var location: String

    init(source: ParquetSource, column: ParquetColumn, meta: ThriftStruct, budget: DecodeBudget, location: String) throws {
        self.source = source
        self.column = column
        self.budget = budget
        baseLocation = location
        self.location = location
        let codecNumber = try meta.int(4, "codec", in: 0...100)
        guard let codec = ParquetCodec(rawValue: codecNumber) else { throw ParquetFailure("unknown compression codec \(codecNumber)") }
        self.codec = codec
        totalValues = try meta.int(5, "num_values", in: 0...Int64(Int.max))
        let dataOffset = try meta.int(9, "data_page_offset", in: 0...Int64(Int.max))
        var start = dataOffset
        if let dictionaryOffset = meta.int(11), dictionaryOffset > 0, dictionaryOffset < Int64(dataOffset) { start = Int(dictionaryOffset) }
        let size = try meta.int(7, "total_compressed_size", in: 0...Int64(Int.max))
        let (chunkEnd, overflow) = start.addingReportingOverflow(size)
        guard !overflow, start >= 4, chunkEnd <= source.size - 8 else {
            throw ParquetFailure("column data at \(start)..<\(start &+ size) lies outside the file (truncated?)")
        }
        try budget.take(values: totalValues)
        position = start
        end = chunkEnd
    }

    /// The values of the next `records` rows (fewer only when the chunk ends first).
    func rows(_ records: Int) throws -> [JSONValue] {
        // Pages until the buffer holds the start of the row after the last one asked for, or all pages.
        while rowStarts <= records && read < totalValues { try readPage() }
        location = baseLocation
        let rows = try ParquetFile.assemble(column, repetitions: repetitions, definitions: definitions, values: values,
                                            count: repetitions.count, records: records, position: &levelStart, valueIndex: &valueStart)
        rowStarts -= rows.count
        // Drop what was handed out once it is most of the buffer (amortized: each entry moves at most once or twice).
        if levelStart > repetitions.count / 2 {
            repetitions.removeFirst(levelStart)
            definitions.removeFirst(levelStart)
            levelStart = 0
        }
        if valueStart > values.count / 2 {
            values.removeFirst(valueStart)
            valueStart = 0
        }
        return rows
    }

    /// Checks that the chunk has nothing beyond the row group's rows.
    func finish() throws {
        if read < totalValues || levelStart < repetitions.count {
            let more = read < totalValues ? "more values than" : "\(rowStarts) rows more than"
            throw ParquetFailure("column chunk holds \(more) the row group's rows")
        }
        guard valueStart == values.count else { throw ParquetFailure("\(values.count - valueStart) values more than the levels use") }
    }

    /// The page header at `position` and the page's body, read from the file.
    private func pageBytes() throws -> (header: ThriftStruct, body: [UInt8]) {
        // A header is usually tens of bytes; statistics can make it longer, so the window grows.
        var window = min(end - position, 256)
        var bytes: [UInt8]
        var header: ThriftStruct
        var headerLength: Int
        while true {
            bytes = try source.read(position..<position + window)
            var reader = CompactReader(bytes, from: 0, to: bytes.count)
            do {
                header = try reader.readStruct()
                headerLength = reader.position
                break
            } catch let failure as ParquetFailure {
                // Perhaps cut short by the window rather than the chunk: read more and parse again.
                guard window < end - position, window < 1 << 26 else { throw failure }
                window = min(end - position, window * 16)
            }
        }
        header.name = "PageHeader"
        let compressed = try header.int(3, "compressed_page_size", in: 0...Int64(Int32.max))
        let bodyStart = position + headerLength
        guard compressed <= end - bodyStart else { throw ParquetFailure("page of \(compressed) bytes runs past the column's data") }
        let body = headerLength + compressed <= bytes.count
            ? Array(bytes[headerLength..<headerLength + compressed])
            : try source.read(bodyStart..<bodyStart + compressed)
        position = bodyStart + compressed
        return (header, body)
    }

    /// Reads and decodes the next page, appending its levels and values.
    private func readPage() throws {
        location = baseLocation + ", page \(pageIndex)"
        guard position < end else { throw ParquetFailure("column data ends after \(read) of \(totalValues) values") }
        let (header, bytes) = try pageBytes()
        let type = try header.int(1, "type", in: 0...3)
        let uncompressed = try header.int(2, "uncompressed_page_size", in: 0...Int64(Int32.max))
        let compressed = bytes.count
        let body = 0..<compressed
        pageIndex += 1
        switch type {
        case 2:
            guard let dictionaryHeader = header.structure(7, named: "DictionaryPageHeader") else { throw ParquetFailure("dictionary page lacks its header") }
            guard dictionary == nil else { throw ParquetFailure("a second dictionary page") }
            let count = try dictionaryHeader.int(1, "num_values", in: 0...Int64(Int32.max))
            let data = try codec.decompress(bytes, body, size: uncompressed)
            var cursor = ByteCursor(data, 0..<data.count)
            dictionary = try column.type.plain(&cursor, count: count, budget: budget)
        case 0, 3:
            let pageValues: Int, encoding: Int, data: [UInt8]
            var levels: ByteCursor
            let before = repetitions.count
            if type == 0 {
                guard let dataHeader = header.structure(5, named: "DataPageHeader") else { throw ParquetFailure("data page lacks its header") }
                pageValues = try dataHeader.int(1, "num_values", in: 0...Int64(Int32.max))
                encoding = try dataHeader.int(2, "encoding")
                // Checked before the levels are read: their count is what gets allocated.
                guard pageValues <= totalValues - read else { throw ParquetFailure("pages hold more values than the column's \(totalValues)") }
                data = try codec.decompress(bytes, body, size: uncompressed)
                levels = ByteCursor(data, 0..<data.count)
                // Version 1: each level section is a 4-byte length and the RLE hybrid.
                try ParquetFile.readLevels(&levels, max: column.maxRepetition, count: pageValues, lengthPrefixed: true, into: &repetitions)
                try ParquetFile.readLevels(&levels, max: column.maxDefinition, count: pageValues, lengthPrefixed: true, into: &definitions)
            } else {
                guard let dataHeader = header.structure(8, named: "DataPageHeaderV2") else { throw ParquetFailure("data page lacks its header") }
                pageValues = try dataHeader.int(1, "num_values", in: 0...Int64(Int32.max))
                encoding = try dataHeader.int(4, "encoding")
                // Checked before the levels are read: their count is what gets allocated.
                guard pageValues <= totalValues - read else { throw ParquetFailure("pages hold more values than the column's \(totalValues)") }
                let repetitionLength = try dataHeader.int(6, "repetition_levels_byte_length", in: 0...Int64(compressed))
                let definitionLength = try dataHeader.int(5, "definition_levels_byte_length", in: 0...Int64(compressed))
                // Version 2: the levels come first, never compressed, with their lengths in the header.
                guard repetitionLength + definitionLength <= compressed, repetitionLength + definitionLength <= uncompressed else {
                    throw ParquetFailure("level lengths exceed the page")
                }
                var repetitionCursor = ByteCursor(bytes, body.lowerBound..<body.lowerBound + repetitionLength)
                try ParquetFile.readLevels(&repetitionCursor, max: column.maxRepetition, count: pageValues, lengthPrefixed: false, into: &repetitions)
                let definitionStart = body.lowerBound + repetitionLength
                var definitionCursor = ByteCursor(bytes, definitionStart..<definitionStart + definitionLength)
                try ParquetFile.readLevels(&definitionCursor, max: column.maxDefinition, count: pageValues, lengthPrefixed: false, into: &definitions)
                let rest = definitionStart + definitionLength..<body.upperBound
                let restSize = uncompressed - repetitionLength - definitionLength
                data = dataHeader.bool(7) == false ? try ParquetCodec.uncompressed.decompress(bytes, rest, size: restSize)
                    : try codec.decompress(bytes, rest, size: restSize)
                levels = ByteCursor(data, 0..<data.count)
            }
            read += pageValues
            for level in repetitions[before...] where level == 0 { rowStarts += 1 }
            // Only entries at the maximum definition level carry a value.
            let present = column.maxDefinition == 0 ? pageValues
                : definitions[(definitions.count - pageValues)...].reduce(0) { $0 + ($1 == UInt32(column.maxDefinition) ? 1 : 0) }
            switch encoding {
            case ParquetEncoding.plainDictionary, ParquetEncoding.rleDictionary:
                guard let dictionary else { throw ParquetFailure("dictionary-encoded page without a dictionary page") }
                let width = Int(try levels.byte())
                var indices: [UInt32] = []
                if present > 0 { try ParquetEncoding.hybrid(&levels, bitWidth: width, count: present, into: &indices) }
                try budget.take(values: present)
                values.reserveCapacity(values.count + present)
                for index in indices {
                    guard Int(index) < dictionary.count else {
                        throw ParquetFailure("dictionary index \(index) with \(dictionary.count) entries")
                    }
                    values.append(dictionary[Int(index)])
                }
            default:
                values.append(contentsOf: try column.type.values(&levels, encoding: encoding, count: present, budget: budget))
            }
        default:
            break  // index pages carry nothing a reader needs
        }
    }
}
