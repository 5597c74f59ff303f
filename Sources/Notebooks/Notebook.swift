// Literate CLI notebooks: Markdown files whose fenced `headlight` cells are Headlight
// invocations. `headlight notebook run notebooks-cli/NAME.md` parses the file (this file),
// runs the cells with caching (NotebookRunner.swift, NotebookCache.swift) and renders
// `reports/NAME/index.html` (NotebookRenderer.swift, NotebookMarkdown.swift).
//
// # Notebook format (also in notebooks-cli/README.md)
//
// A notebook is a UTF-8 Markdown file. Fenced code blocks (``` or ~~~, three or more, up to
// three spaces of indentation, closed by a fence of the same character at least as long) are
// classified by the first word of their info string:
//
// - ```headlight — a *cell*: exactly one Headlight invocation. The leading word `headlight` is
//   optional. Long commands continue over lines with a trailing backslash. Arguments are split
//   like a POSIX shell splits words, but nothing else of a shell exists:
//     * whitespace separates arguments; `'...'` is literal; `"..."` is literal except for the
//       escapes `\"`, `\\`, `\$`, `` \` `` and backslash-newline; outside quotes `\x` is `x`;
//     * a word starting with `#` starts a comment that runs to the end of the line; blank and
//       comment-only lines are ignored;
//     * unquoted `| ; & < > ( ) $` and backticks are rejected (no pipes, redirection, variables,
//       substitution); quote them to pass them literally. `*`, `?` and `~` are passed as typed
//       (no globbing, no home-directory expansion);
//     * a second command in the same cell, an empty cell, an unterminated quote or an unclosed
//       cell fence is a parse error naming the line.
// - ```text — a prose output: shown as preformatted text, never run.
// - any other fence — part of the prose, shown as a code block.
//
// Everything else is prose, rendered from Markdown to HTML by a small built-in renderer
// (NotebookMarkdown.swift). Raw HTML in prose is never passed through: it is shown as text
// (HTML comments `<!-- ... -->` on their own lines are dropped). The first level-1 heading is
// the report title (default: the file name); every level-1 or level-2 heading starts a report
// section, and the cells after it appear in that section.
import Foundation
import Reports

/// One runnable cell of a notebook.
public struct NotebookCell: Equatable, Sendable {
    /// 1-based position among the notebook's cells.
    public var number: Int
    /// 1-based line of the opening fence in the .md file.
    public var fenceLine: Int
    /// 1-based line of the first command line (the line error messages name).
    public var line: Int
    /// The cell's text as written (without the fences).
    public var source: String
    /// The arguments passed to headlight (the optional leading `headlight` removed).
    public var arguments: [String]

    /// `headlight` plus the arguments, each quoted for a POSIX shell when needed.
    public var commandLine: String {
        Shell.command(["headlight"] + arguments)
    }

    /// The cell's source as shown in a report: as written, with `headlight ` prepended when the
    /// author left it out.
    public var displaySource: String {
        var lines = source.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n")
        if let k = lines.firstIndex(where: {
            let t = $0.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("#")
        }) {
            let t = lines[k].drop { $0 == " " || $0 == "\t" }
            if t.prefix(while: { !$0.isWhitespace }) != "headlight" {
                lines[k] = String(lines[k].prefix { $0 == " " || $0 == "\t" }) + "headlight " + t
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `commandLine`, shortened to at most `limit` characters with a trailing " ...".
    public func shortCommand(limit: Int = 72) -> String {
        let c = commandLine
        guard c.count > limit else { return c }
        var cut = String(c.prefix(limit))
        if let sp = cut.lastIndex(of: " "), cut.distance(from: cut.startIndex, to: sp) > limit / 2 {
            cut = String(cut[..<sp])
        }
        return cut + " ..."
    }
}

/// A parsed notebook: prose, text outputs and cells in document order.
public struct Notebook: Sendable {
    public enum Item: Sendable, Equatable {
        /// Markdown prose; `line` is the 1-based line of its first line.
        case prose(String, line: Int)
        /// A ```text block's content.
        case text(String, line: Int)
        case cell(NotebookCell)
    }

    /// Where the notebook was read from, as given (for messages and the report).
    public var path: String
    /// The file's text (line endings normalised to `\n`).
    public var source: String
    public var items: [Item]

    public var cells: [NotebookCell] {
        items.compactMap {
            if case .cell(let c) = $0 { return c }
            return nil
        }
    }

    /// Reads and parses the notebook at `url`.
    public static func load(_ url: URL, displayPath: String? = nil) throws -> Notebook {
        let path = displayPath ?? url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NotebookError.io(path: path, message: "cannot read the notebook: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NotebookError.parse(path: path, line: 1, message: "the file is not valid UTF-8")
        }
        return try parse(text, path: path)
    }

    /// Parses notebook text. Throws `NotebookError.parse` naming the line of the problem.
    public static func parse(_ text: String, path: String = "notebook.md") throws -> Notebook {
        let source = text.replacingOccurrences(of: "\r\n", with: "\n")
        var lines = source.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var items: [Item] = []
        var prose: [String] = []
        var proseStart = 1
        var cellNumber = 0

        func flushProse(nextLine: Int) {
            if prose.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                items.append(.prose(prose.joined(separator: "\n"), line: proseStart))
            }
            prose = []
            proseStart = nextLine
        }

        var i = 0
        while i < lines.count {
            guard let fence = Fence.opening(lines[i]) else {
                prose.append(lines[i])
                i += 1
                continue
            }
            // Find the closing fence (or the end of the file).
            var j = i + 1
            while j < lines.count && !fence.isClosed(by: lines[j]) { j += 1 }
            let closed = j < lines.count
            let body = lines[(i + 1)..<j].map(fence.strip)
            switch fence.language {
            case "headlight":
                guard closed else {
                    throw NotebookError.parse(
                        path: path, line: i + 1,
                        message: "the headlight cell opened here is never closed (missing \(fence.marker))")
                }
                flushProse(nextLine: j + 2)
                cellNumber += 1
                let args = try CellSplitter.split(body, firstLine: i + 2, path: path)
                guard !args.words.isEmpty else {
                    throw NotebookError.parse(path: path, line: i + 1, message: "headlight cell \(cellNumber) is empty")
                }
                var words = args.words
                if words.first == "headlight" { words.removeFirst() }
                items.append(
                    .cell(
                        NotebookCell(
                            number: cellNumber, fenceLine: i + 1, line: args.firstLine,
                            source: body.joined(separator: "\n"), arguments: words)))
            case "text":
                flushProse(nextLine: j + 2)
                items.append(.text(body.joined(separator: "\n"), line: i + 1))
            default:
                prose.append(contentsOf: lines[i..<min(j + 1, lines.count)])
            }
            i = j + 1
        }
        flushProse(nextLine: lines.count + 1)
        return Notebook(path: path, source: source, items: items)
    }
}

/// A fenced code block's opening line (CommonMark rules, simplified).
struct Fence {
    var char: Character
    var length: Int
    var indent: Int
    var language: String

    var marker: String { String(repeating: String(char), count: length) }

    static func opening(_ line: String) -> Fence? {
        let indent = line.prefix { $0 == " " }.count
        guard indent <= 3 else { return nil }
        let rest = line.dropFirst(indent)
        guard let c = rest.first, c == "`" || c == "~" else { return nil }
        let n = rest.prefix { $0 == c }.count
        guard n >= 3 else { return nil }
        let info = rest.dropFirst(n).trimmingCharacters(in: .whitespaces)
        if c == "`" && info.contains("`") { return nil }
        let lang =
            info.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "{" }).first.map { String($0).lowercased() }
            ?? ""
        return Fence(char: c, length: n, indent: indent, language: lang)
    }

    func isClosed(by line: String) -> Bool {
        let indent = line.prefix { $0 == " " }.count
        guard indent <= 3 else { return false }
        let rest = line.dropFirst(indent)
        let n = rest.prefix { $0 == char }.count
        return n >= length && rest.dropFirst(n).allSatisfy { $0 == " " || $0 == "\t" }
    }

    /// The body line with up to `indent` leading spaces removed (as CommonMark does).
    func strip(_ line: String) -> String {
        var s = Substring(line)
        var k = 0
        while k < indent, s.first == " " {
            s = s.dropFirst()
            k += 1
        }
        return String(s)
    }
}

/// Shell-like word splitting of one cell (see the format description at the top of the file).
enum CellSplitter {
    struct Result {
        var words: [String]
        var firstLine: Int
    }

    static let forbidden: Set<Character> = ["|", ";", "&", "<", ">", "(", ")", "$", "`"]

    static func split(_ lines: [String], firstLine: Int, path: String) throws -> Result {
        var words: [String] = []
        var word = ""
        var inWord = false
        var commandStartLine: Int?
        var commandEnded = false // a newline (not continued) ended the command
        var quote: Character? // "'" or "\"" while inside quotes
        var quoteLine = 0

        func fail(_ line: Int, _ message: String) -> NotebookError {
            .parse(path: path, line: line, message: message)
        }
        func endWord() {
            if inWord { words.append(word) }
            word = ""
            inWord = false
        }

        for (k, line) in lines.enumerated() {
            let lineNo = firstLine + k
            let chars = Array(line)
            var i = 0
            var continued = false
            while i < chars.count {
                let c = chars[i]
                if let q = quote {
                    if c == q {
                        quote = nil
                        i += 1
                        continue
                    }
                    if q == "\"" && c == "\\" {
                        if i + 1 == chars.count {
                            continued = true
                            break
                        } // backslash-newline inside "..."
                        let n = chars[i + 1]
                        if n == "\"" || n == "\\" || n == "$" || n == "`" {
                            word.append(n)
                            i += 2
                            continue
                        }
                    }
                    word.append(c)
                    i += 1
                    continue
                }
                // Outside quotes.
                if c == " " || c == "\t" {
                    endWord()
                    i += 1
                    continue
                }
                if c == "#" && !inWord { break } // comment to end of line
                if commandEnded {
                    throw fail(
                        lineNo,
                        "a headlight cell holds one command, but a second one starts here (end the previous line with "
                            + "\\ to continue it)"
                    )
                }
                if commandStartLine == nil { commandStartLine = lineNo }
                if c == "\\" {
                    if i + 1 == chars.count {
                        continued = true
                        break
                    }
                    word.append(chars[i + 1])
                    inWord = true
                    i += 2
                    continue
                }
                if c == "'" || c == "\"" {
                    quote = c
                    quoteLine = lineNo
                    inWord = true
                    i += 1
                    continue
                }
                if forbidden.contains(c) {
                    throw fail(
                        lineNo,
                        "unquoted '\(c)': cells run one command without a shell (no pipes, redirection, variables or "
                            + "substitution); quote it to pass it literally"
                    )
                }
                word.append(c)
                inWord = true
                i += 1
            }
            if quote != nil {
                if !continued { word.append("\n") } // a newline inside quotes is kept
                continue
            }
            if continued {
                if commandStartLine == nil { commandStartLine = lineNo }
                if commandEnded {
                    throw fail(lineNo, "a headlight cell holds one command, but a second one starts here")
                }
                continue
            }
            endWord()
            if commandStartLine != nil { commandEnded = true }
        }
        if quote != nil {
            throw fail(quoteLine, "unterminated \(quote == "'" ? "single" : "double") quote")
        }
        endWord()
        return Result(words: words, firstLine: commandStartLine ?? firstLine)
    }
}

/// Errors of parsing, running and rendering notebooks.
public enum NotebookError: Error, LocalizedError, Equatable, Sendable {
    /// The notebook text is malformed at `line`.
    case parse(path: String, line: Int, message: String)
    /// A cell exited non-zero (or was killed). `stderrTail` holds its last lines of stderr.
    case cellFailed(path: String, cell: Int, line: Int, command: String, exitCode: Int32, stderrTail: String)
    /// A cell could not be started at all.
    case launch(path: String, cell: Int, line: Int, command: String, message: String)
    case io(path: String, message: String)
    /// `notebook run` was started from inside a notebook cell (`insideCell`: "<notebook>:<line>").
    case nested(insideCell: String)

    public var errorDescription: String? {
        switch self {
        case let .parse(path, line, message):
            return "\(path):\(line): \(message)"
        case let .cellFailed(path, cell, line, command, exitCode, tail):
            var s = "cell \(cell) (\(path):\(line)) failed with exit code \(exitCode): \(command)"
            let t = tail.trimmingCharacters(in: .whitespacesAndNewlines)
            s +=
                t.isEmpty
                ? "\n(the command printed nothing on stderr)"
                : "\nstderr (last lines):\n"
                    + t.split(separator: "\n", omittingEmptySubsequences: false).map { "  | " + $0 }.joined(
                        separator: "\n")
            s += "\nhint: fix the cell and run the notebook again; cells before it are cached."
            return s
        case let .launch(path, cell, line, command, message):
            return "cell \(cell) (\(path):\(line)) could not be started: \(message)\n  command: \(command)"
        case let .io(path, message):
            return "\(path): \(message)"
        case let .nested(cell):
            return "notebook run refused inside a notebook cell (\(cell)): a notebook that runs notebooks could "
                + "recurse without end\nhint: run the other notebook from the shell, after this one"
        }
    }
}
