import Foundation

/// Command lines as a POSIX shell reads them, for display and copy-paste (report and notebook
/// reproducibility blocks, the commands recorded in run files).
public enum Shell {
    /// `s` as one shell word: unchanged when it holds only ASCII letters, digits and
    /// `-_./=:,+@%`, else single-quoted (`'` written as `'\''`); the empty string is `''`.
    public static func quote(_ s: String) -> String {
        if s.isEmpty { return "''" }
        let safe = s.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
                || "-_./=:,+@%".unicodeScalars.contains(c)
        }
        return safe ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// An argument vector as one command line.
    public static func command(_ argv: [String]) -> String {
        argv.map(quote).joined(separator: " ")
    }
}
