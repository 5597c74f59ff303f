"""`open()` and `Run`: a Headlight run file (docs/run-file.md) as numpy and plain Python."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, Iterator, List, Optional

import h5py
import numpy as np

from . import analyses
from ._h5 import guard, open_file, read_attrs, read_dataset, require, require_attr
from .capture import Cache
from .errors import HeadlightError, IncompleteRunError, RunFileError

FORMAT = "headlight-run"
FORMAT_VERSIONS = (1,)

#: Root `command` -> the analysis group a finished file of that command must have.
COMMAND_GROUPS = {
    "retrieval-heads": "retrieval_heads",
    "ablate": "ablation",
    "kv-policy": "kv_policy",
    "cite": "citation",
    "membership": "membership",
    "report composition": "composition",
    "report attention": "needle_attention",
    "lens": "lens",
    "query-heads": "query_heads",
    "profile": "sparsity_profile",
}


def open(path: "os.PathLike[str] | str", allow_incomplete: bool = False) -> "Run":  # noqa: A001 - mirrors h5py/io
    """Opens a run file and checks it: HDF5, ``format = "headlight-run"``, a known
    ``format_version``, ``complete = 1`` (unless `allow_incomplete`), and the groups its command
    writes. Raises `RunFileError` (`IncompleteRunError` for an unfinished file) otherwise.

    `allow_incomplete` opens the ``<output>.partial`` of a stopped sweep (or a ``.tmp-<pid>``
    leftover) for inspection: record tables are cut to their shortest column, summaries that
    were not written yet read as None. Such files are opened without HDF5 file locking, so a
    sweep still writing them does not block the reader.
    """
    return Run(os.fspath(path), allow_incomplete=allow_incomplete)


class Input:
    """Tokens and captures of one input: the run's root, or one ``/inputs/<name>`` group."""

    def __init__(self, run: "Run", prefix: str, name: Optional[str]):
        self._run = run
        self._prefix = prefix.rstrip("/")           # "" for the root, "/inputs/<name>" otherwise
        self.name = name
        self._tokens: Optional[np.ndarray] = None
        self._token_strings: Optional[List[str]] = None
        self._token_attrs: Optional[Dict[str, Any]] = None
        self._cache: Optional[Cache] = None

    def _key(self, name: str) -> str:
        return f"{self._prefix}/{name}"

    @property
    def path(self) -> str:
        return self._run.path

    @property
    def attrs(self) -> Dict[str, Any]:
        """Attributes of the input's group: for a batch prompt ``index`` (0-based, in the prompts
        file's order), ``line`` (1-based line of the prompts file) and ``complete`` (1 once written)."""
        if not self._prefix:
            return {}
        with self._run._file() as f:
            return read_attrs(self.path, f[self._prefix], self._prefix)

    @property
    def complete(self) -> bool:
        """True when this input was written in full (a batch prompt of an interrupted
        ``trace --prompts`` may not be; the root input of a finished file always is)."""
        if not self._prefix:
            return self._run.meta.get("complete") == 1
        return self.attrs.get("complete") == 1

    def __repr__(self) -> str:
        n = "?" if self.tokens is None else len(self.tokens)
        state = "" if self.complete else " INCOMPLETE"
        return f"<headlight.Input {self.name or '(root)'}: {n} tokens, {len(self.cache)} captures{state}>"

    def _load_tokens(self) -> None:
        if self._tokens is not None or self._token_attrs is not None:
            return
        with self._run._file() as f:
            if self._key("tokens") not in f:
                self._token_attrs = {}
                return
            ds = require(self.path, f[self._prefix or "/"], "tokens")
            self._tokens = read_dataset(self.path, ds).astype(np.int32)
            self._token_attrs = read_attrs(self.path, ds, ds.name)
            if self._key("token_strings") in f:
                strings = require(self.path, f[self._prefix or "/"], "token_strings")
                self._token_strings = [str(s) for s in read_dataset(self.path, strings).tolist()]
        if self._token_strings is not None and len(self._token_strings) != len(self._tokens):
            raise RunFileError(self.path, f"{len(self._token_strings)} token strings for {len(self._tokens)} tokens",
                               key=self._key("token_strings"))

    @property
    def tokens(self) -> Optional[np.ndarray]:
        """int32 ``[pos]``: token ids (prompt, then generated tokens); None if the file has none."""
        self._load_tokens()
        return self._tokens

    @property
    def token_strings(self) -> Optional[List[str]]:
        """Each token's text (``[pos]``), or None."""
        self._load_tokens()
        return self._token_strings

    @property
    def token_attrs(self) -> Dict[str, Any]:
        """Attributes of ``tokens``: ``prompt``, ``prompt_length``, ``generated``, ``chat``..."""
        self._load_tokens()
        return dict(self._token_attrs or {})

    @property
    def prompt(self) -> Optional[str]:
        return self.token_attrs.get("prompt")

    @property
    def prompt_length(self) -> Optional[int]:
        return self.token_attrs.get("prompt_length")

    @property
    def generated_text(self) -> Optional[str]:
        return self.token_attrs.get("generated_text")

    @property
    def cache(self) -> Cache:
        """Hook name -> `Capture` (TransformerLens' ``run_with_cache`` cache, without batch axis)."""
        if self._cache is None:
            gpath = self._key("captures")
            with self._run._file() as f:
                group = f[gpath] if gpath in f else None
                if group is not None and not isinstance(group, h5py.Group):
                    raise RunFileError(self.path, "is not a group", key=gpath)
                names = Cache.hook_names(self.path, group)
            self._cache = Cache(self.path, gpath, names, self._run._file)
        return self._cache

    @property
    def captures_attrs(self) -> Dict[str, Any]:
        """Attributes of the captures group: ``hooks_requested``, ``query_selection``, ``interventions``..."""
        gpath = self._key("captures")
        with self._run._file() as f:
            if gpath not in f:
                return {}
            return read_attrs(self.path, f[gpath], gpath)


class Run(Input):
    """A Headlight run file. Root attributes are in ``meta``; the root input's tokens and
    captures are ``tokens``, ``token_strings``, ``cache``; several inputs, if written, are in
    ``inputs``; analysis groups are read by ``retrieval_heads``, ``ablation``, ``kv_policy``, ``citation``,
    ``membership``, ``composition``, ``needle_attention`` and ``lens`` (None when the file has no such group).

    The file is opened for each read and closed again, so a Run holds no HDF5 handle.
    """

    def __init__(self, path: str, allow_incomplete: bool = False):
        self.path_ = path
        self.allow_incomplete = allow_incomplete
        super().__init__(self, "", None)
        self._temp_owner: Any = None             # keeps a trace() temporary directory alive
        self.cli_stderr: Optional[str] = None    # trace(): what the CLI printed on stderr
        self._analysis_cache: Dict[str, Any] = {}
        with self._file() as f:
            self.meta: Dict[str, Any] = read_attrs(path, f["/"], "/")
            self._check_header()
            with guard(path, "/"):
                self.groups: List[str] = [k for k, v in f.items() if isinstance(v, h5py.Group)]
            input_names = self._input_names(f)
            self._check_structure(f)
            self._walk(f)
        #: name -> Input, in the order of the prompts file (``/inputs@names``) for a batch
        self.inputs: Dict[str, Input] = {n: Input(self, f"/inputs/{n}", n) for n in input_names}

    def _input_names(self, f: h5py.File) -> List[str]:
        """Names of the ``/inputs`` members: in ``/inputs@names`` order when the attribute is
        there (``trace --prompts``; a finished file has every listed group and no other, an
        interrupted one the listed groups written so far), else sorted."""
        if "inputs" not in f:
            return []
        g = require(self.path_, f, "inputs", h5py.Group)
        with guard(self.path_, "/inputs"):
            present = list(g.keys())
        if "names" not in g.attrs:
            return sorted(present)
        listed = require_attr(self.path_, g, "names")
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise RunFileError(self.path_, "is not a list of strings", key="/inputs@names")
        if len(set(listed)) != len(listed):
            raise RunFileError(self.path_, "lists a name twice", key="/inputs@names")
        extra = sorted(set(present) - set(listed))
        if extra:
            raise RunFileError(self.path_, f"group {extra[0]!r} is not listed in /inputs@names",
                               key=f"/inputs/{extra[0]}")
        missing = [n for n in listed if n not in present]
        if missing and self.meta.get("complete") == 1:
            raise RunFileError(self.path_, f"missing (listed in /inputs@names; {len(missing)} of {len(listed)} "
                               "prompts absent)", key=f"/inputs/{missing[0]}",
                               hint="the file was altered after `headlight trace --prompts` wrote it")
        return [n for n in listed if n in present]

    @property
    def is_batch(self) -> bool:
        """True for a file with several inputs (``trace --prompts``: ``/inputs/<name>``)."""
        return bool(self.inputs)

    @property
    def prompts(self) -> List[Input]:
        """The inputs of a batch file in the prompts file's order (``for p in run.prompts:
        p.cache[...]``); ``[run]`` for a single-prompt file, so the same loop reads both."""
        return list(self.inputs.values()) if self.inputs else [self]

    def input(self, name: str) -> Input:
        """The batch prompt called `name` (KeyError naming the prompts there are)."""
        if name not in self.inputs:
            names = list(self.inputs)
            listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise KeyError(f"no input {name!r} in {self.path_} ({len(names)} inputs: {listed or 'none'})")
        return self.inputs[name]

    @property
    def cache(self) -> Cache:
        """The root input's captures. A batch file has none at its root: use ``run.prompts`` or
        ``run.input(name).cache``."""
        if self.inputs and self._key("captures") not in self._names_at_root():
            raise HeadlightError(f"{self.path_} is a batch of {len(self.inputs)} prompts ({', '.join(list(self.inputs)[:3])}"
                                 f"{', ...' if len(self.inputs) > 3 else ''}): its captures are per prompt, e.g. "
                                 f"run.input({next(iter(self.inputs))!r}).cache or `for p in run.prompts: p.cache[...]`")
        return super().cache

    def _names_at_root(self) -> List[str]:
        with self._file() as f:
            return ["/" + k for k in f.keys()]

    @property
    def path(self) -> str:
        return self.path_

    @contextlib.contextmanager
    def _file(self) -> Iterator[h5py.File]:
        f = open_file(self.path_, locking=not self.allow_incomplete)
        try:
            yield f
        finally:
            f.close()

    def _check_header(self) -> None:
        m, path = self.meta, self.path_
        if "format" not in m:
            raise RunFileError(path, "missing root attribute 'format': not a Headlight run file", key="/@format")
        if m["format"] != FORMAT:
            raise RunFileError(path, f"format is {m['format']!r}, not {FORMAT!r}: not a Headlight run file",
                               key="/@format")
        if "format_version" not in m:
            raise RunFileError(path, "missing root attribute 'format_version'", key="/@format_version")
        if m["format_version"] not in FORMAT_VERSIONS:
            raise RunFileError(path, f"format_version {m['format_version']} is not supported (this reader knows "
                               f"{', '.join(map(str, FORMAT_VERSIONS))})", key="/@format_version",
                               hint="upgrade the headlight Python package")
        if "complete" not in m:
            raise RunFileError(path, "missing root attribute 'complete'", key="/@complete")
        if m["complete"] != 1 and not self.allow_incomplete:
            cmd = m.get("command", "the command")
            raise IncompleteRunError(path, f"incomplete run file (complete = {m['complete']}): left by an interrupted "
                                     f"or still-running `headlight {cmd}`", key="/@complete",
                                     hint="rerun the same command to resume or redo it, or "
                                          "headlight.open(path, allow_incomplete=True) to inspect what it holds")

    def _check_structure(self, f: h5py.File) -> None:
        """The groups and datasets the file's command always writes (when finished)."""
        cmd = self.meta.get("command")
        if cmd is None:
            raise RunFileError(self.path_, "missing root attribute 'command'", key="/@command")
        group = COMMAND_GROUPS.get(cmd)
        if group is not None:
            require(self.path_, f, group, h5py.Group, what=f"the group `headlight {cmd}` writes")
        if cmd not in ("trace", "report attention") or not self.complete:
            return
        inputs = [f["/"]]
        if "inputs" in f:                           # several inputs: each has the layout of the root
            g = require(self.path_, f, "inputs", h5py.Group)
            inputs = [require(self.path_, g, n, h5py.Group) for n in self._input_names(f)]
        for parent in inputs:
            require(self.path_, parent, "tokens", what="token ids of the prompt")
            require(self.path_, parent, "token_strings", what="text of each token")
            if cmd == "trace":
                require(self.path_, parent, "captures", h5py.Group, what="the captured hooks")

    def _walk(self, f: h5py.File) -> None:
        """Opens every object and reads its attribute names, group by group, so that a damaged
        object header fails here with the object's name (link names live in the parent)."""
        def walk(group: h5py.Group) -> None:
            with guard(self.path_, group.name):
                names = list(group.keys())
            for name in names:
                key = f"{group.name.rstrip('/')}/{name}"
                with guard(self.path_, key):
                    obj = group[name]
                    list(obj.attrs.keys())
                    if isinstance(obj, h5py.Dataset):
                        _ = obj.shape, obj.dtype
                if isinstance(obj, h5py.Group):
                    walk(obj)
        walk(f["/"])

    # summary
    @property
    def complete(self) -> bool:
        return self.meta.get("complete") == 1

    @property
    def command(self) -> Optional[str]:
        return self.meta.get("command")

    @property
    def command_line(self) -> List[str]:
        return list(self.meta.get("command_line", []))

    @property
    def model(self) -> Optional[str]:
        """GGUF ``general.name`` if present, else the model file's name."""
        return self.meta.get("model_name") or self.meta.get("model_file")

    @property
    def sha256(self) -> Optional[str]:
        return self.meta.get("model_sha256")

    @property
    def config(self) -> Dict[str, int]:
        """Model dimensions named as TransformerLens' HookedTransformerConfig."""
        keys = ("n_layers", "n_heads", "n_key_value_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx")
        return {k: self.meta[k] for k in keys if k in self.meta}

    def iter_inputs(self) -> Iterator[Input]:
        """Every input: the ``/inputs/<name>`` groups if the file has them, else the root."""
        if self.inputs:
            yield from self.inputs.values()
        else:
            yield self

    def __iter__(self) -> Iterator[Input]:
        return self.iter_inputs()

    def verify(self) -> "Run":
        """Reads every dataset in full (catches corrupted data chunks, which opening does not
        read); returns self, or raises RunFileError naming the first unreadable dataset."""
        with self._file() as f:
            names: List[str] = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            for n in names:
                read_dataset(self.path_, f[n])
        return self

    # analyses
    def _analysis(self, group: str, reader: Any) -> Any:
        if group not in self.groups:
            return None
        if group not in self._analysis_cache:
            with self._file() as f:
                self._analysis_cache[group] = reader(self.path_, f[group], f)
        return self._analysis_cache[group]

    @property
    def retrieval_heads(self) -> Optional["analyses.RetrievalHeads"]:
        return self._analysis("retrieval_heads", analyses.read_retrieval_heads)

    @property
    def ablation(self) -> Optional["analyses.Ablation"]:
        return self._analysis("ablation", analyses.read_ablation)

    @property
    def kv_policy(self) -> Optional["analyses.KVPolicy"]:
        return self._analysis("kv_policy", analyses.read_kv_policy)

    @property
    def citation(self) -> Optional["analyses.Citation"]:
        return self._analysis("citation", analyses.read_citation)

    @property
    def membership(self) -> Optional["analyses.Membership"]:
        return self._analysis("membership", analyses.read_membership)

    @property
    def composition(self) -> Optional["analyses.Composition"]:
        return self._analysis("composition", analyses.read_composition)

    @property
    def needle_attention(self) -> Optional["analyses.NeedleAttention"]:
        return self._analysis("needle_attention", analyses.read_needle_attention)

    @property
    def lens(self) -> Optional["analyses.Lens"]:
        return self._analysis("lens", analyses.read_lens)

    @property
    def query_heads(self) -> Optional["analyses.QueryHeads"]:
        return self._analysis("query_heads", analyses.read_query_heads)

    @property
    def sparsity_profile(self) -> Optional["analyses.SparsityProfile"]:
        return self._analysis("sparsity_profile", analyses.read_sparsity_profile)

    def analysis(self) -> Any:
        """The analysis of this file's command (None for trace files)."""
        group = COMMAND_GROUPS.get(self.command or "")
        return getattr(self, group) if group else None

    def __repr__(self) -> str:
        state = "" if self.complete else " INCOMPLETE"
        return (f"<headlight.Run {os.path.basename(self.path_)}: {self.command} on {self.model}{state}, "
                f"groups {', '.join(self.groups) or '-'}>")

    def _repr_html_(self) -> str:
        from .html import run_html  # noqa: PLC0415 - only for notebooks
        return run_html(self)
