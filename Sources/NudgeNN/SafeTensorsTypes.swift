// Core types of the safetensors format (https://github.com/huggingface/safetensors).
//
// A safetensors file is: an 8-byte little-endian unsigned 64-bit header length N; N bytes of
// UTF-8 JSON (possibly padded at the end with spaces) mapping each tensor name to
// `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`, where the offsets are
// byte positions relative to the data buffer that follows the header, plus an optional
// `"__metadata__"` entry mapping strings to strings; then the data buffer itself, holding every
// tensor little-endian and row-major. This file declares the element types, the validated
// per-tensor entry and the typed errors shared by the reader, the writer and the checkpoint loader.

/// Element type of a tensor stored in a safetensors file, spelled as in the header's `dtype` field.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Hashable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Size in bytes of one element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// Whether the element type is a floating-point format.
    public var isFloatingPoint: Bool {
        switch self {
        case .f8e5m2, .f8e4m3, .f16, .bf16, .f32, .f64: return true
        case .bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64: return false
        }
    }
}

/// One validated tensor described by a safetensors header.
public struct SafeTensorsEntry: Sendable, Hashable {
    /// Tensor name (the header key).
    public let name: String
    /// Element type.
    public let dtype: SafeTensorsDType
    /// Dimensions, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// Byte range of the tensor's data, relative to the start of the data buffer after the header.
    public let byteRange: Range<Int>

    /// Number of elements (the product of `shape`; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Creates an entry; the reader only produces entries whose range and shape agree.
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], byteRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteRange = byteRange
    }
}

/// Errors raised while reading, validating or writing safetensors files. Each names the file
/// (its path) and what is wrong.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file is shorter than the 8-byte length prefix.
    case truncated(file: String, expected: Int, actual: Int)
    /// The header length prefix exceeds the reader's limit.
    case headerTooLarge(file: String, headerLength: UInt64, limit: Int)
    /// The header length prefix points past the end of the file.
    case headerPastEnd(file: String, headerLength: UInt64, fileSize: Int)
    /// The header is not valid UTF-8 JSON, or not a JSON object.
    case invalidHeaderJSON(file: String, reason: String)
    /// A header entry lacks a field or has a field of the wrong JSON type or value.
    case invalidEntry(file: String, tensor: String, field: String, reason: String)
    /// A header entry names an element type this reader does not know.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A tensor's `data_offsets` are reversed or reach past the end of the data buffer.
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingOffsets(file: String, tensor: String, other: String)
    /// A tensor's shape times its element size differs from the length of its byte range
    /// (`bytes` is the range length).
    case sizeMismatch(file: String, tensor: String, shape: [Int], dtype: SafeTensorsDType, bytes: Int)
    /// The requested conversion from or to `dtype` is not supported for this tensor.
    case unsupportedConversion(file: String, tensor: String, dtype: SafeTensorsDType)
    /// A destination buffer's element count differs from the tensor's.
    case countMismatch(file: String, tensor: String, expected: Int, actual: Int)
    /// No tensor of that name exists.
    case missingTensor(file: String, tensor: String)
    /// A sharded checkpoint's index is malformed or disagrees with its shards.
    case invalidIndex(file: String, reason: String)
    /// An operating-system level failure (open, map, write, rename, ...).
    case io(file: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(file, expected, actual):
            return "safetensors: \(file): file is truncated: needs at least \(expected) bytes, has \(actual)"
        case let .headerTooLarge(file, headerLength, limit):
            return "safetensors: \(file): header length \(headerLength) exceeds the limit of \(limit) bytes"
        case let .headerPastEnd(file, headerLength, fileSize):
            return "safetensors: \(file): header length \(headerLength) reaches past the end of the \(fileSize)-byte file"
        case let .invalidHeaderJSON(file, reason):
            return "safetensors: \(file): invalid header JSON: \(reason)"
        case let .invalidEntry(file, tensor, field, reason):
            return "safetensors: \(file): tensor '\(tensor)': field '\(field)': \(reason)"
        case let .unknownDType(file, tensor, dtype):
            return "safetensors: \(file): tensor '\(tensor)': unknown dtype '\(dtype)'"
        case let .offsetsOutOfRange(file, tensor, begin, end, dataSize):
            return "safetensors: \(file): tensor '\(tensor)': data_offsets [\(begin), \(end)] are reversed or exceed the \(dataSize)-byte data buffer"
        case let .overlappingOffsets(file, tensor, other):
            return "safetensors: \(file): tensor '\(tensor)' overlaps tensor '\(other)'"
        case let .sizeMismatch(file, tensor, shape, dtype, bytes):
            return "safetensors: \(file): tensor '\(tensor)': shape \(shape) of \(dtype.rawValue) does not fit the \(bytes) bytes given by data_offsets"
        case let .unsupportedConversion(file, tensor, dtype):
            return "safetensors: \(file): tensor '\(tensor)': conversion involving dtype \(dtype.rawValue) is not supported"
        case let .countMismatch(file, tensor, expected, actual):
            return "safetensors: \(file): tensor '\(tensor)': has \(expected) elements, destination holds \(actual)"
        case let .missingTensor(file, tensor):
            return "safetensors: \(file): no tensor named '\(tensor)'"
        case let .invalidIndex(file, reason):
            return "safetensors: \(file): invalid index: \(reason)"
        case let .io(file, reason):
            return "safetensors: \(file): \(reason)"
        }
    }
}
