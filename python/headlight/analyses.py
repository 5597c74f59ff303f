"""Readers of the analysis groups (docs/run-file.md, "Analyses"): plain dataclasses of numpy
arrays, `Table`s and Python values. Each reader takes the group and returns its dataclass;
everything in the group is kept (``attrs``, ``arrays``, ``tables``, ``groups``), and the
documented items have named properties. Summaries that an unfinished sweep has not written yet
are None."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from ._h5 import guard, read_attrs, read_dataset, require
from .errors import RunFileError
from .tables import Table

ANALYSIS_VERSIONS = (1,)


@dataclass
class AnalysisGroup:
    """One group of a run file: its attributes, datasets and sub-groups."""
    name: str                                            # HDF5 path, e.g. "/retrieval_heads"
    path: str                                            # the run file
    attrs: Dict[str, Any] = field(default_factory=dict)
    arrays: Dict[str, np.ndarray] = field(default_factory=dict)
    array_attrs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    tables: Dict[str, Table] = field(default_factory=dict)
    groups: Dict[str, "AnalysisGroup"] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        for d in (self.arrays, self.tables, self.groups):
            if key in d:
                return d[key]
        raise KeyError(f"{self.name} has no {key!r} (datasets: {', '.join(self.arrays) or '-'}; "
                       f"groups: {', '.join(list(self.tables) + list(self.groups)) or '-'})")

    def __contains__(self, key: object) -> bool:
        return key in self.arrays or key in self.tables or key in self.groups

    def axes(self, dataset: str) -> List[str]:
        """The ``axes`` attribute of a dataset of this group ([] if it has none)."""
        return list(self.array_attrs.get(dataset, {}).get("axes", []))

    def attr(self, name: str) -> Any:
        """A required attribute, or RunFileError naming it."""
        if name not in self.attrs:
            raise RunFileError(self.path, "missing attribute", key=f"{self.name}@{name}")
        return self.attrs[name]

    def array(self, name: str) -> np.ndarray:
        """A required dataset, or RunFileError naming it."""
        if name not in self.arrays:
            raise RunFileError(self.path, "missing dataset", key=f"{self.name}/{name}")
        return self.arrays[name]


def read_group(path: str, g: h5py.Group, tables: Sequence[str] = (), cls: type = AnalysisGroup,
               analysis: Optional[str] = None) -> Any:
    """Reads `g`: datasets into ``arrays``, the sub-groups named in `tables` as `Table`s, other
    sub-groups recursively. With `analysis`, checks the ``analysis`` / ``analysis_version``."""
    attrs = read_attrs(path, g, g.name)
    if analysis is not None:
        if attrs.get("analysis") != analysis:
            raise RunFileError(path, f"analysis attribute is {attrs.get('analysis')!r}, expected {analysis!r}",
                               key=f"{g.name}@analysis")
        if attrs.get("analysis_version") not in ANALYSIS_VERSIONS:
            raise RunFileError(path, f"analysis_version {attrs.get('analysis_version')!r} is not supported",
                               key=f"{g.name}@analysis_version", hint="upgrade the headlight Python package")
    out = cls(name=g.name, path=path, attrs=attrs)
    with guard(path, g.name):
        items = list(g.items())
    for name, obj in items:
        if isinstance(obj, h5py.Dataset):
            out.arrays[name] = read_dataset(path, obj)
            out.array_attrs[name] = read_attrs(path, obj, obj.name)
        elif name in tables:
            out.tables[name] = Table.read(path, obj)
        else:
            out.groups[name] = read_group(path, obj)
    return out


def _heads(pairs: Optional[np.ndarray]) -> List[str]:
    """int64 [n, layer_head] -> ["L.H", ...]."""
    return [] if pairs is None else [f"{int(l)}.{int(h)}" for l, h in np.asarray(pairs).reshape(-1, 2)]


def rank_heads(scores: np.ndarray) -> List[Tuple[int, int, float]]:
    """Every head of a [layer, head] matrix as (layer, head, score), highest first, ties by
    (layer, head), as Headlight ranks them."""
    flat = np.argsort(-scores, axis=None, kind="stable")
    layers, heads = np.unravel_index(flat, scores.shape)
    return [(int(l), int(h), float(scores[l, h])) for l, h in zip(layers, heads)]


# MARK: /retrieval_heads

@dataclass
class RetrievalHeads(AnalysisGroup):
    """``/retrieval_heads`` of ``headlight retrieval-heads``."""

    @property
    def finished(self) -> bool:
        return "scores" in self.arrays

    @property
    def scores(self) -> Optional[np.ndarray]:
        """float64 [layer, head]: mean trial score over counted trials (None until finished)."""
        return self.arrays.get("scores")

    @property
    def trials(self) -> Table:
        """One row per trial, in execution order (``.sorted_by("trial_index")`` for grid order)."""
        return self.tables["trials"]

    @property
    def threshold(self) -> float:
        return float(self.attr("threshold"))

    @property
    def threshold_heads(self) -> List[str]:
        """Heads scoring above the threshold, highest first (empty until finished)."""
        return list(self.attrs.get("threshold_heads", []))

    @property
    def retrieval_heads(self) -> Optional[np.ndarray]:
        """int64 [rank, layer_head]; None until finished or when no head passes the threshold."""
        return self.arrays.get("retrieval_heads")

    @property
    def retrieval_head_scores(self) -> Optional[np.ndarray]:
        return self.arrays.get("retrieval_head_scores")

    def ranking(self) -> List[Tuple[int, int, float]]:
        """(layer, head, score) for every head, highest score first."""
        if self.scores is None:
            raise RunFileError(self.path, "no scores yet (the sweep did not finish)", key=f"{self.name}/scores")
        return rank_heads(self.scores)

    def top(self, n: int = 10) -> List[Tuple[str, float]]:
        """The n best heads as ("L.H", score)."""
        return [(f"{l}.{h}", s) for l, h, s in self.ranking()[:n]]

    def scores_from_trials(self) -> np.ndarray:
        """[layer, head] recomputed from the trial table: mean ``head_scores`` over counted
        trials (what ``scores`` holds when finished; usable on a partial file)."""
        t = self.trials
        counted = t["counted"].astype(bool)
        hs = t["head_scores"]                                        # [trial, layer, head]
        if not counted.any():
            return np.zeros((int(self.attr("n_layers")), int(self.attr("n_heads"))))
        return hs[counted].mean(axis=0)


def read_retrieval_heads(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> RetrievalHeads:
    require(path, g, "trials", h5py.Group, what="the per-trial record table")
    return read_group(path, g, tables=("trials",), cls=RetrievalHeads, analysis="retrieval_heads")


# MARK: /ablation

@dataclass
class CausalGraph:
    """``/ablation/causal``: target heads' retrieval scores with each source head ablated alone."""
    sources: List[str]                     # [source] "L.H"
    targets: List[str]                     # [target] "L.H"
    baseline_scores: np.ndarray            # [target]
    scores: np.ndarray                     # [source, target]
    counted_trials: np.ndarray             # [source]
    attrs: Dict[str, Any]

    @property
    def score_change(self) -> np.ndarray:
        """[source, target]: scores - baseline_scores, the edge weights of the causal graph."""
        return self.scores - self.baseline_scores[None, :]

    def edges(self) -> Dict[Tuple[str, str], float]:
        """(source, target) -> score change, for every pair of distinct heads."""
        ch = self.score_change
        return {(s, t): float(ch[i, j]) for i, s in enumerate(self.sources)
                for j, t in enumerate(self.targets) if s != t}


@dataclass
class ConditionSweep(AnalysisGroup):
    """What ``/ablation`` and ``/kv_policy`` share: conditions over a NIAH suite, per-decode records,
    bootstrap means and cells. Conditions index every ``condition`` axis."""

    @property
    def finished(self) -> bool:
        return "mean" in self.arrays

    @property
    def condition_names(self) -> List[str]:
        return list(self.attr("condition_names"))

    @property
    def condition_kinds(self) -> List[str]:
        return list(self.attr("condition_kinds"))

    @property
    def metrics(self) -> List[str]:
        return list(self.attr("metrics"))

    @property
    def records(self) -> Table:
        """One row per (trial, condition) decode, in execution order."""
        return self.tables["records"]

    @property
    def perplexity_records(self) -> Optional[Table]:
        return self.tables.get("perplexity_records")

    def _opt(self, name: str) -> Optional[np.ndarray]:
        return self.arrays.get(name)

    trial_scores = property(lambda self: self._opt("trial_scores"), doc="[condition, trial, metric]")
    mean = property(lambda self: self._opt("mean"), doc="[condition, metric]")
    ci_lower = property(lambda self: self._opt("ci_lower"), doc="[condition, metric]")
    ci_upper = property(lambda self: self._opt("ci_upper"), doc="[condition, metric]")
    cells = property(lambda self: self._opt("cells"), doc="[condition, metric, length, depth]")
    perplexity = property(lambda self: self._opt("perplexity"), doc="[condition]")

    @property
    def lengths(self) -> Optional[np.ndarray]:
        return None if "cells" not in self.arrays else np.asarray(self.array_attrs["cells"].get("lengths"))

    @property
    def depths(self) -> Optional[np.ndarray]:
        return None if "cells" not in self.arrays else np.asarray(self.array_attrs["cells"].get("depths"))


@dataclass
class Ablation(ConditionSweep):
    """``/ablation`` of ``headlight ablate``."""

    @property
    def condition_heads(self) -> List[List[str]]:
        """Per condition, the ablated heads (``[]`` for the baseline)."""
        return [[h for h in s.split(",") if h] for s in self.attr("condition_heads")]

    @property
    def condition_head_ids(self) -> np.ndarray:
        """int64 [condition, head, layer_head], padded with -1."""
        return self.array("condition_head_ids")

    control_mean = property(lambda self: self._opt("control_mean"), doc="[metric, estimate_lower_upper]")
    difference_target_vs_controls = property(lambda self: self._opt("difference_target_vs_controls"),
                                             doc="[metric, estimate_lower_upper_p]")
    difference_target_vs_baseline = property(lambda self: self._opt("difference_target_vs_baseline"),
                                             doc="[metric, estimate_lower_upper_p]")
    mean_nll = property(lambda self: self._opt("mean_nll"), doc="[condition]")
    perplexity_delta = property(lambda self: self._opt("perplexity_delta"), doc="[condition]")

    def summary(self) -> Dict[str, Dict[str, Tuple[float, float, float]]]:
        """condition -> metric -> (mean, CI lower, CI upper)."""
        if not self.finished:
            raise RunFileError(self.path, "no summary yet (the run did not finish)", key=f"{self.name}/mean")
        return {c: {m: (float(self.mean[i, j]), float(self.ci_lower[i, j]), float(self.ci_upper[i, j]))
                    for j, m in enumerate(self.metrics)} for i, c in enumerate(self.condition_names)}

    @property
    def causal(self) -> Optional[CausalGraph]:
        """The causal head graph (``--causal`` runs, when finished), else None."""
        g = self.groups.get("causal")
        if g is None:
            return None
        need = ("sources", "targets", "baseline_scores", "scores", "counted_trials")
        for n in need:
            g.array(n)
        return CausalGraph(sources=[str(s) for s in g.arrays["sources"]], targets=[str(t) for t in g.arrays["targets"]],
                           baseline_scores=g.arrays["baseline_scores"], scores=g.arrays["scores"],
                           counted_trials=g.arrays["counted_trials"], attrs=g.attrs)


def read_ablation(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> Ablation:
    require(path, g, "records", h5py.Group, what="the per-decode record table")
    return read_group(path, g, tables=("records", "perplexity_records"), cls=Ablation, analysis="ablation")


# MARK: /kv_policy

@dataclass
class KVPolicy(ConditionSweep):
    """``/kv_policy`` of ``headlight kv-policy``. Condition kinds: baseline | uniform | retrieval | random | heads."""

    @property
    def condition_rest(self) -> List[str]:
        """The policy of the non-full heads, e.g. ``window:128+4``."""
        return list(self.attr("condition_rest"))

    @property
    def condition_full_heads(self) -> List[List[str]]:
        return [[h for h in s.split(",") if h] for s in self.attr("condition_full_heads")]

    @property
    def condition_n(self) -> np.ndarray:
        return np.asarray(self.attr("condition_n"), dtype=np.int64)

    @property
    def memory_contexts(self) -> List[int]:
        """Contexts (tokens) of the ``kv_bytes`` columns: the run's, then 32k and 128k."""
        return [int(x) for x in self.attr("memory_contexts")]

    perplexity_lower = property(lambda self: self._opt("perplexity_lower"), doc="[condition]")
    perplexity_upper = property(lambda self: self._opt("perplexity_upper"), doc="[condition]")
    kv_bytes = property(lambda self: self._opt("kv_bytes"), doc="int64 [condition, context]")
    difference_vs_baseline = property(lambda self: self._opt("difference_vs_baseline"),
                                      doc="[condition, metric, estimate_lower_upper_p]")
    difference_vs_random = property(lambda self: self._opt("difference_vs_random"),
                                    doc="[condition, metric, estimate_lower_upper_p] (NaN but retrieval/heads)")

    def summary(self) -> Dict[str, Dict[str, Any]]:
        """condition -> {kind, rest, n, metric -> (mean, lower, upper), perplexity, kv_bytes}."""
        if not self.finished:
            raise RunFileError(self.path, "no summary yet (the run did not finish)", key=f"{self.name}/mean")
        out: Dict[str, Dict[str, Any]] = {}
        for i, c in enumerate(self.condition_names):
            row: Dict[str, Any] = {"kind": self.condition_kinds[i], "rest": self.condition_rest[i],
                                   "n": int(self.condition_n[i])}
            for j, m in enumerate(self.metrics):
                row[m] = (float(self.mean[i, j]), float(self.ci_lower[i, j]), float(self.ci_upper[i, j]))
            row["perplexity"] = (float(self.perplexity[i]), float(self.perplexity_lower[i]),
                                 float(self.perplexity_upper[i]))
            row["kv_bytes"] = dict(zip(self.memory_contexts, (int(x) for x in self.kv_bytes[i])))
            out[c] = row
        return out


def read_kv_policy(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> KVPolicy:
    require(path, g, "records", h5py.Group, what="the per-decode record table")
    return read_group(path, g, tables=("records", "perplexity_records"), cls=KVPolicy, analysis="kv_policy")


# MARK: /citation

CITATION_READOUTS = ("all_heads", "all_heads_per_token", "retrieval_heads", "best_head")
CITATION_METRICS = ("agreement", "mean_spearman", "mean_point_biserial", "wrong_follows_citation",
                    "wrong_follows_true_source")


@dataclass
class Citation(AnalysisGroup):
    """``/citation`` of ``headlight cite``."""

    @property
    def items(self) -> Table:
        return self.tables["items"]

    @property
    def statements(self) -> Table:
        return self.tables["statements"]

    @property
    def statement_passages(self) -> Table:
        """One row per (statement, passage); ``head_mass`` is [row, layer, head]."""
        return self.tables["statement_passages"]

    @property
    def head_agreement(self) -> np.ndarray:
        return self.array("head_agreement")

    @property
    def head_ranking(self) -> np.ndarray:
        """int64 [rank, layer_head]: every head, best first."""
        return self.array("head_ranking")

    @property
    def retrieval_heads(self) -> List[str]:
        return list(self.attrs.get("retrieval_heads_list", []))

    @property
    def readouts(self) -> Dict[str, Dict[str, Any]]:
        """readout -> metric -> (estimate, CI lower, CI upper), plus ``agreement_all_statements``;
        for the readouts the file has (``all_heads``, ``retrieval_heads``, ``best_head``...)."""
        out: Dict[str, Dict[str, Any]] = {}
        for r in CITATION_READOUTS:
            if f"agreement_{r}" not in self.attrs:
                continue
            d: Dict[str, Any] = {}
            for m in CITATION_METRICS:
                key = f"{m}_{r}"
                if key in self.attrs:
                    ci = self.attrs.get(f"{key}_ci", [np.nan, np.nan])
                    d[m] = (float(self.attrs[key]), float(ci[0]), float(ci[1]))
            if f"agreement_all_statements_{r}" in self.attrs:
                d["agreement_all_statements"] = float(self.attrs[f"agreement_all_statements_{r}"])
            out[r] = d
        return out


def read_citation(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> Citation:
    for t in ("items", "statements", "statement_passages"):
        require(path, g, t, h5py.Group)
    return read_group(path, g, tables=("items", "statements", "statement_passages"), cls=Citation,
                      analysis="citation")


# MARK: /membership

@dataclass
class MembershipMethod:
    """One method of ``/membership/methods/<name>``: its AUC with CI and ROC curve."""
    name: str
    label: str
    kind: str                      # classifier, baseline or blind
    auc: float
    ci_lower: float
    ci_upper: float
    fpr: np.ndarray                # [point]
    tpr: np.ndarray                # [point]
    thresholds: np.ndarray         # [point], decreasing, thresholds[0] = +inf
    attrs: Dict[str, Any]


@dataclass
class Membership(AnalysisGroup):
    """``/membership`` of ``headlight membership``."""

    @property
    def documents(self) -> Table:
        """One row per document; ``surface_features`` is [doc, feature] (names in
        ``documents.column_attrs["surface_features"]["names"]``)."""
        return self.tables["documents"]

    @property
    def method_names(self) -> List[str]:
        return list(self.attrs.get("method_names", []))

    @property
    def methods(self) -> Dict[str, MembershipMethod]:
        """Method name -> `MembershipMethod`, in ``method_names`` order (empty without labels)."""
        mg = self.groups.get("methods")
        out: Dict[str, MembershipMethod] = {}
        if mg is None:
            return out
        for name in self.method_names or list(mg.groups):
            if name not in mg.groups:
                raise RunFileError(self.path, "listed in method_names but missing", key=f"{mg.name}/{name}")
            m = mg.groups[name]
            out[name] = MembershipMethod(name=name, label=m.attr("label"), kind=m.attr("kind"),
                                         auc=float(m.attr("auc")),
                                         ci_lower=float(m.attr("ci_lower")), ci_upper=float(m.attr("ci_upper")),
                                         fpr=m.array("fpr"), tpr=m.array("tpr"), thresholds=m.array("thresholds"),
                                         attrs=m.attrs)
        return out

    def aucs(self) -> Dict[str, float]:
        return {k: m.auc for k, m in self.methods.items()}


def read_membership(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> Membership:
    require(path, g, "documents", h5py.Group, what="one row per document")
    return read_group(path, g, tables=("documents",), cls=Membership, analysis="membership")


# MARK: /composition

@dataclass
class Composition(AnalysisGroup):
    """``/composition`` of ``headlight report composition``: [writer, reader] matrices over ``heads``."""

    @property
    def heads(self) -> List[str]:
        return list(self.attr("heads"))

    q_comp = property(lambda self: self.array("q_comp"), doc="[writer, reader]")
    k_comp = property(lambda self: self.array("k_comp"), doc="[writer, reader]")
    v_comp = property(lambda self: self.array("v_comp"), doc="[writer, reader]")

    @property
    def head_scores(self) -> Optional[np.ndarray]:
        """[head] retrieval score of each head (with --heads-from only)."""
        return self.arrays.get("head_scores")

    @property
    def baselines(self) -> Dict[str, float]:
        return {k: float(self.attrs[f"baseline_{k}"]) for k in ("q", "k", "v") if f"baseline_{k}" in self.attrs}


def read_composition(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> Composition:
    comp = read_group(path, g, cls=Composition, analysis="composition")
    n = len(comp.heads)
    for name in ("q_comp", "k_comp", "v_comp"):
        if comp.array(name).shape != (n, n):
            raise RunFileError(path, f"shape {comp.arrays[name].shape}, expected ({n}, {n}) for {n} heads",
                               key=f"{g.name}/{name}")
    return comp


# MARK: /lens

@dataclass
class Lens(AnalysisGroup):
    """``/lens`` of ``headlight lens``: logit lens rows ("0".."L-1" = resid_pre of that block,
    "final") at ``positions``, and (with a target) direct logit attribution in ``dla``."""

    @property
    def positions(self) -> List[int]:
        return [int(p) for p in self.attr("positions")]

    @property
    def rows(self) -> List[str]:
        return list(self.attr("rows"))

    @property
    def texts(self) -> Dict[int, str]:
        """Token id -> text, for every id the group names."""
        return {int(i): str(t) for i, t in zip(self.array("token_ids"), self.array("token_texts"))}

    def probabilities(self) -> np.ndarray:
        """float64 [row, pos, k]: softmax probabilities of the top tokens."""
        return np.exp(self.array("top_logits").astype(np.float64) - self.array("log_normalizer")[:, :, None])

    def top_tokens(self, position: int) -> List[Tuple[str, str, float]]:
        """(row, top-1 token text, probability) through the layers at absolute `position`."""
        if position not in self.positions:
            raise KeyError(f"position {position} was not read (positions: {self.positions})")
        p = self.positions.index(position)
        ids, probs, texts = self.array("top_ids"), self.probabilities(), self.texts
        return [(r, texts[int(ids[i, p, 0])], float(probs[i, p, 0])) for i, r in enumerate(self.rows)]

    @property
    def target(self) -> Optional[int]:
        t = int(self.attr("target"))
        return t if t >= 0 else None

    @property
    def baseline(self) -> Optional[int]:
        b = int(self.attr("baseline"))
        return b if b >= 0 else None

    def head_attribution(self, position: int) -> np.ndarray:
        """float64 [layer, head]: each head's direct contribution to the target's logit
        (difference) at absolute `position`."""
        if "dla" not in self.groups:
            raise KeyError("this lens has no attribution (run headlight lens with --target)")
        return self.groups["dla"].array("heads")[self.positions.index(position)]

    def attribution_total(self, position: int) -> Tuple[float, float]:
        """(sum of all components, the model's own logit difference) at `position`."""
        d = self.groups["dla"]
        p = self.positions.index(position)
        return float(d.array("total")[p]), float(d.array("logit_diff")[p])


def read_lens(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> Lens:
    lens = read_group(path, g, cls=Lens, analysis="lens")
    R, P, k = len(lens.rows), len(lens.positions), int(lens.attr("top"))
    for name, shape in (("top_ids", (R, P, k)), ("top_logits", (R, P, k)), ("log_normalizer", (R, P))):
        if lens.array(name).shape != shape:
            raise RunFileError(path, f"shape {lens.arrays[name].shape}, expected {shape}", key=f"{g.name}/{name}")
    if len(lens.array("token_ids")) != len(lens.array("token_texts")):
        raise RunFileError(path, "token_ids and token_texts differ in length", key=f"{g.name}/token_texts")
    return lens


# MARK: /needle_attention

@dataclass
class NeedleAttention(AnalysisGroup):
    """``/needle_attention`` of ``headlight report attention`` (tokens are the run's root tokens)."""
    tokens: Optional[np.ndarray] = None            # [pos]
    token_strings: Optional[List[str]] = None      # [pos]
    prompt_length: Optional[int] = None

    @property
    def heads(self) -> List[str]:
        """The head axis of ``weights``: "L.H", highest retrieval score first."""
        return list(self.attr("heads"))

    @property
    def weights(self) -> np.ndarray:
        """float32 [head, query, key]: row t is the pattern of query ``query_positions[t]``."""
        return self.array("weights")

    @property
    def query_positions(self) -> np.ndarray:
        return np.asarray(self.attr("query_positions"), dtype=np.int64)

    @property
    def span(self) -> Tuple[int, int]:
        """The needle's token span [start, end) (-1, -1 if not located)."""
        return int(self.attr("span_start")), int(self.attr("span_end"))

    @property
    def chosen_step(self) -> int:
        return int(self.attr("chosen_step"))

    @property
    def response(self) -> str:
        return str(self.attr("response"))

    def needle_mass(self) -> np.ndarray:
        """[head, query]: attention mass on the needle span at every answer step."""
        s, e = self.span
        if s < 0:
            return np.zeros(self.weights.shape[:2])
        return self.weights[:, :, s:e].sum(axis=-1)


def read_needle_attention(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> NeedleAttention:
    na = read_group(path, g, cls=NeedleAttention, analysis="needle_attention")
    w = na.weights
    if w.ndim != 3 or w.shape[0] != len(na.heads) or w.shape[1] != len(na.query_positions):
        raise RunFileError(path, f"weights shape {w.shape} does not match {len(na.heads)} heads x "
                           f"{len(na.query_positions)} query positions", key=f"{g.name}/weights")
    if f is not None and "tokens" in f:
        ds = require(path, f, "tokens")
        na.tokens = read_dataset(path, ds)
        na.prompt_length = read_attrs(path, ds, ds.name).get("prompt_length")
        if "token_strings" in f:
            na.token_strings = [str(s) for s in read_dataset(path, require(path, f, "token_strings")).tolist()]
    return na


# MARK: /query_heads

@dataclass
class QueryHeads(AnalysisGroup):
    """``/query_heads`` of ``headlight query-heads``: QRHead scores, the comparison with Wu et al.'s
    retrieval heads, and passage re-ranking metrics."""

    @property
    def qr_scores(self) -> np.ndarray:
        """float64 [layer, head]: mean calibrated gold-passage score over the detection items."""
        return self.array("qr_scores")

    @property
    def wu_scores(self) -> Optional[np.ndarray]:
        return self.arrays.get("wu_scores")

    @property
    def top_heads(self) -> List[str]:
        """The QRHead re-ranker's heads, "L.H", best first."""
        return _heads(self.array("top_heads"))

    @property
    def methods(self) -> List[str]:
        return list(self.attr("methods"))

    @property
    def items(self) -> Table:
        return self.tables["items"]

    @property
    def passages(self) -> Table:
        """One row per (item, passage): ``score_<method>``, ``head_score`` / ``head_mass`` [row, layer, head]."""
        return self.tables["passages"]

    def recall(self, method: str) -> np.ndarray:
        """Mean recall@k over the evaluation items, k = 1 ... passages."""
        return self.array("recall")[self.methods.index(method)]

    def ndcg(self, method: str) -> np.ndarray:
        return self.array("ndcg")[self.methods.index(method)]

    def mrr(self, method: str) -> float:
        return float(self.array("mrr")[self.methods.index(method)])

    @property
    def overlap(self) -> Optional[Table]:
        """With a retrieval-heads file: one row per N (``n``, ``overlap``, ``expected``)."""
        return self.tables.get("overlap")

    @property
    def overlap_ci(self) -> Optional[np.ndarray]:
        """float64 [n, 2]: 95% bootstrap bounds of each ``overlap`` row over the detection items (None in
        files written before the CIs)."""
        return self.arrays.get("overlap_ci")

    def correlation_ci(self, name: str) -> Optional[Tuple[float, float]]:
        """95% bootstrap CI of ``"spearman"`` or ``"kendall"`` (QRScore vs Wu et al.'s scores), if stored."""
        v = self.attrs.get(f"{name}_wu_ci")
        return None if v is None else (float(v[0]), float(v[1]))

    def gold_ranks(self, method: str, split: str = "eval") -> np.ndarray:
        """Expected 1-based rank of each `split` item's gold passage under `method` (ties: mean position)."""
        p, it = self.passages, self.items
        out = []
        for i in range(len(it)):
            if it["split"][i] != split:
                continue
            rows = np.flatnonzero(p["item"] == i)
            s = np.where(np.isfinite(p[f"score_{method}"][rows]), p[f"score_{method}"][rows], -np.inf)
            g = s[p["gold"][rows] == 1][0]
            out.append(1 + np.sum(s > g) + (np.sum(s == g) - 1) / 2)
        return np.asarray(out, dtype=np.float64)


def read_query_heads(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> QueryHeads:
    for t in ("items", "passages"):
        require(path, g, t, h5py.Group)
    tables = ("items", "passages", "overlap") if "overlap" in g else ("items", "passages")
    qh = read_group(path, g, tables=tables, cls=QueryHeads, analysis="query_heads")
    L, H = int(qh.attr("n_layers")), int(qh.attr("n_heads"))
    if qh.qr_scores.shape != (L, H):
        raise RunFileError(path, f"shape {qh.qr_scores.shape}, expected {(L, H)}", key=f"{g.name}/qr_scores")
    m = len(qh.methods)
    for name in ("recall", "ndcg"):
        if qh.array(name).ndim != 2 or qh.array(name).shape[0] != m:
            raise RunFileError(path, f"shape {qh.array(name).shape}, expected ({m}, k)", key=f"{g.name}/{name}")
    if qh.overlap_ci is not None and qh.overlap is not None and qh.overlap_ci.shape != (len(qh.overlap), 2):
        raise RunFileError(path, f"shape {qh.overlap_ci.shape}, expected ({len(qh.overlap)}, 2)",
                           key=f"{g.name}/overlap_ci")
    return qh


# MARK: /sparsity_profile

@dataclass
class SparsityProfile(AnalysisGroup):
    """``/sparsity_profile`` of ``headlight profile``: per-head attention sparsity vs context length."""

    @property
    def lengths(self) -> List[int]:
        return [int(x) for x in self.attr("lengths")]

    @property
    def ks(self) -> List[int]:
        return [int(x) for x in self.attr("ks")]

    def topk_share(self, k: int, length: Optional[int] = None) -> np.ndarray:
        """float64 [layer, head]: the top-`k` share at `length` tokens (default: the longest); every
        length and k: ``array("topk_share")`` [length, k, layer, head]."""
        li = self.lengths.index(length) if length is not None else len(self.lengths) - 1
        return self.array("topk_share")[li, self.ks.index(k)]

    def median_over_heads(self, name: str) -> np.ndarray:
        """Head medians of a [length, ..., layer, head] dataset: shape [length, ...]."""
        a = self.array(name)
        return np.nanmedian(a.reshape(a.shape[:-2] + (-1,)), axis=-1)

    def bounds(self, name: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """The 95% bootstrap bounds over the samples of dataset `name` (same shape; NaN with one
        sample), or None in files written before the CIs."""
        lo, hi = self.arrays.get(f"{name}_lower"), self.arrays.get(f"{name}_upper")
        return None if lo is None or hi is None else (lo, hi)

    @property
    def median_head(self) -> Optional[Tuple[np.ndarray, List[str]]]:
        """float64 [length, series, 3] (median over heads, lower, upper) and the series names, or None."""
        a = self.arrays.get("median_head")
        return None if a is None else (a, [str(x) for x in self.array_attrs["median_head"]["series"]])


def read_sparsity_profile(path: str, g: h5py.Group, f: Optional[h5py.File] = None) -> SparsityProfile:
    sp = read_group(path, g, cls=SparsityProfile, analysis="sparsity_profile")
    L, H, n = int(sp.attr("n_layers")), int(sp.attr("n_heads")), len(sp.lengths)
    expected = {"topk_share": (n, len(sp.ks), L, H), "entropy": (n, L, H), "normalized_entropy": (n, L, H),
                "sink_mass": (n, len(sp.attr("sink_sizes")), L, H),
                "streaming_mass": (n, len(sp.attr("windows")), L, H)}
    for name, shape in expected.items():
        if sp.array(name).shape != shape:
            raise RunFileError(path, f"shape {sp.array(name).shape}, expected {shape}", key=f"{g.name}/{name}")
        for bound in ("_lower", "_upper"):
            b = sp.arrays.get(name + bound)
            if b is not None and b.shape != shape:
                raise RunFileError(path, f"shape {b.shape}, expected {shape}", key=f"{g.name}/{name}{bound}")
    return sp
