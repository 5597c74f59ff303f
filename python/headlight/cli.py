"""`trace()`: run ``headlight trace`` and open its run file (TransformerLens' ``run_with_cache`` habit)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import weakref
from typing import Any, Dict, List, Optional, Sequence, Union

from .errors import HeadlightCommandError, HeadlightNotFoundError
from .run import Run, open as open_run


def find_binary(binary: Optional[str] = None) -> str:
    """The ``headlight`` executable: `binary` if given, else ``$HEADLIGHT_BIN``, else ``headlight``
    on ``PATH``. Raises HeadlightNotFoundError naming what was tried."""
    tried = []
    for source, candidate in (("binary=", binary), ("$HEADLIGHT_BIN", os.environ.get("HEADLIGHT_BIN"))):
        if candidate:
            path = shutil.which(candidate) if os.sep not in candidate else candidate
            if path and os.path.isfile(path) and os.access(path, os.X_OK):
                return path
            raise HeadlightNotFoundError(f"{source} {candidate!r} is not an executable file")
        tried.append(source)
    found = shutil.which("headlight")
    if found:
        return found
    raise HeadlightNotFoundError("the headlight binary was not found (no binary=, no $HEADLIGHT_BIN, not on PATH)"
                                 "; build it with `swift build -c release --product headlight` and set "
                                 "HEADLIGHT_BIN=.build/release/headlight")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def trace_args(prompt: Optional[str], hooks: Union[str, Sequence[str], None], output: str, model: Optional[str] = None,
               **opts: Any) -> List[str]:
    """The ``headlight trace`` arguments (without the binary) for these options.

    Options map to flags by name (``top_k=5`` -> ``--top-k 5``): True adds a bare flag, False and
    None omit it, a list/tuple is joined with commas (``spans`` is repeated instead, since span
    texts may contain commas), other values are passed as text.
    """
    args = ["trace"]
    if model is not None:
        args += ["-m", os.fspath(model)]
    if prompt is not None:
        args += ["--prompt", prompt]
    if hooks is not None:
        args += ["--hooks", hooks if isinstance(hooks, str) else ",".join(hooks)]
    for key, value in opts.items():
        if value is None or value is False:
            continue
        flag = _flag(key)
        if value is True:
            args.append(flag)
        elif key == "spans":
            items = [value] if isinstance(value, str) else list(value)
            if isinstance(value, dict):
                items = [f"{k}={v}" for k, v in value.items()]
            for item in items:
                args += [flag, str(item)]
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    args += ["-o", output]
    return args


def run_cli(args: Sequence[str], binary: Optional[str] = None, timeout: Optional[float] = None,
            env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Runs ``headlight ARGS``; raises HeadlightCommandError (with the CLI's stderr) on failure."""
    exe = find_binary(binary)
    argv = [exe, *args]
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise HeadlightCommandError(argv, -1, f"timed out after {timeout} s\n{err}") from e
    if proc.returncode != 0:
        raise HeadlightCommandError(argv, proc.returncode, proc.stderr)
    return proc


def trace(model: Optional[str], prompt: Optional[str], hooks: Union[str, Sequence[str], None] = None, *,
          output: Optional[str] = None, binary: Optional[str] = None, timeout: Optional[float] = None,
          **opts: Any) -> Run:
    """Runs ``headlight trace`` on `prompt` and returns the opened `Run`.

    `model` is a .gguf path (None: the CLI's default model, ``$HEADLIGHT_MODEL`` or the cached
    SmolLM2). `hooks` is the ``--hooks`` list (names, short forms, globs). Other options are
    ``headlight trace`` flags by name: ``layers="0,5"``, ``heads=[0, 3]``, ``queries="last:4"``,
    ``top_k=5``, ``spans={"needle": "Chaoyang Park"}``, ``generate=8``, ``float16=True``,
    ``ablate="3.4:zero"``, ``prompt_file=...``, ``chat=True``...

    Without `output`, the file goes to a temporary directory removed when the Run is garbage
    collected. A failing CLI raises HeadlightCommandError carrying its stderr.
    """
    if output is None:
        tmpdir = tempfile.mkdtemp(prefix="headlight-trace-")
        out_path = os.path.join(tmpdir, "trace.h5")
    else:
        tmpdir = None
        out_path = os.fspath(output)
    try:
        proc = run_cli(trace_args(prompt, hooks, out_path, model=model, **opts),
                       binary=binary, timeout=timeout)
        run = open_run(out_path)
    except BaseException:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    run.cli_stderr = proc.stderr
    if tmpdir is not None:
        run._temp_owner = weakref.finalize(run, shutil.rmtree, tmpdir, True)
    return run
