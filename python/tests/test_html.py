"""The Jupyter representation: summary, captured hooks, inline SVG heat maps, escaping."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import headlight

HOSTILE = 'Tom & "Jerry" <script>alert(1)</script> </svg><img src=x onerror=alert(2)>'


def parse(fragment: str) -> ET.Element:
    """The fragment must be well-formed XML: any unescaped token text would break it."""
    return ET.fromstring(f"<root>{fragment}</root>")


def test_summary_and_hooks(runs):
    run = headlight.open(runs["rows"].path)
    page = run._repr_html_()
    root = parse(page)
    text = "".join(root.itertext())
    assert "headlight trace" in text and run.sha256 in text and run.meta["model_file"] in text
    for hook, shape in run.cache.shapes().items():
        assert hook in text
    assert "head 2 × query 3 × key" in text             # named dims of the pattern rows
    svgs = root.findall(".//{http://www.w3.org/2000/svg}svg")
    assert len(svgs) == 2                                 # two attention captures drawn
    rects = svgs[0].findall("{http://www.w3.org/2000/svg}rect")
    pat = run.cache["blocks.2.attn.hook_pattern"]
    n_keys = pat.shape[2]
    assert len(rects) == 3 * min(n_keys, 48)
    # the cell tooltips carry the values of the first stored head
    first = rects[0].find("{http://www.w3.org/2000/svg}title").text
    assert first.endswith(f"{float(pat.values[0, 0, 0]):.4f}")
    assert "<script" not in page


def test_token_text_is_escaped(binary):
    run = headlight.trace(None, HOSTILE, hooks="blocks.1.attn.hook_pattern", binary=binary)
    page = run._repr_html_()
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    root = parse(page)
    labels = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "script" in labels and "&" in "".join(root.itertext())
    svg = root.find(".//{http://www.w3.org/2000/svg}svg")
    n = len(run.tokens)
    assert len(svg.findall("{http://www.w3.org/2000/svg}rect")) == min(n, 32) * min(n, 48)


def test_span_mass_map_and_analyses(runs):
    page = headlight.open(runs["spans"].path)._repr_html_()
    root = parse(page)
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "first" in labels and "rug" in labels
    for name in ("rh", "ablate", "causal", "cite", "membership", "composition", "attention"):
        run = headlight.open(runs[name].path)
        text = "".join(parse(run._repr_html_()).itertext())
        assert f"headlight {run.command}" in text
        group = headlight.run.COMMAND_GROUPS[run.command]
        assert group in text
    rh = headlight.open(runs["rh"].path)
    best, score = rh.retrieval_heads.top(1)[0]
    assert f"{best} {score:.3f}" in "".join(parse(rh._repr_html_()).itertext())
    mem = headlight.open(runs["membership"].path)
    m = next(iter(mem.membership.methods.values()))
    assert f"AUC {m.auc:.3f}" in "".join(parse(mem._repr_html_()).itertext())


def test_needle_attention_map(runs):
    run = headlight.open(runs["attention"].path)
    na = run.needle_attention
    svg = parse(run._repr_html_()).find(".//{http://www.w3.org/2000/svg}svg")
    assert svg is not None
    rects = svg.findall("{http://www.w3.org/2000/svg}rect")
    s, e = na.span
    k0 = max(0, s - 6)
    n_cols = len(rects) // len(na.heads)
    assert len(rects) == len(na.heads) * n_cols and n_cols >= e - s
    # row i, column j is weights[head i, chosen step, k0 + j]
    for i in range(len(na.heads)):
        for j in (0, n_cols - 1):
            tip = rects[i * n_cols + j].find("{http://www.w3.org/2000/svg}title").text
            assert tip.startswith(na.heads[i]) and tip.endswith(f"{float(na.weights[i, na.chosen_step, k0 + j]):.4f}")
