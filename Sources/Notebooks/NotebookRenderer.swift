// Rendering a run notebook as `<output-dir>/index.html` through ReportDocument.
//
// Layout: the first level-1 heading is the title; each level-1/2 heading starts a section
// (content before the first one goes into "Overview"). Prose becomes HTML (NotebookMarkdown);
// ```text blocks preformatted text; each cell shows its command, a line with its number, line,
// duration and a "cached" marker, its stdout (escaped; clipped to `outputLimit` with a note),
// its stderr in a collapsed <details>, the output files it produced, and for each `.h5` output
// whatever the `NotebookFigureProvider` returns. A reproducibility block closes the page.
//
// ReportDocument has no block for ready-made HTML, so prose (and the cell-meta line and stderr
// box) are added as placeholder paragraphs whose text is a random token, and the placeholders
// `<p>TOKEN</p>` in the finished page are replaced by the fragments. Caller text in
// ReportDocument is escaped, so no untrusted input can produce a placeholder, and the
// fragments themselves escape all text (see NotebookMarkdown.swift).
import Foundation
import Reports
import TraceStore

/// Turns a run file a cell produced into report blocks (figures, tables, notes). The CLI uses
/// `RunReportFigureProvider` (the figures of `headlight report`); `RunFileSummaryProvider`, the
/// library default, lists a run file's attributes and datasets.
public protocol NotebookFigureProvider {
    func blocks(forRunFile url: URL, cell: NotebookCell) throws -> [ReportDocument.Block]
}

/// The default provider: the run file's root attributes as a table and its top-level objects
/// (`RunFileSummary`). Never throws: unreadable files give a note.
public struct RunFileSummaryProvider: NotebookFigureProvider {
    public var summary = RunFileSummary()

    public init() {}

    public func blocks(forRunFile url: URL, cell: NotebookCell) throws -> [ReportDocument.Block] {
        summary.blocks(forRunFile: url)
    }
}

/// The notebook runner draws the same figures as `headlight report` for each run file a cell writes.
extension RunReportFigureProvider: NotebookFigureProvider {
    public func blocks(forRunFile url: URL, cell: NotebookCell) throws -> [ReportDocument.Block] {
        try blocks(forRunFile: url)
    }
}

/// Facts for the reproducibility block.
public struct NotebookRenderInfo: Sendable {
    public var headlightVersion: String
    /// e.g. "sha256:ab12…" of the notebook file.
    public var notebookHash: String
    public var date: Date
    public var machine: String
    public var workingDirectory: String
    /// How to rebuild the report, e.g. "headlight notebook run notebooks-cli/x.md".
    public var rebuildCommand: String?

    public init(
        headlightVersion: String, notebookHash: String, date: Date = Date(),
        machine: String = NotebookRenderInfo.machineDescription(), workingDirectory: String,
        rebuildCommand: String? = nil
    ) {
        self.headlightVersion = headlightVersion
        self.notebookHash = notebookHash
        self.date = date
        self.machine = machine
        self.workingDirectory = workingDirectory
        self.rebuildCommand = rebuildCommand
    }

    /// `uname -srm` (system, release, machine) plus the core count (`RunFile.machineDescription()`).
    public static func machineDescription() -> String { RunFile.machineDescription() }
}

public struct NotebookRenderer {
    /// Printed output longer than this many UTF-8 bytes is clipped in the report.
    public static let outputLimit = 64 << 10

    public var notebook: Notebook
    public var results: [NotebookCellResult]
    public var info: NotebookRenderInfo
    public var figureProvider: NotebookFigureProvider
    /// Where relative output paths of cells resolve.
    public var workingDirectory: URL

    public init(
        notebook: Notebook, results: [NotebookCellResult], info: NotebookRenderInfo,
        figureProvider: NotebookFigureProvider = RunFileSummaryProvider(), workingDirectory: URL
    ) {
        self.notebook = notebook
        self.results = results
        self.info = info
        self.figureProvider = figureProvider
        self.workingDirectory = workingDirectory
    }

    /// The document plus the HTML fragments its placeholder paragraphs stand for.
    public struct Rendered {
        public var document: ReportDocument
        public var fragments: [(token: String, html: String)]

        /// The final index.html text.
        public func html() -> String {
            var h = document.html()
            for f in fragments {
                let placeholder = "<p>\(f.token)</p>\n"
                if let r = h.range(of: placeholder) { h.replaceSubrange(r, with: f.html) }
            }
            if let r = h.range(of: "</style>") { h.replaceSubrange(r, with: NotebookRenderer.css + "</style>") }
            return h
        }

        /// Writes figures/*.svg and index.html atomically (`ReportDocument.publish`); returns the
        /// URL of index.html.
        @discardableResult
        public func write(to directory: URL) throws -> URL {
            try ReportDocument.publish(html: html(), figures: document.figureFiles(), to: directory)
        }
    }

    static let css = """
        \n.cell-meta{color:var(--muted);font-size:13px;margin:-4px 0 10px}
        .cell-meta .cached{border:1px solid var(--border);border-radius:4px;padding:0 5px;margin-left:4px}
        details.stderr{margin:6px 0 12px}details.stderr summary{color:var(--muted);font-size:13px;cursor:pointer}
        blockquote{margin:10px 0;padding:2px 14px;border-left:4px solid var(--border);color:var(--muted)}
        hr{border:0;border-top:1px solid var(--border);margin:20px 0}
        li>p{margin:4px 0}
        pre code.language-headlight{font-weight:600}\n
        """

    public func render() -> Rendered {
        let nonce = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var fragments: [(String, String)] = []
        func placeholder(_ html: String, into s: inout ReportDocument.Section) {
            let token = "hl-notebook-fragment-\(nonce)-\(fragments.count)"
            fragments.append((token, html))
            s.paragraph(token)
        }

        // Prose pieces, and the title: the first level-1 heading.
        var title: String?
        var proseByIndex: [Int: [MarkdownPiece]] = [:]
        for (k, item) in notebook.items.enumerated() {
            if case .prose(let text, _) = item { proseByIndex[k] = Markdown.pieces(text) }
        }
        var titleAt: (Int, Int)?
        outer: for k in proseByIndex.keys.sorted() {
            for (j, p) in proseByIndex[k]!.enumerated() {
                if case .heading(1, let t) = p {
                    title = t
                    titleAt = (k, j)
                    break outer
                }
            }
        }
        let stem = ((notebook.path as NSString).lastPathComponent as NSString).deletingPathExtension
        let ran = results.filter { !$0.cached }.count
        var doc = ReportDocument(
            title: (title?.isEmpty == false ? title! : stem),
            subtitle: "Notebook \(notebook.path): \(notebook.cells.count) cell\(notebook.cells.count == 1 ? "" : "s"), "
                + "\(ran) run, \(results.count - ran) cached")
        doc.footer = "Generated by Headlight \(info.headlightVersion) from \(notebook.path)"

        var current: ReportDocument.Section?
        func finish() {
            if let c = current { doc.sections.append(c) }
            current = nil
        }
        func section() -> ReportDocument.Section { current ?? ReportDocument.Section("Overview") }

        let byCell = Dictionary(results.map { ($0.cell.number, $0) }, uniquingKeysWith: { a, _ in a })
        for (k, item) in notebook.items.enumerated() {
            switch item {
            case .prose:
                for (j, p) in proseByIndex[k]!.enumerated() {
                    switch p {
                    case .heading(_, let text):
                        if let t = titleAt, t == (k, j) { continue }
                        finish()
                        current = ReportDocument.Section(text.isEmpty ? "Section" : text)
                    case .html(let h):
                        var s = section()
                        placeholder(h, into: &s)
                        current = s
                    }
                }
            case .text(let text, _):
                var s = section()
                s.code(text)
                current = s
            case .cell(let cell):
                var s = section()
                renderCell(cell, result: byCell[cell.number], into: &s, placeholder: placeholder)
                current = s
            }
        }
        finish()
        if doc.sections.isEmpty { doc.sections.append(ReportDocument.Section("Overview")) }

        var repro: [(key: String, value: String)] = [
            ("headlight", info.headlightVersion),
            ("notebook", notebook.path),
            ("notebook hash", info.notebookHash),
            ("date", RunClock.timestamp(info.date)),
            ("machine", info.machine),
            ("working directory", info.workingDirectory)
        ]
        if let r = info.rebuildCommand { repro.append(("rebuild", r)) }
        for c in notebook.cells { repro.append(("cell \(c.number) (line \(c.line))", c.commandLine)) }
        doc.reproducibility = repro
        return Rendered(document: doc, fragments: fragments)
    }

    func renderCell(
        _ cell: NotebookCell, result: NotebookCellResult?, into s: inout ReportDocument.Section,
        placeholder: (String, inout ReportDocument.Section) -> Void
    ) {
        s.code(cell.displaySource, language: "headlight")
        guard let r = result else {
            placeholder("<p class=\"cell-meta\">Cell \(cell.number) · line \(cell.line) · not run</p>\n", &s)
            return
        }
        var meta =
            "Cell \(cell.number) · line \(cell.line) · "
            + "\(HTML.escape(NotebookRunner.formatDuration(r.duration)))"
        if r.stdoutBytes == 0 { meta += " · no output" }
        if r.cached { meta += " <span class=\"cached\">cached</span>" }
        placeholder("<p class=\"cell-meta\">\(meta)</p>\n", &s)
        if !r.stdout.isEmpty {
            let (text, clipped) = clipText(r.stdout, limit: NotebookRenderer.outputLimit)
            s.code(text)
            if clipped || r.stdoutBytes > r.stdout.utf8.count {
                s.note(
                    "Output clipped: the command printed \(r.stdoutBytes) bytes; the report shows the beginning and "
                        + "the end."
                )
            }
        }
        let stderr = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if !stderr.isEmpty {
            let (text, _) = clipText(stderr, limit: NotebookRenderer.outputLimit / 4)
            let n = stderr.split(separator: "\n", omittingEmptySubsequences: false).count
            placeholder(
                "<details class=\"stderr\"><summary>stderr (\(n) line\(n == 1 ? "" : "s"))</summary>"
                    + "<pre><code>\(HTML.escape(text))</code></pre></details>\n", &s)
        }
        if !r.outputs.isEmpty {
            s.paragraph("Output files: " + r.outputs.joined(separator: ", "))
        }
        for o in r.outputs where o.lowercased().hasSuffix(".h5") {
            let url = NotebookKey.resolve(o, in: workingDirectory)
            do {
                s.blocks.append(contentsOf: try figureProvider.blocks(forRunFile: url, cell: cell))
            } catch {
                s.note("\(o): \((error as? LocalizedError)?.errorDescription ?? String(describing: error))")
            }
        }
    }
}

/// Parse, run, render and write a notebook in one call (what `headlight notebook run` does).
public enum NotebookSession {
    /// Returns the URL of the written index.html.
    public static func run(
        notebookURL: URL, displayPath: String, options: NotebookRunOptions,
        launcher: NotebookProcessLauncher = FoundationProcessLauncher(),
        figureProvider: NotebookFigureProvider = RunFileSummaryProvider(),
        rebuildCommand: String? = nil,
        progress: ((NotebookProgress) -> Void)? = nil
    ) throws -> URL {
        let notebook = try Notebook.load(notebookURL, displayPath: displayPath)
        let runner = NotebookRunner(options: options, launcher: launcher, progress: progress)
        let results = try runner.run(notebook)
        let info = NotebookRenderInfo(
            headlightVersion: options.headlightVersion,
            notebookHash: "\(options.hasher.name):"
                + ((try? options.hasher.hashFile(notebookURL))
                    ?? options.hasher.hashData(Data(notebook.source.utf8))),
            workingDirectory: options.workingDirectory.path, rebuildCommand: rebuildCommand)
        let rendered = NotebookRenderer(
            notebook: notebook, results: results, info: info, figureProvider: figureProvider,
            workingDirectory: options.workingDirectory
        ).render()
        do {
            return try rendered.write(to: options.outputDirectory)
        } catch let e as ReportError {
            throw NotebookError.io(path: options.outputDirectory.path, message: e.localizedDescription)
        }
    }
}
