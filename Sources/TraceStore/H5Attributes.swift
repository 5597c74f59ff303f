import CNative
import Foundation

/// An attribute value. On disk: strings are variable-length UTF-8 (h5py reads them as `str`),
/// integers int64, reals float64; scalars have a scalar dataspace, arrays a 1-D one.
///
/// Reading also accepts what other tools write: any integer width (as `.int`/`.ints`; uint64
/// values above Int64.max are clamped), float16/32 (as `.double`), fixed-length strings, and
/// multi-dimensional attributes (flattened into an array).
public enum H5AttributeValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case strings([String])
    case ints([Int64])
    case doubles([Double])

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .int(let v): return "\(v)"
        case .double(let v): return "\(v)"
        case .strings(let v): return "\(v)"
        case .ints(let v): return "\(v)"
        case .doubles(let v): return "\(v)"
        }
    }

    var typeName: String {
        switch self {
        case .string: return "string"
        case .int: return "int"
        case .double: return "double"
        case .strings: return "[string]"
        case .ints: return "[int]"
        case .doubles: return "[double]"
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var intValue: Int64? {
        if case .int(let v) = self { return v }
        return nil
    }
    /// Doubles, and integers converted to Double.
    public var doubleValue: Double? {
        switch self {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var stringsValue: [String]? {
        if case .strings(let v) = self { return v }
        return nil
    }
    public var intsValue: [Int64]? {
        if case .ints(let v) = self { return v }
        return nil
    }
    /// Double arrays, and integer arrays converted to Double.
    public var doublesValue: [Double]? {
        switch self {
        case .doubles(let v): return v
        case .ints(let v): return v.map(Double.init)
        default: return nil
        }
    }
}

extension H5Object {
    private func attrObject(_ attr: String) -> String { "\(name) @\(attr)" }

    private func checkAttrName(_ attr: String) throws {
        if attr.isEmpty || attr.utf8.contains(0) {
            throw TraceStoreError.invalidArgument(
                file: file.path, object: name, detail: "invalid attribute name \"\(attr)\"")
        }
    }

    /// Sets (creating or replacing) an attribute.
    public func setAttribute(_ attr: String, _ value: H5AttributeValue) throws {
        try checkAttrName(attr)
        try requireWritable(attrObject(attr))
        let id = try liveID()
        func numeric<T>(_ values: [T], _ type: H5ElementType, scalar: Bool) -> Int32 {
            values.withUnsafeBytes {
                hl_h5a_write(id, attr, type.code, scalar ? 0 : 1, Int64(values.count), $0.baseAddress)
            }
        }
        func strings(_ values: [String], scalar: Bool) throws -> Int32 {
            if values.contains(where: { $0.utf8.contains(0) }) {
                throw TraceStoreError.invalidArgument(
                    file: file.path, object: attrObject(attr), detail: "string contains a NUL byte")
            }
            return H5Lib.withCStrings(values) {
                hl_h5a_write_strings(id, attr, scalar ? 0 : 1, Int64(values.count), $0)
            }
        }
        try H5Lib.sync {
            let r: Int32
            switch value {
            case .string(let s): r = try strings([s], scalar: true)
            case .strings(let v): r = try strings(v, scalar: false)
            case .int(let v): r = numeric([v], .int64, scalar: true)
            case .ints(let v): r = numeric(v, .int64, scalar: false)
            case .double(let v): r = numeric([v], .float64, scalar: true)
            case .doubles(let v): r = numeric(v, .float64, scalar: false)
            }
            if r < 0 { throw h5Error("write attribute", object: attrObject(attr)) }
        }
    }

    public func setAttribute(_ attr: String, _ value: String) throws { try setAttribute(attr, .string(value)) }
    public func setAttribute(_ attr: String, _ value: Int) throws { try setAttribute(attr, .int(Int64(value))) }
    public func setAttribute(_ attr: String, _ value: Int64) throws { try setAttribute(attr, .int(value)) }
    public func setAttribute(_ attr: String, _ value: Double) throws { try setAttribute(attr, .double(value)) }
    /// Booleans are stored as int64 0/1.
    public func setAttribute(_ attr: String, _ value: Bool) throws { try setAttribute(attr, .int(value ? 1 : 0)) }
    public func setAttribute(_ attr: String, _ value: [String]) throws { try setAttribute(attr, .strings(value)) }
    public func setAttribute(_ attr: String, _ value: [Int]) throws {
        try setAttribute(attr, .ints(value.map(Int64.init)))
    }
    public func setAttribute(_ attr: String, _ value: [Int64]) throws { try setAttribute(attr, .ints(value)) }
    public func setAttribute(_ attr: String, _ value: [Double]) throws { try setAttribute(attr, .doubles(value)) }

    /// Whether the attribute exists.
    public func hasAttribute(_ attr: String) throws -> Bool {
        try checkAttrName(attr)
        let id = try liveID()
        return try H5Lib.sync {
            var t = HL_H5_UNKNOWN, rank: Int32 = 0, n: Int64 = 0
            let r = hl_h5a_info(id, attr, &t, &rank, &n)
            if r < 0 { throw h5Error("look up attribute", object: attrObject(attr)) }
            return r == 1
        }
    }

    /// The attribute's value, or nil if there is no such attribute.
    public func attributeIfPresent(_ attr: String) throws -> H5AttributeValue? {
        try checkAttrName(attr)
        let id = try liveID()
        return try H5Lib.sync {
            var t = HL_H5_UNKNOWN, rank: Int32 = 0, n64: Int64 = 0
            let found = hl_h5a_info(id, attr, &t, &rank, &n64)
            if found < 0 { throw h5Error("read attribute", object: attrObject(attr)) }
            if found == 0 { return nil }
            let n = Int(n64), scalar = rank == 0
            guard let type = H5ElementType(code: t) else {
                throw TraceStoreError.typeMismatch(
                    file: file.path, object: attrObject(attr), expected: "string, integer or float",
                    actual: "an unsupported HDF5 type")
            }
            if type == .string {
                guard let v = H5Lib.readCStrings(count: n, { hl_h5a_read_strings(id, attr, $0) }) else {
                    throw h5Error("read attribute", object: attrObject(attr))
                }
                return scalar ? .string(v.first ?? "") : .strings(v)
            }
            if type.isFloat {
                var v = [Double](repeating: 0, count: n)
                if hl_h5a_read(id, attr, HL_H5_F64, &v) < 0 {
                    throw h5Error("read attribute", object: attrObject(attr))
                }
                return scalar ? .double(v.first ?? 0) : .doubles(v)
            }
            var v = [Int64](repeating: 0, count: n)
            if hl_h5a_read(id, attr, HL_H5_I64, &v) < 0 { throw h5Error("read attribute", object: attrObject(attr)) }
            return scalar ? .int(v.first ?? 0) : .ints(v)
        }
    }

    /// The attribute's value; `.notFound` if missing.
    public func attribute(_ attr: String) throws -> H5AttributeValue {
        guard let v = try attributeIfPresent(attr) else {
            throw TraceStoreError.notFound(file: file.path, object: attrObject(attr))
        }
        return v
    }

    private func typed<T>(_ attr: String, _ expected: String, _ get: (H5AttributeValue) -> T?) throws -> T {
        let v = try attribute(attr)
        guard let t = get(v) else {
            throw TraceStoreError.typeMismatch(
                file: file.path, object: attrObject(attr), expected: expected, actual: v.typeName)
        }
        return t
    }

    public func stringAttribute(_ attr: String) throws -> String { try typed(attr, "string") { $0.stringValue } }
    public func intAttribute(_ attr: String) throws -> Int { try typed(attr, "int") { $0.intValue.map(Int.init) } }
    public func doubleAttribute(_ attr: String) throws -> Double { try typed(attr, "double") { $0.doubleValue } }
    public func stringsAttribute(_ attr: String) throws -> [String] { try typed(attr, "[string]") { $0.stringsValue } }
    public func intsAttribute(_ attr: String) throws -> [Int] {
        try typed(attr, "[int]") { $0.intsValue?.map(Int.init) }
    }
    public func doublesAttribute(_ attr: String) throws -> [Double] { try typed(attr, "[double]") { $0.doublesValue } }

    /// Names of all attributes, sorted.
    public func attributeNames() throws -> [String] {
        let id = try liveID()
        return try H5Lib.sync {
            try names("list attributes", of: id, count: hl_h5a_count(id)) { hl_h5a_name(id, $0, $1, $2) }
        }
    }

    /// All attributes by name.
    public func attributes() throws -> [String: H5AttributeValue] {
        var out: [String: H5AttributeValue] = [:]
        for n in try attributeNames() { out[n] = try attribute(n) }
        return out
    }

    /// Deletes an attribute; `.notFound` if missing.
    public func removeAttribute(_ attr: String) throws {
        try requireWritable(attrObject(attr))
        guard try hasAttribute(attr) else { throw TraceStoreError.notFound(file: file.path, object: attrObject(attr)) }
        let id = try liveID()
        try H5Lib.sync {
            if hl_h5a_delete(id, attr) < 0 { throw h5Error("delete attribute", object: attrObject(attr)) }
        }
    }
}
