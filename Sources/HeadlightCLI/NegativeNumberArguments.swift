import Foundation

/// swift-argument-parser reads "-5" after an option as another option ("Missing value for
/// '--max-tokens'"), so a negative count never reached the command's own check. Before
/// parsing, `--name -5` is therefore rewritten to `--name=-5` (the same option and value in the
/// attached form the parser accepts): the value reaches `validate()`, which says "must be >= 0"
/// or whatever the option's range is. Only long options without an attached value are joined,
/// only to an argument that is a number, and nothing after a "--" terminator is touched.
enum NegativeNumberArguments {
    static func attach(_ arguments: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(arguments.count)
        var terminated = false
        for arg in arguments {
            if !terminated, isNegativeNumber(arg), let prev = out.last, prev.hasPrefix("--"), prev.count > 2,
                !prev.contains("=")
            {
                out[out.count - 1] = prev + "=" + arg
                continue
            }
            if arg == "--" { terminated = true }
            out.append(arg)
        }
        return out
    }

    /// "-5", "-0.5", "-.5", "-1e3".
    static func isNegativeNumber(_ s: String) -> Bool {
        guard s.hasPrefix("-"), s.count >= 2 else { return false }
        let second = s[s.index(after: s.startIndex)]
        guard second.isASCII, second.isNumber || second == "." else { return false }
        return Double(s) != nil
    }
}
