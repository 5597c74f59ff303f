import Foundation
import XCTest

/// Loads Tests/Fixtures/stats/stats.json (written by make_fixtures.py there) and converts its
/// loosely typed values. Non-finite numbers are stored as "nan" / "inf" / "-inf".
enum StatsFixture {
    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/stats/stats.json")

    /// Decoded with JSONDecoder: on Linux, JSONSerialization parses some doubles 1 ulp off
    /// (e.g. 0.8396274618764198 -> ...196), which would blur bit-exact comparisons.
    static let root: [String: Any] = {
        guard let data = try? Data(contentsOf: url),
            let tree = try? JSONDecoder().decode(Node.self, from: data),
            let obj = tree.native as? [String: Any]
        else { fatalError("cannot read \(url.path); run Tests/Fixtures/stats/make_fixtures.py") }
        return obj
    }()

    /// A JSON value, converted to Double / String / Bool / [Any] / [String: Any] / NSNull.
    enum Node: Decodable {
        case number(Double), string(String), bool(Bool), array([Node]), object([String: Node]), null

        init(from decoder: Decoder) throws {
            if var a = try? decoder.unkeyedContainer() {
                var items: [Node] = []
                while !a.isAtEnd { items.append(try a.decode(Node.self)) }
                self = .array(items)
                return
            }
            if let o = try? decoder.container(keyedBy: Key.self) {
                var d: [String: Node] = [:]
                for k in o.allKeys { d[k.stringValue] = try o.decode(Node.self, forKey: k) }
                self = .object(d)
                return
            }
            let c = try decoder.singleValueContainer()
            if c.decodeNil() {
                self = .null
            } else if let v = try? c.decode(Double.self) {
                self = .number(v)
            } else if let v = try? c.decode(Bool.self) {
                self = .bool(v)
            } else {
                self = .string(try c.decode(String.self))
            }
        }

        var native: Any {
            switch self {
            case .number(let v): return v
            case .string(let v): return v
            case .bool(let v): return v
            case .array(let v): return v.map(\.native)
            case .object(let v): return v.mapValues(\.native)
            case .null: return NSNull()
            }
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    static func section(_ name: String) -> Any { root[name]! }

    static func dict(_ a: Any?) -> [String: Any] { a as! [String: Any] }
    static func list(_ a: Any?) -> [Any] { a as! [Any] }

    static func num(_ a: Any?) -> Double {
        switch a {
        case let s as String:
            switch s {
            case "nan": return .nan
            case "inf": return .infinity
            case "-inf": return -.infinity
            default: return Double(s)!
            }
        case let d as Double: return d
        case let b as Bool: return b ? 1 : 0
        default: fatalError("not a number: \(String(describing: a))")
        }
    }

    static func nums(_ a: Any?) -> [Double] { list(a).map(num) }
    static func ints(_ a: Any?) -> [Int] { list(a).map { Int(num($0)) } }
    static func bools(_ a: Any?) -> [Bool] {
        list(a).map { v in (v as? Bool) ?? (num(v) != 0) }
    }
    static func matrix(_ a: Any?) -> [[Double]] { list(a).map(nums) }
}

/// Largest |a - b| (NaN == NaN, inf == inf count as equal); fails on a length mismatch.
func statsMaxAbsDiff(_ a: [Double], _ b: [Double], file: StaticString = #filePath, line: UInt = #line) -> Double {
    XCTAssertEqual(a.count, b.count, "length", file: file, line: line)
    var m = 0.0
    for (x, y) in zip(a, b) {
        if x.isNaN && y.isNaN { continue }
        if x == y { continue }
        if x.isNaN || y.isNaN { return .infinity }
        m = max(m, abs(x - y))
    }
    return m
}

func statsAssertClose(
    _ a: [Double], _ b: [Double], tol: Double, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    let d = statsMaxAbsDiff(a, b, file: file, line: line)
    print("[stats] \(what): n=\(a.count) first=\(a.prefix(3).map { String(format: "%.10g", $0) }) max|diff|=\(d)")
    XCTAssertLessThanOrEqual(d, tol, what, file: file, line: line)
}
