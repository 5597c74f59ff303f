import Foundation

extension H5Dataset {
    /// Throws `TraceStoreError.shapeMismatch` naming the dataset unless its shape is `expected`
    /// (for readers checking a file's layout).
    public func requireShape(_ expected: [Int]) throws {
        let s = try shape
        guard s == expected else {
            throw TraceStoreError.shapeMismatch(
                file: file.path, object: name, detail: "shape \(s), expected \(expected)")
        }
    }
}
