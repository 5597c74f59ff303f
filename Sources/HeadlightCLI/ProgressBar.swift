import Analysis
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The progress line of every long command on stderr: redrawn in place (`\r`, erase to end of
/// line) at most five times a second when stderr is a terminal, else printed as a new line at
/// most every `interval` seconds. A final update always shows. Commands format their own lines
/// (`bar(fraction:)` and `clock(_:)` help).
final class ProgressBar: @unchecked Sendable {
    let enabled: Bool
    /// Seconds between lines when stderr is not a terminal.
    let interval: Double
    let tty = isatty(2) != 0
    let start = Date()
    private var lastPrint = Date.distantPast
    private var printed = false

    init(enabled: Bool, interval: Double) {
        self.enabled = enabled
        self.interval = interval
    }

    var elapsed: Double { Date().timeIntervalSince(start) }

    /// Whether a line would be shown now; `final` lines always are.
    func due(final: Bool) -> Bool {
        enabled && (final || Date().timeIntervalSince(lastPrint) >= (tty ? 0.2 : interval))
    }

    /// Shows `line` (callers check `due(final:)` first); untrusted parts such as needle ids are
    /// escaped (`TerminalText`).
    func show(_ line: String) {
        guard enabled else { return }
        lastPrint = Date()
        let safe = TerminalText.escape(line)
        FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + safe : safe + "\n").utf8))
        printed = true
    }

    /// Ends the line on a terminal; call once when the work is over, however it ended.
    func finish() {
        if enabled && tty && printed { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// Seconds between lines of the sweeps when stderr is not a terminal: 60, or
    /// $HEADLIGHT_PROGRESS_INTERVAL (the notebook runner sets 15 for the cells it echoes).
    static let sweepInterval: Double = {
        let env = ProcessInfo.processInfo.environment
        if let v = env["HEADLIGHT_PROGRESS_INTERVAL"], let x = Double(v), x >= 0 { return x }
        return 60
    }()

    /// m:ss or h:mm:ss; "--:--" when unknown.
    static func clock(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600
            ? String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60)
            : String(format: "%d:%02d", t / 60, t % 60)
    }

    /// A 24-column bar: `=` for the done fraction, `>` at its head.
    static func bar(fraction: Double, width: Int = 24) -> String {
        let filled = Int((fraction * Double(width)).rounded(.down))
        return String(repeating: "=", count: filled) + (filled < width ? ">" : "")
            + String(repeating: " ", count: max(width - filled - 1, 0))
    }
}

/// The sweeps' progress (`retrieval-heads`, `ablate`): a bar with the done fraction of the work,
/// counts and ETA.
final class SweepProgressBar: @unchecked Sendable {
    let line: ProgressBar
    let title: String
    let unit: String
    private var firstWork: Double?

    init(enabled: Bool, title: String, unit: String = "trials") {
        line = ProgressBar(enabled: enabled, interval: ProgressBar.sweepInterval)
        self.title = title
        self.unit = unit
    }

    func update(_ p: SweepProgress) {
        guard line.enabled else { return }
        if firstWork == nil { firstWork = p.workDone }
        let final = p.done == p.total
        guard line.due(final: final) else { return }
        if !line.tty && !final && p.done == 0 { return }
        let elapsed = line.elapsed
        let doneNow = p.workDone - (firstWork ?? 0)
        var eta = Double.nan
        if doneNow > 0 { eta = elapsed / doneNow * max(p.workTotal - p.workDone, 0) }
        let frac = p.workTotal > 0 ? min(max(p.workDone / p.workTotal, 0), 1) : Double(p.done) / Double(max(p.total, 1))
        line.show(
            "\(title): [\(ProgressBar.bar(fraction: frac))] \(p.done)/\(p.total) \(unit), "
                + "elapsed \(ProgressBar.clock(elapsed)), ETA \(ProgressBar.clock(eta)) (\(p.label))")
    }

    func finish() { line.finish() }
}
