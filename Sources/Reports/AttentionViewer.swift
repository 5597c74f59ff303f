import Foundation

/// The interactive attention viewer of a report (a `ReportDocument.Widget`): a head selector,
/// the tokens as a strip, and the selected head's pattern as a matrix. Hovering a token (or a
/// matrix row) makes that query the highlighted row and colours every key token by the attention
/// the query pays it (the CircuitsVis habit). Everything is built by the page's one inline script
/// (`script`, allowed by its SHA-256 in the report's Content-Security-Policy) from a JSON data
/// block; nothing is loaded from the network. Without scripts the widget stays hidden and the
/// report's static SVG figures show the same patterns.
///
/// The script text contains no `<` or `&`, so the page stays well-formed XML.
public struct AttentionViewer: Sendable {
    public struct View: Sendable {
        public var label: String
        /// Index into `grids`.
        public var grid: Int
        /// Top-k capture: keys kept per row (cells outside are not stored).
        public var topK: Int?
        /// [row * cols + col]
        public var values: [Double]
    }

    public struct Grid: Sendable, Equatable {
        /// First and last position of each query bin and key bin.
        public var rows: [ClosedRange<Int>]
        public var cols: [ClosedRange<Int>]
    }

    /// Text of each token position (untrusted; sanitized and JSON-escaped here).
    public var tokens: [String]
    public var grids: [Grid] = []
    public var views: [View] = []
    /// Element id stem, unique in the page.
    public var id: String

    public init(id: String, tokens: [String]) {
        self.id = id
        self.tokens = tokens
    }

    /// Adds one head's binned pattern.
    public mutating func add(_ p: TraceCaptureData.Pattern) {
        let g = Grid(
            rows: (0..<p.rows.count).map { p.rows.span($0) }, cols: (0..<p.cols.count).map { p.cols.span($0) })
        let gi: Int
        if let i = grids.firstIndex(of: g) {
            gi = i
        } else {
            grids.append(g)
            gi = grids.count - 1
        }
        views.append(
            View(label: "L\(p.layer).H\(p.head)", grid: gi, topK: p.k, values: Array(p.values.joined())))
    }

    /// Values are stored as integers 0...scale (-1: not stored).
    static let scale = 1000

    /// A token as the viewer shows it: controls as control pictures, line breaks and tabs as ↵ ⇥,
    /// an empty token as ∅ (spaces kept).
    static func viewerText(_ t: String) -> String {
        var s = ""
        for u in TextSanitizer.visible(t.replacingOccurrences(of: "\r\n", with: "\n")).unicodeScalars {
            switch u {
            case "\n": s += "↵"
            case "\t": s += "⇥"
            default: s.unicodeScalars.append(u)
            }
        }
        return s.isEmpty ? "∅" : s
    }

    /// The data block (JSON). Strings are escaped for JSON here; `ReportDocument` further escapes
    /// `<`, `>` and `&` when embedding it.
    public func json() -> String {
        let used = (grids.flatMap { $0.cols.map(\.upperBound) + $0.rows.map(\.upperBound) }.max() ?? -1) + 1
        var s = "{\"scale\":\(Self.scale),\"tokens\":["
        s += (0..<min(used, tokens.count)).map { JSON.string(Self.viewerText(tokens[$0])) }.joined(separator: ",")
        s += "],\"grids\":["
        s += grids.map { g in
            "{\"rows\":[" + g.rows.map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ",") + "],\"cols\":["
                + g.cols.map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ",") + "]}"
        }.joined(separator: ",")
        s += "],\"views\":["
        s += views.map { v in
            let vals = v.values.map { x -> String in
                x.isFinite ? String(Int((min(max(x, 0), 1) * Double(Self.scale)).rounded())) : "-1"
            }
            return "{\"label\":\(JSON.string(v.label)),\"grid\":\(v.grid),\"topk\":\(v.topK ?? 0),\"v\":["
                + vals.joined(separator: ",") + "]}"
        }.joined(separator: ",")
        return s + "]}"
    }

    /// The widget: controls and empty containers (hidden until the script fills them), the data
    /// and the script.
    public func widget() -> ReportDocument.Widget {
        let dataID = HTML.safeFileStem(id + "-data")
        var m =
            "<div class=\"hl-viewer\" id=\"\(HTML.safeFileStem(id))\" data-source=\"\(dataID)\" hidden=\"hidden\">\n"
        m += "<p class=\"hl-v-controls\"><label>Head <select class=\"hl-v-head\">"
        for (i, v) in views.enumerated() { m += "<option value=\"\(i)\">\(HTML.escape(v.label))</option>" }
        m += "</select></label> <span class=\"hl-v-status\" aria-live=\"polite\"></span></p>\n"
        m += "<div class=\"hl-v-tokens\"></div>\n<div class=\"hl-v-matrix\"></div>\n</div>"
        return ReportDocument.Widget(dataID: dataID, markup: m, json: json(), script: Self.script)
    }

    /// The viewer script (one copy per page). No `<` or `&` in it (XML-safe).
    static let script = """
        (function () {
        'use strict';
        var NS = 'http://www.w3.org/2000/svg';
        var STOPS = [[68,1,84],[72,36,117],[65,68,135],[53,95,141],[42,120,142],[33,145,140],[34,168,132],\
        [68,191,112],[122,209,81],[189,223,38],[253,231,37]];
        function colour(t) {
          t = Math.max(0, Math.min(1, t));
          var x = t * (STOPS.length - 1), i = Math.min(Math.floor(x), STOPS.length - 2), f = x - i;
          var a = STOPS[i], b = STOPS[i + 1];
          return 'rgb(' + [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * f); }).join(',') + ')';
        }
        function binText(d, b) {
          var t = d.tokens[b[0]] === undefined ? '?' : d.tokens[b[0]];
          return b[1] === b[0] ? t : t + '\\u2026';
        }
        function binName(d, b) {
          return b[1] === b[0] ? 'position ' + b[0] + ' \\u201c' + binText(d, b) + '\\u201d'
            : 'positions ' + b[0] + '\\u2013' + b[1];
        }
        function setup(root) {
          var src = document.getElementById(root.getAttribute('data-source'));
          if (!src) { return; }
          var d = JSON.parse(src.textContent);
          var select = root.querySelector('select');
          var strip = root.querySelector('.hl-v-tokens');
          var box = root.querySelector('.hl-v-matrix');
          var status = root.querySelector('.hl-v-status');
          var view = null, grid = null, spans = [], mark = null, cell = 8;
          function value(r, c) {
            var x = view.v[r * grid.cols.length + c];
            return x === -1 ? NaN : x / d.scale;
          }
          function rowOfKey(c) {
            var p = grid.cols[c][0];
            for (var r = 0; grid.rows.length > r; r++) {
              if (p >= grid.rows[r][0]) { if (grid.rows[r][1] >= p) { return r; } }
            }
            return -1;
          }
          function highlight(r) {
            root.setAttribute('data-row', String(r));
            var best = -1, bestV = -1;
            for (var c = 0; spans.length > c; c++) {
              var s = spans[c], x = r >= 0 ? value(r, c) : NaN;
              s.classList.toggle('hl-v-query', r >= 0 ? rowOfKey(c) === r : false);
              if (isNaN(x)) { s.style.background = ''; s.style.color = ''; continue; }
              s.style.background = colour(x);
              s.style.color = x > 0.55 ? '#000' : '#fff';
              if (x > bestV) { bestV = x; best = c; }
            }
            if (r >= 0) {
              mark.setAttribute('y', String(r * cell));
              mark.setAttribute('visibility', 'visible');
              status.textContent = view.label + ': query at ' + binName(d, grid.rows[r])
                + (best >= 0 ? ' attends most to ' + binName(d, grid.cols[best]) + ' (' + bestV.toFixed(3) + ')'
                : '') + (view.topk ? '; top-' + view.topk + ' keys stored, uncoloured tokens not stored' : '');
            } else {
              mark.setAttribute('visibility', 'hidden');
            }
          }
          function render() {
            view = d.views[Number(select.value)];
            grid = d.grids[view.grid];
            root.setAttribute('data-view', view.label);
            var nr = grid.rows.length, nc = grid.cols.length;
            cell = Math.max(4, Math.min(16, Math.floor(640 / Math.max(nr, nc))));
            strip.textContent = '';
            spans = [];
            grid.cols.forEach(function (b, c) {
              var s = document.createElement('span');
              s.className = 'hl-v-tok';
              s.textContent = binText(d, b);
              s.title = binName(d, b);
              s.setAttribute('data-c', String(c));
              s.addEventListener('mouseover', function () {
                var r = rowOfKey(c);
                highlight(r);
                if (0 > r) { status.textContent = binName(d, b) + ' is not a captured query'; }
              });
              strip.appendChild(s);
              spans.push(s);
            });
            var svg = document.createElementNS(NS, 'svg');
            svg.setAttribute('width', String(nc * cell));
            svg.setAttribute('height', String(nr * cell));
            svg.setAttribute('viewBox', '0 0 ' + nc * cell + ' ' + nr * cell);
            var bg = document.createElementNS(NS, 'rect');
            bg.setAttribute('width', String(nc * cell));
            bg.setAttribute('height', String(nr * cell));
            bg.setAttribute('fill', view.topk ? '#9aa0a6' : colour(0));
            svg.appendChild(bg);
            for (var r = 0; nr > r; r++) {
              for (var c = 0; nc > c; c++) {
                var x = value(r, c);
                if (isNaN(x)) { continue; }
                if (view.topk === 0) { if (1 / 256 > x) { continue; } }
                var e = document.createElementNS(NS, 'rect');
                e.setAttribute('x', String(c * cell));
                e.setAttribute('y', String(r * cell));
                e.setAttribute('width', String(cell));
                e.setAttribute('height', String(cell));
                e.setAttribute('fill', colour(x));
                e.setAttribute('data-r', String(r));
                svg.appendChild(e);
              }
            }
            mark = document.createElementNS(NS, 'rect');
            mark.setAttribute('class', 'hl-v-rowmark');
            mark.setAttribute('x', '0');
            mark.setAttribute('width', String(nc * cell));
            mark.setAttribute('height', String(cell));
            mark.setAttribute('fill', 'none');
            mark.setAttribute('stroke', '#ff3b30');
            mark.setAttribute('stroke-width', '2');
            svg.appendChild(mark);
            svg.addEventListener('mouseover', function (ev) {
              var a = ev.target.getAttribute('data-r');
              if (a !== null) { highlight(Number(a)); }
            });
            box.textContent = '';
            box.appendChild(svg);
            highlight(nr - 1);
          }
          select.addEventListener('change', render);
          root.hidden = false;
          render();
          root.setAttribute('data-ready', '1');
        }
        var roots = document.querySelectorAll('.hl-viewer');
        for (var i = 0; roots.length > i; i++) { setup(roots[i]); }
        })();
        """
}

/// Minimal JSON string encoding (RFC 8259): quotes, backslash and control characters escaped.
enum JSON {
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
