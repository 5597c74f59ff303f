import Foundation

/// Reads every object of an HDF5 file — every group, link, attribute and dataset — to find out
/// whether the file can be read at all. Run files from other people are untrusted input, and a
/// damaged one can crash libhdf5 itself (a bad global-heap reference makes `H5HG_read` copy
/// from a wild pointer: SIGSEGV), which no check in this process can catch. `headlight
/// check-run-file` runs this in a child process before `report` reads a file (see
/// docs/security.md): a crash there is reported as "run file X is corrupt", never taken by the
/// command itself.
///
/// Problems HDF5 reports cleanly (an unreadable object, a size a damaged file claims) are
/// collected and the walk goes on, so every other object is still read once. Bounded work:
/// data reads stop at `dataBudget` bytes in all (after that only the first and last element of
/// each dataset are read, which still walks its chunk index at both ends), and the walk stops
/// after `maxObjects` objects or `maxDepth` nested groups (hard links can form cycles).
public enum H5ReadCheck {
    public struct Result: Sendable {
        /// Groups and datasets visited (the root included).
        public var objects = 0
        public var attributes = 0
        /// Bytes of data read.
        public var bytesRead = 0
        /// One message per object HDF5 could not read (cleanly), naming the object.
        public var problems: [String] = []
    }

    public static func readEverything(
        _ path: String, dataBudget: Int = 256 << 20, maxObjects: Int = 100_000, maxDepth: Int = 64
    ) -> Result {
        var walk = Walk(budget: dataBudget, maxObjects: maxObjects, maxDepth: maxDepth)
        let file: H5File
        do { file = try H5File.open(path) } catch {
            walk.result.problems.append(describe(error))
            return walk.result
        }
        defer { try? file.close() }
        walk.visit(file, depth: 0)
        return walk.result
    }

    static func describe(_ error: Error) -> String {
        (error as? LocalizedError)?.errorDescription ?? String(describing: error)
    }

    private struct Walk {
        var budget: Int
        let maxObjects: Int
        let maxDepth: Int
        var result = Result()
        var stopped = false

        mutating func problem(_ error: Error) { result.problems.append(H5ReadCheck.describe(error)) }

        /// Counts one object; false once the walk must stop.
        mutating func enter(_ name: String) -> Bool {
            if stopped { return false }
            result.objects += 1
            if result.objects > maxObjects {
                result.problems.append("more than \(maxObjects) objects (at \(name)); stopped reading")
                stopped = true
            }
            return !stopped
        }

        mutating func readAttributes(_ o: H5Object) {
            do {
                for a in try o.attributeNames() {
                    result.attributes += 1
                    do { _ = try o.attributeIfPresent(a) } catch { problem(error) }
                }
            } catch {
                problem(error)
            }
        }

        mutating func visit(_ group: H5Container, depth: Int) {
            guard enter(group.name) else { return }
            readAttributes(group)
            guard depth < maxDepth else {
                result.problems.append("\(group.name): groups nested more than \(maxDepth) deep; not read further")
                return
            }
            let names: [String]
            do { names = try group.children() } catch {
                problem(error)
                return
            }
            for child in names where !stopped {
                do {
                    switch try group.kind(of: child) {
                    case .group?: visit(try group.group(child), depth: depth + 1)
                    case .dataset?:
                        let d = try group.dataset(child)
                        guard enter(d.name) else { return }
                        readAttributes(d)
                        try readData(d)
                    default: break // dangling links, named datatypes: nothing more to read
                    }
                } catch {
                    problem(error)
                }
            }
        }

        /// The whole dataset while the budget lasts, else its first and last element.
        mutating func readData(_ d: H5Dataset) throws {
            let shape = try d.shape
            let n = try d.count
            guard n > 0 else { return }
            let (bytes, overflow) = n.multipliedReportingOverflow(by: d.elementType.byteSize)
            if !overflow && bytes <= budget {
                try read(d, start: nil, count: nil)
                budget -= bytes
                result.bytesRead += bytes
                return
            }
            let one = [Int](repeating: 1, count: shape.count)
            try read(d, start: [Int](repeating: 0, count: shape.count), count: one)
            try read(d, start: shape.map { $0 - 1 }, count: one)
            result.bytesRead += 2 * d.elementType.byteSize
        }

        func read(_ d: H5Dataset, start: [Int]?, count: [Int]?) throws {
            func values<T: H5Scalar>(_: T.Type) throws {
                if let start, let count {
                    _ = try d.read(T.self, start: start, count: count)
                } else {
                    _ = try d.read(T.self)
                }
            }
            switch d.elementType {
            case .float16, .float32: try values(Float.self)
            case .float64: try values(Double.self)
            case .int8: try values(Int8.self)
            case .uint8: try values(UInt8.self)
            case .int16: try values(Int16.self)
            case .uint16: try values(UInt16.self)
            case .int32: try values(Int32.self)
            case .uint32: try values(UInt32.self)
            case .int64: try values(Int64.self)
            case .uint64: try values(UInt64.self)
            case .string:
                if let start, let count {
                    _ = try d.readStrings(start: start, count: count)
                } else {
                    _ = try d.readStrings()
                }
            }
        }
    }
}
