"""Jupyter rendering of a `Run`: a summary table, the captured hooks and small attention heat
maps as inline SVG. Self-contained (no scripts, no network); every text taken from the file
(prompt, token strings, command line, attribute values) is escaped with ``html.escape``."""
from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

import numpy as np

from .errors import HeadlightError

if TYPE_CHECKING:
    from .run import Run

#: Heat maps show at most this many query rows and key columns (the last ones: where a prompt ends).
MAX_ROWS = 32
MAX_COLS = 48
#: Attention captures drawn at most.
MAX_MAPS = 2
#: Batch files: inputs shown in full (the others are listed in the prompts table)
MAX_INPUTS = 3


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _short(v: Any, n: int = 8) -> str:
    if v is None:
        return ""
    a = list(np.asarray(v).tolist()) if not isinstance(v, list) else v
    return ", ".join(map(str, a)) if len(a) <= n else f"{', '.join(map(str, a[:4]))}, …, {a[-1]} ({len(a)})"


def _clip(s: str, n: int = 200) -> str:
    return s if len(s) <= n else s[:n] + "…"


def run_html(run: "Run") -> str:
    m = run.meta
    rows = [
        ("file", os.path.basename(run.path)),
        ("command", f"headlight {m.get('command', '?')}"),
        ("command line", _clip(" ".join(run.command_line), 300)),
        ("model", f"{m.get('model_name', '')} ({m.get('model_file', '?')}, {m.get('architecture', '?')})"),
        ("model sha256", m.get("model_sha256", "")),
        ("dimensions", ", ".join(f"{k}={v}" for k, v in run.config.items())),
        ("written", f"{m.get('created', '?')} → {m.get('finished', 'not finished')} "
                    f"by headlight {m.get('headlight_version', '?')}"),
        ("complete", "yes" if run.complete else "NO (interrupted or still running)"),
        ("groups", ", ".join(run.groups) or "-"),
    ]
    parts = ['<div class="headlight-run" style="font-family:sans-serif;font-size:13px">',
             f"<b>Headlight run</b> {esc(os.path.basename(run.path))}", _table(rows)]
    try:
        parts.append(_inputs_html(run))
        for name in run.groups:
            if name in ("captures", "inputs"):
                continue
            parts.append(_analysis_html(run, name))
    except HeadlightError as e:                 # a damaged file still shows its summary
        parts.append(f'<p style="color:#b00">error: {esc(e)}</p>')
    parts.append("</div>")
    return "\n".join(p for p in parts if p)


def _table(rows: Sequence[Sequence[Any]], header: Optional[Sequence[str]] = None) -> str:
    out = ['<table style="border-collapse:collapse;margin:4px 0">']
    cell = 'style="text-align:left;padding:1px 8px;border-bottom:1px solid #ddd;vertical-align:top"'
    if header:
        out.append("<tr>" + "".join(f"<th {cell}>{esc(h)}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td {cell}>{esc(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _inputs_html(run: "Run") -> str:
    parts = []
    inputs = list(run.iter_inputs())
    if run.inputs:                              # a batch: every prompt in a table, the first few in full
        rows = [(inp.name, "?" if inp.tokens is None else len(inp.tokens), _clip(inp.prompt or "", 80),
                 "" if inp.complete else "incomplete") for inp in inputs]
        parts.append(f"<p><b>{len(inputs)} prompts</b> (/inputs; "
                     f"{'all' if len(inputs) <= MAX_INPUTS else f'the first {MAX_INPUTS}'} shown below; "
                     "<code>run.input(name)</code> reads any of them)</p>")
        parts.append(_table(rows, ["name", "tokens", "prompt", ""]))
        inputs = inputs[:MAX_INPUTS]
    for inp in inputs:
        title = f"input {inp.name}" if inp.name else "input"
        if inp.tokens is not None:
            text = f"{len(inp.tokens)} tokens"
            if inp.prompt_length is not None:
                text += f" ({inp.prompt_length} prompt + {len(inp.tokens) - inp.prompt_length} generated)"
            parts.append(f"<p><b>{esc(title)}</b>: {esc(text)}")
            if inp.prompt is not None:
                parts.append(f"<br/>prompt: <code>{esc(_clip(inp.prompt))}</code>")
            if inp.generated_text:
                parts.append(f"<br/>generated: <code>{esc(_clip(inp.generated_text))}</code>")
            parts.append("</p>")
        info = inp.cache.info()
        if not info:
            continue
        rows = []
        for hook, d in info.items():
            dims = " × ".join(f"{a} {n}" for a, n in zip(d["axes"], d["shape"])) or str(d["shape"])
            rows.append((hook, d["form"], d["dtype"], dims, _short(d["heads"]), _short(d["queries"])))
        parts.append(f"<p><b>captured hooks</b> ({len(info)})</p>")
        parts.append(_table(rows, ["hook", "form", "dtype", "shape", "heads", "queries"]))
        drawn = 0
        for hook, d in info.items():
            if drawn >= MAX_MAPS:
                break
            if hook.endswith("hook_pattern") and d["form"] in ("full", "rows", "span_mass"):
                parts.append(attention_svg(inp.cache[hook], inp.token_strings))
                drawn += 1
    return "\n".join(parts)


def attention_svg(cap: Any, token_strings: Optional[List[str]], head_index: int = 0) -> str:
    """An inline SVG heat map of one stored head of an attention capture: queries down, keys (or
    spans) across, the last MAX_ROWS x MAX_COLS cells. Labels are escaped token texts."""
    values = np.asarray(cap.values[head_index], dtype=np.float32)            # [query, key|span]
    queries = np.asarray(cap.queries)
    q0 = max(0, values.shape[0] - MAX_ROWS)
    if cap.form == "span_mass":
        col_labels = [s.label for s in (cap.spans or [])]
        k0 = 0
    else:
        last_q = int(queries[-1]) + 1 if len(queries) else values.shape[1]
        k_end = min(values.shape[1], last_q)
        k0 = max(0, k_end - MAX_COLS)
        values = values[:, :k_end]
        col_labels = [_tok(token_strings, k) for k in range(k0, k_end)]
    values = values[q0:, k0:]
    row_labels = [f"{int(q)} {_tok(token_strings, int(q))}" for q in queries[q0:]]
    head = int(cap.heads[head_index]) if cap.heads is not None else head_index
    title = f"{cap.hook}, head {head}" + (f", keys {k0}…" if k0 else "")
    return heatmap_svg(values, row_labels, col_labels, title)


def heatmap_svg(values: np.ndarray, row_labels: List[str], col_labels: List[str], title: str) -> str:
    """A [row, column] matrix as an inline SVG heat map (white -> dark blue, scaled to its
    maximum), labels rotated over the columns; each cell's tooltip gives its value."""
    cellw, cellh, left, top = 14, 14, 130, 90
    height = top + cellh * values.shape[0] + 10
    width = max(left + cellw * values.shape[1] + 30, 7 * len(title) + 10)
    finite = values[np.isfinite(values)]
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="monospace" font-size="9" role="img">',
           f"<title>{esc(title)}</title>",
           f'<text x="2" y="11" font-size="11" font-family="sans-serif">{esc(title)}</text>']
    for j, lab in enumerate(col_labels):
        x = left + j * cellw + cellw - 3
        out.append(f'<text transform="translate({x},{top - 3}) rotate(-60)">{esc(_clip(lab, 14))}</text>')
    for i, lab in enumerate(row_labels):
        y = top + i * cellh + cellh - 3
        out.append(f'<text x="{left - 3}" y="{y}" text-anchor="end">{esc(_clip(lab, 20))}</text>')
        for j in range(values.shape[1]):
            v = values[i, j]
            t = 0.0 if not np.isfinite(v) else max(0.0, min(1.0, float(v) / vmax))
            r, g, b = (int(255 - t * (255 - c)) for c in (8, 69, 148))         # white -> dark blue
            tip = f"{esc(lab)} → {esc(col_labels[j])}: {float(v):.4f}"
            out.append(f'<rect x="{left + j * cellw}" y="{top + i * cellh}" width="{cellw}" height="{cellh}" '
                       f'fill="rgb({r},{g},{b})"><title>{tip}</title></rect>')
    out.append("</svg>")
    return "<div>" + "".join(out) + "</div>"


def needle_svg(na: Any) -> str:
    """The top heads' attention at the chosen answer step, over the needle and a few tokens
    around it (at most MAX_COLS keys)."""
    s, e = na.span
    step = na.chosen_step
    n_keys = na.weights.shape[2]
    if s < 0:
        q = int(na.query_positions[step])
        k0, k1 = max(0, q + 1 - MAX_COLS), q + 1
    else:
        k0 = max(0, s - 6)
        k1 = min(n_keys, max(e + 6, k0 + 1), k0 + MAX_COLS)
    values = np.asarray(na.weights[:, step, k0:k1], dtype=np.float32)          # [head, key]
    cols = [_tok(na.token_strings, k) for k in range(k0, k1)]
    title = f"needle_attention: answer step {step}, keys {k0}…{k1 - 1}"
    if s >= 0:
        title += f" (needle {s}…{e - 1})"
    return heatmap_svg(values, list(na.heads), cols, title)


def _tok(strings: Optional[List[str]], i: int) -> str:
    if strings is None or not 0 <= i < len(strings):
        return str(i)
    return strings[i].replace("\n", "⏎")


def _analysis_html(run: "Run", name: str) -> str:
    a = getattr(run, name, None) if name in ("retrieval_heads", "ablation", "citation", "membership",
                                             "composition", "needle_attention") else None
    if a is None:
        return f"<p><b>{esc(name)}</b></p>"
    lines: List[str] = []
    if name == "retrieval_heads":
        t = a.trials
        lines.append(f"{len(t)} trials recorded of {a.attrs.get('planned_trials', '?')} planned")
        if a.scores is not None:
            lines.append("top heads: " + ", ".join(f"{h} {s:.3f}" for h, s in a.top(5)))
    elif name == "ablation":
        lines.append(f"method {a.attrs.get('method')}, phase {a.attrs.get('phase')}, {len(a.records)} decodes")
        if a.finished:
            for c, ms in a.summary().items():
                est = ms.get("rouge1_recall_x100")
                if est:
                    lines.append(f"{c}: ROUGE-1 ×100 {est[0]:.1f} [{est[1]:.1f}, {est[2]:.1f}]")
        if a.causal is not None:
            lines.append(f"causal graph among {', '.join(a.causal.targets)}")
    elif name == "citation":
        for r, d in a.readouts.items():
            if "agreement" in d:
                lines.append(f"{r}: agreement {d['agreement'][0]:.3f}")
        lines.append(f"{len(a.statements)} statements in {len(a.items)} items")
    elif name == "membership":
        for k, m in a.methods.items():
            lines.append(f"{m.label}: AUC {m.auc:.3f} [{m.ci_lower:.3f}, {m.ci_upper:.3f}]")
        lines.append(f"{len(a.documents)} documents")
    elif name == "composition":
        lines.append(f"heads {', '.join(a.heads)}")
    elif name == "needle_attention":
        lines.append(f"heads {', '.join(a.heads)}; response {a.response!r}")
    body = "".join(f"<li>{esc(x)}</li>" for x in lines)
    extra = needle_svg(a) if name == "needle_attention" else ""
    return f"<p><b>{esc(name)}</b></p><ul style='margin:2px 0'>{body}</ul>{extra}"
