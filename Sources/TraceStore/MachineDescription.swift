import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension RunFile {
    /// `uname -srm` (system, release, machine) plus the core count, e.g.
    /// "Linux 6.8.0 x86_64, 2 cores": the `machine` provenance of run files and reports.
    public static func machineDescription() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "unknown" }
        func field<T>(_ t: T) -> String {
            withUnsafeBytes(of: t) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return "\(field(u.sysname)) \(field(u.release)) \(field(u.machine)), \(cores) cores"
    }
}
