"""``--dask``: ``label-issues`` and ``value`` on files larger than memory, read by dask.

The file is read by ``dask.dataframe`` (Parquet, or CSV with every cell read as text, as
the in-memory reader does), partition by partition:

1. the first ``--sample`` rows are read into memory, where the column roles, the task,
   the preprocessing (imputation, scaling, one-hot) and the model are fitted exactly as
   the in-memory command does on the whole file (so on a file of at most ``--sample``
   rows the result is that of the in-memory command);
2. every partition is mapped to features and label codes with that preprocessing, as
   dask arrays with counted row blocks;
3. ``InfluenceCleaner(FrozenEstimator(model))`` (leave-one-out) or ``KNNShapley`` runs
   on them on the dask cluster (``--scheduler ADDRESS``, else a LocalCluster started
   for the command);
4. the scores come to the client (one number per row), the ranking is computed there,
   and the output is sorted by rank by dask (a shuffle) and written partition by
   partition to a temporary file next to ``--output``, renamed into place only when
   complete.
"""

import os

import numpy as np

from ._columns import _is_missing, _parse_floats, load_table, load_validation, target_values
from ._render import UsageError
from ._tabular import PARQUET_SUFFIXES, DataError, table_from_frame

__all__ = ["run_dask"]

DEFAULT_SAMPLE = 200_000


def _client(args, console):
    """A dask.distributed client: on ``--scheduler``, else on a LocalCluster of this
    machine's cores (closed with the command)."""
    import contextlib

    try:
        import dask.dataframe  # noqa: F401  (needs pandas and pyarrow)
        import distributed
    except ImportError as exc:
        raise UsageError(f"--dask needs dask[distributed] and pyarrow ({exc}): "
                         "pip install 'skinfluence[dask,parquet]'.") from None
    stack = contextlib.ExitStack()
    if args.scheduler:
        client = stack.enter_context(distributed.Client(args.scheduler, set_as_default=True))
        console.progress(f"dask: scheduler {args.scheduler}")
    else:
        cluster = stack.enter_context(distributed.LocalCluster(dashboard_address=None))
        client = stack.enter_context(distributed.Client(cluster, set_as_default=True))
        console.progress(f"dask: a local cluster of {len(cluster.workers)} worker(s)")
    return stack, client


def _read(args, blocksize="64MB"):
    import dask.dataframe as dd

    path = args.data
    if path == "-":
        raise UsageError("--dask reads a file, not standard input.")
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory.")
    if str(path).lower().endswith(PARQUET_SUFFIXES) or os.path.isdir(path):
        return dd.read_parquet(path)
    if args.decimal == ",":
        raise UsageError("--dask reads numbers with a decimal point; --decimal , is only "
                         "supported without --dask.")
    # every cell as text, as the in-memory reader: the column roles are decided on text
    return dd.read_csv(path, sep=args.delimiter or ",", dtype=str, keep_default_na=False,
                       na_filter=False, blocksize=blocksize)


def _feature_matrix(frame, plan):
    """:func:`~skinfluence.cli._columns.feature_matrix` of a partition, and a table of
    its target and text columns.  Numeric columns of a numeric type (Parquet) are taken
    as floats directly: the in-memory reader writes them as text and parses them back,
    which gives the same floats (Python's repr round-trips); only the other columns are
    written as text."""
    from pandas.api.types import is_float_dtype, is_integer_dtype

    names = {str(c).strip(): c for c in frame.columns}
    # float32 is not fast: its text reads back as a different float64
    fast = [c for c in plan.numeric if is_integer_dtype(frame[names[c]].dtype) or (
        is_float_dtype(frame[names[c]].dtype) and frame[names[c]].dtype.itemsize == 8)]
    text = [plan.target] + [c for c in plan.features if c not in fast]
    table = table_from_frame(frame[[names[c] for c in text]], "a partition")
    X = np.empty((len(frame), len(plan.features)), dtype=object)
    for j, name in enumerate(plan.numeric):
        if name in fast:
            values = frame[names[name]].to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.isinf(values)
        else:
            values, bad = _parse_floats(table.column(name), table.decimal)
        if bad.any() if bad.dtype == bool else len(bad):
            raise DataError(f"column {name!r} holds numbers in the sample but other values "
                            "(text or infinity) in later rows; fix those cells, or pass "
                            f"--categorical {name}.")
        X[:, j] = values
    offset = len(plan.numeric)
    for j, name in enumerate(plan.categorical):
        cells = table.column(name)
        X[:, offset + j] = np.where(_is_missing(cells), "(missing)", cells)
    return X, table


def _partition_arrays(frame, plan, task, classes, width):
    """Features and targets of one partition with the sample's preprocessing: label
    codes among the sample's ``classes`` (classification) or floats (regression)."""
    if len(frame) == 0:
        return np.empty((0, width)), np.empty(0, np.intp if task != "regression" else float)
    X, table = _feature_matrix(frame, plan)
    X = np.ascontiguousarray(plan.preprocessor.transform(X), dtype=np.float64)
    y = target_values(table, plan, task=task, check_classes=False)
    if task == "regression":
        return X, y
    labels = y.astype(str)
    codes = np.searchsorted(classes, labels)
    unseen = (codes >= len(classes)) | (classes[np.minimum(codes, len(classes) - 1)]
                                        != labels)
    if unseen.any():
        raise DataError(f"label {str(labels[unseen][0])!r} is not among the classes of the "
                        "sample the model was fitted on; raise --sample.")
    return X, codes


def _arrays(ddf, plan, task, classes, width):
    """``(X, y)`` dask arrays on the partitions, with counted row blocks."""
    import dask.array as da
    from dask import delayed

    from dask import compute

    # the partitions of to_delayed, counted: ddf.map_partitions(len) may count those of
    # another, optimised graph
    frames = ddf.to_delayed()
    lengths = [int(n) for n in compute(*[delayed(len)(p) for p in frames])]
    parts = [delayed(_partition_arrays, pure=True)(p, plan, task, classes, width)
             for p in frames]
    ydtype = np.float64 if task == "regression" else np.intp
    X = da.concatenate([da.from_delayed(p[0], (n, width), np.float64)
                        for p, n in zip(parts, lengths)])
    y = da.concatenate([da.from_delayed(p[1], (n,), ydtype) for p, n in zip(parts, lengths)])
    return X, y, frames, lengths


def _out_partition(frame, offset, rank, extra):
    """A partition of the output: its cells as read, the extra columns and the rank."""
    import pandas as pd

    if len(frame) == 0:
        return pd.DataFrame({**{c: [] for c in frame.columns}, **{c: [] for c in extra},
                             "__rank": []}).astype(object).astype({"__rank": np.int64})
    table = table_from_frame(frame, "a partition")
    out = pd.DataFrame(list(table.raw_rows()), columns=table.header, dtype=object)
    for name, cells in extra.items():
        out[name] = cells
    out = out.astype(object)  # text cells, as the meta says (pandas 3 would infer str)
    out["__rank"] = rank
    out.index = pd.RangeIndex(offset, offset + len(frame))
    return out


def _write_ranked(path, ddf, frames, lengths, rank, extra):
    """Write the rows in the order of ``rank`` (0 first) with the ``extra`` columns:
    sorted by dask, written partition by partition to a temporary file, renamed into
    place when complete (a failure leaves no partial output)."""
    import dask.dataframe as dd
    import pandas as pd
    from dask import delayed

    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    names = list(ddf.columns)
    meta = pd.DataFrame({**{c: pd.Series(dtype=object) for c in names},
                         **{c: pd.Series(dtype=object) for c in extra},
                         "__rank": pd.Series(dtype=np.int64)})
    part = delayed(_out_partition, pure=True)
    parts = [part(p, int(a), rank[a:b], {k: v[a:b] for k, v in extra.items()})
             for p, a, b in zip(frames, offsets[:-1], offsets[1:])]
    out = dd.from_delayed(parts, meta=meta).sort_values("__rank").drop(columns="__rank")
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.skinfluence-{os.getpid()}")
    try:
        out.to_csv(temporary, single_file=True, index=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _prepare(args, console, ddf):
    """The sample's table, plan, features and targets, as the in-memory command reads
    them (``load_table`` on the first ``--sample`` rows)."""
    from ._commands import _requested_task, _split_names

    task, reason = _requested_task(args)
    sample = ddf.head(args.sample, npartitions=-1)
    table, plan, X, y, notes = load_table(
        sample, args.target, task=task, id_columns=_split_names(args.id_columns),
        categorical=_split_names(args.categorical), numeric=_split_names(args.numeric),
        ignore=_split_names(args.ignore))
    if reason is not None:
        plan.task_reason = reason
    console.progress(f"sample: the first {table.n_rows} rows of {args.data} (--sample) decide "
                     f"the column roles, the preprocessing and the model; "
                     f"{len(plan.features)} feature column(s) -> {X.shape[1]} model input(s)")
    console.progress(f"task: {plan.task} ({plan.task_reason})")
    for text in notes:
        console.note(text + " (in the sample)")
    classes = None if plan.task == "regression" else np.unique(y.astype(str))
    return table, plan, X, y, classes


def run_dask(args, console, command):
    """``label-issues`` or ``value`` (``command``) with ``--dask`` / ``--scheduler``."""
    if args.output == "-":
        raise UsageError("--dask writes the ranked rows to a file: give --output FILE.csv.")
    if args.plot:
        raise UsageError("--plot is not available with --dask.")
    stack, client = _client(args, console)
    with stack:
        ddf = _read(args)
        table, plan, X, y, classes = _prepare(args, console, ddf)
        Xd, yd, frames, lengths = _arrays(ddf, plan, plan.task, classes, X.shape[1])
        n = int(sum(lengths))
        console.progress(f"read {n} rows in {len(lengths)} partition(s) of {args.data}")
        header = table.header
        if command == "label-issues":
            rank, extra, summary, shown = _label_issues(args, console, header, plan, X, y,
                                                        classes, Xd, yd)
        else:
            rank, extra, summary, shown = _value(args, console, header, plan, y, classes, Xd,
                                                 yd, n)
        console.say(summary)
        if args.show and args.output != "-":
            from ._render import format_table

            title, head, rows = shown
            console.say(f"\n{title}:")
            console.say(format_table(head, rows))
        if args.output:
            _write_ranked(args.output, ddf, frames, lengths, rank, extra)
            console.say(f"wrote all {n} rows ranked to {args.output}")
    return 0


def _ranks(order):
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.shape[0])
    return rank


def _label_issues(args, console, header, plan, X, y, classes, Xd, yd):
    from sklearn.frozen import FrozenEstimator

    from skinfluence.cleaning import InfluenceCleaner

    from ._commands import _check_class_sizes, _model
    from ._render import num, unique_names

    if plan.task == "regression":
        raise UsageError("label-issues --dask scores class labels (the leave-one-out path "
                         "of InfluenceCleaner on dask); a numeric target is scored without "
                         "--dask, or with --task classification as labels.")
    if args.method not in (None, "loo"):
        raise UsageError(f"label-issues --dask uses --method loo; got {args.method}.")
    _check_class_sizes(y, console)
    codes = np.searchsorted(classes, y.astype(str))
    model = _model(args, plan.task, X, codes, console)
    console.progress(f"fitting {type(model).__name__} on the sample of {X.shape[0]} rows ...")
    model.fit(X, codes)
    console.progress("scoring every label on the dask cluster ...")
    try:
        cleaner = InfluenceCleaner(FrozenEstimator(model)).fit(Xd, yd)
    except TypeError as exc:
        raise UsageError(f"{exc}\n--dask supports --model logistic and linear-svm.") from None
    scores = np.asarray(cleaner.scores_, dtype=np.float64)
    issues = np.asarray(cleaner.issues_, dtype=bool)
    suggested = classes[np.asarray(cleaner.suggested_labels_)]
    given = classes[np.asarray(yd.compute())]
    order = np.lexsort((np.arange(len(scores)), -scores))
    n_issues = int(issues.sum())
    summary = (f"{n_issues} of {len(scores)} rows ({100.0 * n_issues / len(scores):.1f}%) "
               "look mislabelled.")
    names = unique_names(header, ["row", "score", "given_label", "suggested_label",
                                  "issue"])
    extra = dict(zip(names, [np.arange(len(scores)).astype(str),
                             np.array([num(s) for s in scores], dtype=object),
                             given.astype(object), suggested.astype(object),
                             np.where(issues, "True", "False").astype(object)]))
    top = order[: args.show]
    shown = (f"most suspicious {len(top)} rows", ["row", "score", "given", "suggested",
                                                   "issue"],
             [[str(i), scores[i], given[i], suggested[i], "yes" if issues[i] else ""]
              for i in top])
    return _ranks(order), extra, summary, shown


def _value(args, console, header, plan, y, classes, Xd, yd, n):
    from skinfluence.valuation import KNNShapley

    from ._commands import _check_class_sizes
    from ._render import num, unique_names

    if args.method != "knn-shapley":
        raise UsageError(f"value --dask uses --method knn-shapley; got {args.method}.")
    if plan.task != "regression":
        _check_class_sizes(y, console)
    X_val = y_val = None
    if args.validation:
        _, X_val, y_val = load_validation(args.validation, plan, task=plan.task,
                                          delimiter=args.delimiter, decimal=args.decimal)
        if plan.task != "regression":
            y_val = y_val.astype(str)
            codes = np.searchsorted(classes, y_val)
            # a label unseen in training matches no training point: any other code
            known = (codes < len(classes)) & (classes[np.minimum(codes, len(classes) - 1)]
                                              == y_val)
            y_val = np.where(known, codes, -1)
    else:
        console.note("no --validation file: each row is valued on all the others, which "
                     "costs n^2 distances.")
    console.progress("valuing every row with knn-shapley on the dask cluster ...")
    knn = KNNShapley(n_neighbors=args.n_neighbors, task=plan.task)
    knn.fit(Xd, yd, X_val=X_val, y_val=y_val)
    values = np.asarray(knn.values_, dtype=np.float64)
    order = np.lexsort((np.arange(n), values))  # least valuable first
    summary = (f"valued {n} rows with knn-shapley (higher = more helpful); median "
               f"{np.median(values):.4g}, {int((values < 0).sum())} negative.")
    names = unique_names(header, ["row", "value", "rank"])
    rank = _ranks(order)
    extra = dict(zip(names, [np.arange(n).astype(str),
                             np.array([num(v) for v in values], dtype=object),
                             (rank + 1).astype(str)]))
    top = order[: args.show]
    shown = (f"least valuable {len(top)} rows", ["row", "value"],
             [[str(i), values[i]] for i in top])
    return rank, extra, summary, shown
