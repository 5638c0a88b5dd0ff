"""The ``skinfluence`` command line.

Sub-commands::

    skinfluence demo                                    # end-to-end tour on bundled data
    skinfluence label-issues DATA.csv --target LABEL    # rows ranked by label suspicion
    skinfluence explain DATA.csv --target LABEL --row N # training rows behind row N's prediction
    skinfluence value DATA.csv --target LABEL           # per-row data values

``DATA`` is a CSV file or a Parquet file.  Exit codes: 0 success, 2 bad usage
or unusable input (message on stderr, no traceback), 1 unexpected failure.

The task (classification or regression) is inferred from the target and printed
on the first lines; ``--task`` overrides it.

The package is laid out as: ``_parser`` (the argparse parser), ``_commands``
(the three data commands), ``_models`` (the estimators of ``--model``),
``_demo``, ``_render`` (messages, text tables, CSV output), ``_tabular``
(reading CSV, Parquet and DataFrames into strings) and ``_columns`` (column
roles, the task and the feature matrix).
"""

import sys
import warnings

from ._columns import load_table
from ._commands import explain_row, make_model, rank_label_issues, value_rows  # noqa: F401
from ._demo import run_demo  # noqa: F401
from ._parser import build_parser
from ._render import UsageError, check_writable
from ._tabular import DataError

__all__ = ["main", "load_table"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # Library warnings (e.g. damping added to a Hessian) matter to users, but the
    # source line they come from does not.
    print(f"skinfluence: warning: {message}", file=sys.stderr, flush=True)


def _check_outputs(args):
    """Fail before the work, not after it, when an output cannot be written."""
    check_writable(getattr(args, "output", None))
    check_writable(getattr(args, "plot", None), "save the plot to")
    if getattr(args, "plot", None):
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError("--plot needs matplotlib: pip install 'skinfluence[plot]'.")


def _kernel_key(args):
    if args.command == "demo":
        return None
    return f"cli-{args.command}-{getattr(args, 'model', None) or 'default'}-" \
           f"{getattr(args, 'method', None) or 'default'}"


def _first_run_note(args, key):
    """Say why the first run of a command is slow: numba compiles its kernels once."""
    from .._numba import cache_dir, first_use

    if key is None or getattr(args, "quiet", False) or not first_use(key):
        return
    print(f"note: the first run of this command and model compiles its numerical kernels "
          f"(up to a minute);\n      they are cached in {cache_dir()} and later runs start "
          f"at once.", file=sys.stderr, flush=True)


def main(argv=None):
    """Run the command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    code : int
        0 on success, 2 for bad usage or unusable data, 1 for unexpected failures.

    Examples
    --------
    >>> from skinfluence.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    skinfluence 0.1.0.dev0
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # Messages and tables must not crash on a terminal that cannot show a cell's
    # characters; CSV data on stdout (--output -) stays strict.
    streams = [sys.stderr] + ([sys.stdout] if getattr(args, "output", None) != "-" else [])
    for stream in streams:
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        _check_outputs(args)
        key = _kernel_key(args)
        _first_run_note(args, key)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = args.func(args)
        if code in (None, EXIT_OK) and key is not None:
            from .._numba import mark_used

            mark_used(key)
        return code
    except (UsageError, DataError) as exc:
        print(f"skinfluence {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `skinfluence value ... -o - | head`
        return EXIT_OK
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        print(f"skinfluence {args.command}: unexpected error: {type(exc).__name__}: {exc}\n"
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
