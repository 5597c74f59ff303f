"""headlight: read Headlight run files (HDF5, docs/run-file.md) as numpy, and call the CLI.

    import headlight
    run = headlight.open("trace.h5")
    pat = run.cache["blocks.3.attn.hook_pattern"]     # Capture: .values, .axes, .heads, .queries
    run.tokens, run.token_strings, run.meta

    run = headlight.trace(None, "The cat sat on the mat", hooks="pattern", layers="3")
"""
from .analyses import (Ablation, AnalysisGroup, CausalGraph, Citation, Composition, KVPolicy, Membership,
                       MembershipMethod, NeedleAttention, QueryHeads, RetrievalHeads, SparsityProfile, rank_heads)
from .capture import Cache, Capture, Span
from .cli import find_binary, run_cli, trace, trace_args
from .errors import (HeadlightCommandError, HeadlightError, HeadlightNotFoundError, IncompleteRunError,
                     RunFileError)
from .run import Input, Run, open
from .tables import Table

__version__ = "0.1.0"

__all__ = [
    "Ablation", "AnalysisGroup", "Cache", "Capture", "CausalGraph", "Citation", "Composition",
    "HeadlightCommandError", "HeadlightError", "HeadlightNotFoundError", "IncompleteRunError", "Input",
    "KVPolicy", "Membership", "MembershipMethod", "NeedleAttention", "QueryHeads", "RetrievalHeads", "Run",
    "RunFileError", "Span", "SparsityProfile", "Table", "find_binary", "open", "rank_heads", "run_cli", "trace",
    "trace_args",
]
