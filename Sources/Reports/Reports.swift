// Reports: the rendering layer of Headlight's HTML reports.
//
// Pieces (each usable on its own, all pure functions of their inputs, deterministic output):
//   Escaping.swift        HTML.escape / SVG.escape / DOT.quote — the only way untrusted text
//                         (prompts, model output, token strings, probe files) enters markup.
//   Graphviz.swift        in-process Graphviz (C shim hl_gv_render_svg), errors -> ReportError.
//   DirectedGraph.swift   circuit/attribution graphs -> DOT -> themed SVG.
//   Heatmap.swift         Heatmap (layers × heads) and NeedleGrid (context length × depth).
//   BarChart.swift        GroupedBarChart with 95% CI error bars.
//   LineChart.swift       LineChart, LineChart.roc (diagonal, AUC in legend).
//   AttentionStrip.swift  per-head attention over tokens with a highlighted span.
//   Histogram.swift       density histograms (+ KDE) of one feature for several groups.
//   ReportDocument.swift  self-contained index.html + figures/*.svg, written atomically.
//   ChartSupport.swift    ticks (1-2-5), scales, colour scales, text metrics, shared CSS.
//
// Conventions
// - Every chart returns one standalone `<svg>` string (xmlns, px width/height, viewBox,
//   <title>, <desc>) that is both inlined into index.html and saved as its own .svg file.
// - Light and dark mode: chrome colours are CSS variables switched by
//   `prefers-color-scheme`; only data colours (heat-map cells, node fills) are literal.
// - Missing values (NaN, ±inf) are drawn as hatched/grey cells or gaps, never as numbers;
//   empty input gives a "No data" placeholder chart instead of trapping.
// - Element IDs inside charts are prefixed with a hash of the chart content, so several
//   charts can share one HTML page without ID collisions that matter.
