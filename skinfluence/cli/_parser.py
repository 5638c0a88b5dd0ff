"""The argparse parser of the ``skinfluence`` command line."""

import argparse
import textwrap

from ._commands import (
    CLEAN_METHODS,
    MODELS,
    VALUE_METHODS,
    cmd_explain,
    cmd_label_issues,
    cmd_value,
)
from ._columns import MAX_CLASSES_AUTO
from ._demo import cmd_demo

__all__ = ["build_parser"]

_DESCRIPTION = """\
skinfluence: which training rows made my model do this, and what is each row worth?

Start with `skinfluence demo`, then try it on your own CSV:

  skinfluence label-issues data.csv --target label --output ranked.csv
  skinfluence explain data.csv --target label --row 17
  skinfluence value data.csv --target label

Feature columns may hold numbers or text categories; columns that identify rows
(a different text in every row, or a row counter) are kept in the output but
not used as features.  Rows are numbered from 0, header not counted.
"""

_EPILOG = """\
exit codes: 0 success, 2 bad usage or unusable data (the message says why),
1 unexpected failure (rerun with --debug for the traceback).
"""


def _add_data_arguments(p):
    p.add_argument("data", metavar="DATA.csv",
                   help="CSV file with a header row ('-' for stdin), or a Parquet file "
                   "(.parquet, .pq; needs pyarrow)")
    p.add_argument("--target", "-t", required=True, metavar="COLUMN",
                   help="name of the label column")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="whether the target holds class labels or numbers to predict "
                   "(default: auto: text and whole numbers with at most "
                   f"{MAX_CLASSES_AUTO} distinct values are labels, other numbers are "
                   "predicted by regression; the first lines say what was decided and why)")
    p.add_argument("--model", "-m", default=None, choices=list(MODELS), metavar="NAME",
                   help="model to fit (default: logistic for classification, ridge for "
                   "regression); " + "; ".join(f"{k}: {v}" for k, v in MODELS.items()))
    p.add_argument("--alpha", type=_pos_float, metavar="A",
                   help="penalty of --model ridge (default: the value with the smallest exact "
                   "leave-one-out error), kernel-ridge (default: 1) or lasso (regression: "
                   "LassoCV's by default; labels: C = 1 / alpha, default 1)")
    p.add_argument("--output", "-o", metavar="OUT.csv",
                   help="write the full result as CSV ('-' for stdout)")
    p.add_argument("--id-columns", metavar="A,B", help="columns to pass through, not features")
    p.add_argument("--categorical", metavar="A,B",
                   help="columns to treat as categories even if they hold numbers")
    p.add_argument("--numeric", metavar="A,B",
                   help="columns to use as numbers even if they look like identifiers")
    p.add_argument("--ignore", metavar="A,B", help="columns not to use as features")
    p.add_argument("--delimiter", "--sep", type=_separator, metavar="CHAR",
                   help="field separator of a CSV file: one character, or 'tab' (default: guessed)")
    p.add_argument("--decimal", choices=[".", ","], metavar="MARK",
                   help="decimal mark of the numbers, '.' or ',' (default: ',' only in a file "
                   "not separated by commas whose numbers are written like 0,25)")
    p.add_argument("--show", type=_nonneg_int, default=10, metavar="N",
                   help="rows to print (default: 10)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also save a picture of the result (needs matplotlib)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed for models that use randomness (default: 0)")


def _separator(text):
    if text.lower() in ("tab", "\\t"):
        return "\t"
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"expected one character or 'tab', got {text!r}")
    return text


def _nonneg_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number of threads >= 1, or -1 for all "
                                         "cores; got 0")
    return value


def _pos_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _pos_int(text):
    value = _nonneg_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


def build_parser():
    """The argparse parser (exposed for documentation and tests)."""
    from skinfluence import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="only print results")
    common.add_argument("--verbose", "-v", action="store_true",
                        help="say how every column is used")
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback of unexpected errors")
    common.add_argument("--n-jobs", "-j", type=_n_jobs, default=-1, metavar="N",
                        help="threads for influence, leave-one-out cleaning and value "
                        "--method influence (default -1: every core; the numbers do not "
                        "depend on it)")

    parser = argparse.ArgumentParser(
        prog="skinfluence",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skinfluence {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub, common)
    _add_label_issues(sub, common)
    _add_explain(sub, common)
    _add_value(sub, common)
    return parser


def _add_demo(sub, common):
    p = sub.add_parser(
        "demo", parents=[common], help="a one-minute tour on bundled data",
        description="Flip 10%% of the labels of scikit-learn's handwritten digits, then find "
        "them, explain a prediction through its training rows, and rank rows by data value.",
    )
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed for the label flips (default: 0)")
    p.set_defaults(func=cmd_demo)


def _add_method_command(sub, common, name, summary, description, methods, width, example):
    """A data command whose epilog lists its ``--method`` choices."""
    epilog = ("methods:\n" + "\n".join(f"  {k:{width}s} {v}" for k, v in methods.items())
              + f"\n\nexample: {example}")
    p = sub.add_parser(name, parents=[common], help=summary,
                       description=textwrap.fill(description, 79), epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(p)
    return p


def _add_label_issues(sub, common):
    p = _add_method_command(
        sub, common, "label-issues", "rank rows by how likely their label is wrong",
        "Fit the model, score every row's label (or, for a numeric target, its value) with "
        "influence functions and write the rows ranked by suspicion: all original columns "
        "plus row, score, given_label, suggested_label and issue.",
        CLEAN_METHODS, 15, "skinfluence label-issues data.csv --target label -o ranked.csv",
    )
    p.add_argument("--method", default=None, choices=list(CLEAN_METHODS), metavar="NAME",
                   help="how labels are scored (default: loo; see below)")
    _add_dask_arguments(p)
    p.set_defaults(func=cmd_label_issues)


def _add_explain(sub, common):
    p = sub.add_parser(
        "explain", parents=[common], help="training rows that most help / hurt one prediction",
        description="Fit the model on all rows, then list the training rows whose removal "
        "would most change the loss on row N (influence functions).",
        epilog="example: skinfluence explain data.csv --target label --row 17 -k 5",
    )
    _add_data_arguments(p)
    p.add_argument("--row", "-r", type=int, required=True, metavar="N",
                   help="row to explain, counting data rows from 0 (header not counted)")
    p.add_argument("-k", type=_pos_int, default=5, metavar="K",
                   help="number of helpful and of harmful rows (default: 5)")
    p.add_argument("--against", choices=["prediction", "label"], default="prediction",
                   help="explain the predicted label (default) or the given label")
    _add_deprecated_regression(p)
    p.set_defaults(func=cmd_explain)


def _add_value(sub, common):
    p = _add_method_command(
        sub, common, "value", "how much each row is worth to the model",
        "Compute a data value for every row (higher = more helpful) and write the rows "
        "least valuable first.",
        VALUE_METHODS, 12, "skinfluence value data.csv --target label --output values.csv",
    )
    p.add_argument("--method", default="knn-shapley", choices=list(VALUE_METHODS),
                   metavar="NAME", help="valuation method (default: knn-shapley; see below)")
    p.add_argument("--validation", metavar="VAL.csv",
                   help="trusted rows with the same columns to score the model on "
                   "(needed by loo, tmc-shapley and influence; optional for knn-shapley)")
    p.add_argument("--n-neighbors", type=_pos_int, default=5, metavar="K",
                   help="neighbours for knn-shapley (default: 5)")
    _add_dask_arguments(p)
    _add_deprecated_regression(p)
    p.set_defaults(func=cmd_value)


def _add_dask_arguments(p):
    from ._dask import DEFAULT_SAMPLE

    g = p.add_argument_group(
        "files larger than memory",
        "read DATA (Parquet, or CSV) with dask partition by partition; the column roles, "
        "preprocessing and model are fitted on the first --sample rows, the scores "
        "computed on every row on the dask cluster, and --output written when complete")
    g.add_argument("--dask", action="store_true",
                   help="use dask, on a local cluster of this machine's cores unless "
                   "--scheduler is given")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask.distributed scheduler to run on, e.g. tcp://host:8786 "
                   "(implies --dask)")
    g.add_argument("--sample", type=_pos_int, default=DEFAULT_SAMPLE, metavar="N",
                   help=f"rows the model is fitted on with --dask (default: {DEFAULT_SAMPLE})")


def _add_deprecated_regression(p):
    # deprecated in 0.2: the spelling of `--task regression` before the task was inferred
    p.add_argument("--regression", action="store_true", help=argparse.SUPPRESS)
