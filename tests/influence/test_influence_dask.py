"""InfluenceFunctions and InfluenceCleaner on dask arrays give the numbers of the in-memory
path (to 1e-10), lazily, on a dask.distributed LocalCluster."""

import warnings

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions
from skinfluence.cleaning import InfluenceCleaner
from skinfluence.objectives import NotStationaryWarning

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.dask

N, D, CHUNK = 700, 5, 150  # row blocks of 150, 150, 150, 150 and 100


def _data(task, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)) * [1.0, 2.0, 0.5, 1.0, 3.0] + [0.0, 1.0, 0.0, -2.0, 0.0]
    signal = X @ rng.standard_normal(D) + rng.standard_normal(N)
    if task == "regression":
        return X, signal, None
    if task == "counts":
        return X, rng.poisson(np.exp(0.3 * signal / signal.std())).astype(float), \
            rng.uniform(0.5, 2.0, N)
    y = (signal > 0).astype(int) if task == "binary" else np.digitize(signal, [-1.0, 1.0])
    y[:40] = (y[:40] + 1) % (y.max() + 1)  # some flipped labels for the cleaner
    sample_weight = rng.uniform(0.5, 2.0, N) if task == "weighted" else None
    return X, y, sample_weight


def _model(case):
    """(task, fitted model) of each case; every model is fitted before it is explained."""
    if case == "sgd_partial_fit":
        X, y, _ = _data("binary")
        model = SGDClassifier(loss="log_loss", alpha=1e-2, random_state=0)
        for rows in np.array_split(np.arange(N), 7):
            model.partial_fit(X[rows], y[rows], classes=[0, 1])
        return "binary", model
    task = {"binary": "binary", "multinomial": "multiclass", "weighted": "weighted",
            "pipeline": "binary", "ridge": "regression", "sample_fit": "binary",
            "poisson": "counts"}[case]
    X, y, sw = _data(task)
    if case == "poisson":  # weights s_i / sum(s): a mean over the whole training set
        return task, PoissonRegressor(alpha=0.05, tol=1e-12, max_iter=1000).fit(
            X, y, sample_weight=sw)
    if case == "ridge":
        return task, Ridge(alpha=3.0).fit(X, y)
    if case == "pipeline":
        return task, make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    if case == "sample_fit":  # fitted by scikit-learn on a sample of the rows
        return task, LogisticRegression(C=0.5).fit(X[::3], y[::3])
    return task, LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(
        X, y, sample_weight=sw)


def _dask(*arrays):
    return [None if a is None else da.from_array(a, chunks=(CHUNK,) + a.shape[1:])
            for a in arrays]


def _close(got, expected, rtol=1e-10):
    got = got.compute() if hasattr(got, "compute") else got
    np.testing.assert_allclose(got, expected, rtol=rtol,
                               atol=rtol * max(np.abs(expected).max(), 1e-300))


def _pair(case, approximation):
    task, model = _model(case)
    X, y, sw = _data(task)
    kwargs = dict(approximation=approximation, refine=0)
    with warnings.catch_warnings():
        # a fit on a sample or by SGD is not at the optimum of all rows: both paths warn
        warnings.simplefilter("ignore", NotStationaryWarning)
        memory = InfluenceFunctions(FrozenEstimator(model), **kwargs).fit(
            X, y, sample_weight=sw)
        Xd, yd, swd = _dask(X, y, sw)
        lazy = InfluenceFunctions(FrozenEstimator(model), **kwargs).fit(
            Xd, yd, sample_weight=swd)
    return X, y, Xd, yd, memory, lazy


CASES = ["binary", "multinomial", "weighted", "pipeline", "ridge", "poisson", "sample_fit",
         "sgd_partial_fit"]


@pytest.mark.parametrize("approximation", ["newton", "first_order"])
@pytest.mark.parametrize("case", CASES)
def test_dask_influence_equals_in_memory(dask_client, case, approximation):
    X, y, Xd, yd, memory, lazy = _pair(case, approximation)
    # the Hessian summed over the row blocks, factorised once on the client
    _close(lazy.solver_.inverse(), memory.solver_.inverse())
    assert isinstance(lazy.self_influence_, da.Array)
    _close(lazy.self_influence_, memory.self_influence_)
    _close(lazy.loo_decision_function(), memory.loo_decision_function())
    if hasattr(memory, "loo_predict_proba"):
        _close(lazy.loo_predict_proba(), memory.loo_predict_proba())
    Xq, yq = X[:37], y[:37]
    influence = lazy.transform(Xq, yq)  # queries in memory
    assert isinstance(influence, da.Array)
    assert influence.chunks[1] == Xd.chunks[0]  # one block per training row block
    _close(influence, memory.transform(Xq, yq))
    _close(lazy.transform(Xd[:37]), memory.transform(Xq))  # queries on dask, no targets
    expected = memory.explain(Xq, yq, k=7)
    got = lazy.explain(Xd[:37], yd[:37], k=7)
    for key in ("helpful_indices", "harmful_indices"):
        np.testing.assert_array_equal(got[key], expected[key])
    for key in ("helpful_values", "harmful_values"):
        _close(got[key], expected[key])


def test_dask_explain_merges_blocks_as_a_tree(dask_client, monkeypatch):
    import skinfluence.influence._dask as dask_module

    monkeypatch.setattr(dask_module, "_SPLIT_EVERY", 2)  # 5 blocks: 3 levels of merges
    X, y, Xd, yd, memory, lazy = _pair("multinomial", "newton")
    with distributed.get_task_stream(dask_client) as stream:
        got = lazy.explain(X[:20], y[:20], k=700)  # k = n_train: every point, in order
    assert len(stream.data) >= 5 + 4  # a task per training block and per merge
    expected = memory.explain(X[:20], y[:20], k=700)
    assert got.helpful_indices.shape == (20, 700)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-13)
    _close(lazy.self_influence_, memory.self_influence_)


@pytest.mark.parametrize("task", ["binary", "multiclass", "weighted"])
def test_dask_cleaner_equals_in_memory(dask_client, task):
    X, y, sw = _data(task)
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(X, y, sample_weight=sw)
    memory = InfluenceCleaner(FrozenEstimator(model)).fit(X, y, sample_weight=sw)
    Xd, yd, swd = _dask(X, y, sw)
    with distributed.get_task_stream(dask_client) as stream:
        lazy = InfluenceCleaner(FrozenEstimator(model)).fit(Xd, yd, sample_weight=swd)
    # the Hessian pieces and the leave-one-out outputs ran per row block on the cluster
    names = [str(task["key"]) for task in stream.data]
    assert sum("_fit_sums" in name for name in names) == 5
    assert sum("_loo_block" in name for name in names) == 5
    assert lazy.influence_ is None and memory.influence_ is None  # the leave-one-out path
    _close(lazy.proba_, memory.proba_)
    _close(lazy.scores_, memory.scores_)
    np.testing.assert_array_equal(lazy.issues_, memory.issues_)
    assert 20 <= lazy.n_issues_ == memory.n_issues_
    np.testing.assert_array_equal(lazy.suggested_labels_, memory.suggested_labels_)
    np.testing.assert_array_equal(lazy.classes_, memory.classes_)
    _close(lazy.noise_joint_, memory.noise_joint_)


def test_dask_fit_sums_the_blocks_on_the_cluster(dask_client):
    _, model = _model("binary")
    X, y, _ = _data("binary")
    Xd, yd = _dask(X, y)
    with distributed.get_task_stream(dask_client) as stream:
        inf = InfluenceFunctions(FrozenEstimator(model)).fit(Xd, yd)
    assert len(stream.data) >= 5  # one Hessian piece per row block at least
    assert inf.objective_.n_train == N and inf.n_features_in_ == D
    assert inf.approximation_ == "newton" and inf.refined_indices_.size == 0
    assert inf.get_feature_names_out()[-1] == f"train{N - 1}"


def test_dask_refusals_say_what_to_do(dask_client):
    task, model = _model("binary")
    X, y, _ = _data(task)
    Xd, yd = _dask(X, y)
    with pytest.raises(TypeError, match="FrozenEstimator"):
        InfluenceFunctions(LogisticRegression()).fit(Xd, yd)
    with pytest.raises(ValueError, match="exact solver"):
        InfluenceFunctions(FrozenEstimator(model), solver="cg").fit(Xd, yd)
    with pytest.raises(ValueError, match="refine=0"):
        InfluenceFunctions(FrozenEstimator(model), refine=3).fit(Xd, yd)
    balanced = LogisticRegression(class_weight="balanced").fit(X, y)
    with pytest.raises(ValueError, match="class_weight='balanced'"):
        InfluenceFunctions(FrozenEstimator(balanced)).fit(Xd, yd)
    mlp = MLPClassifier(hidden_layer_sizes=(3,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y)
    with pytest.raises(TypeError, match="MLPClassifier is not one of them.*neural networks"):
        InfluenceFunctions(FrozenEstimator(mlp)).fit(Xd, yd)
    separable = (X[:, 0] > 0).astype(int)
    unpenalised = LogisticRegression(C=np.inf, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unpenalised.fit(X, separable)
        with pytest.raises(ValueError, match="no optimum.*linearly separable"):
            InfluenceFunctions(FrozenEstimator(unpenalised)).fit(Xd, _dask(separable)[0])
    inf = InfluenceFunctions(FrozenEstimator(model)).fit(Xd, yd)
    with pytest.raises(ValueError, match="lazy dask array"):
        inf.transform(X[:5], y[:5], out=np.empty((5, N)))
    with pytest.raises(NotImplementedError, match="dask"):
        inf.parameter_changes([0])
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        InfluenceFunctions(FrozenEstimator(model)).fit(Xd[Xd[:, 0] > 0], yd[Xd[:, 0] > 0])
    with pytest.raises(ValueError, match="method='loo'"):
        InfluenceCleaner(FrozenEstimator(model), method="loss").fit(Xd, yd)
    with pytest.raises(TypeError, match="FrozenEstimator"):
        InfluenceCleaner(LogisticRegression()).fit(Xd, yd)


def test_dask_dataframes_equal_in_memory_and_keep_the_column_names(dask_client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    task, model = _model("multinomial")
    X, y, _ = _data(task)
    columns = [f"x{j}" for j in range(D)]
    frame = pd.DataFrame(X, columns=columns).assign(label=y)
    ddf = dd.from_pandas(frame, npartitions=4)  # partitions of unknown size until counted
    memory = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(X, y)
    lazy = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(ddf[columns], ddf["label"])
    np.testing.assert_array_equal(lazy.feature_names_in_, columns)
    assert list(lazy.objective_.X.chunks[0]) == ddf.map_partitions(len).compute().tolist()
    _close(lazy.self_influence_, memory.self_influence_)
    queries = dd.from_pandas(frame[:30], npartitions=2)
    _close(lazy.transform(queries[columns], queries["label"]), memory.transform(X[:30], y[:30]))
    expected = memory.explain(X[:30], y[:30], k=5)
    got = lazy.explain(queries[columns], queries["label"], k=5)
    np.testing.assert_array_equal(got.helpful_indices, expected.helpful_indices)
    _close(got.harmful_values, expected.harmful_values)
    with pytest.raises(ValueError, match="feature names"):
        lazy.transform(frame[columns[::-1]][:5])
    cleaner_memory = InfluenceCleaner(FrozenEstimator(model)).fit(X, y)
    with distributed.get_task_stream(dask_client) as stream:
        cleaner = InfluenceCleaner(FrozenEstimator(model)).fit(ddf[columns], ddf["label"])
    # the same frames again: their partitions were counted by the first fit
    assert not [t for t in stream.data if "_frame_length" in str(t["key"])]
    np.testing.assert_array_equal(cleaner.feature_names_in_, columns)
    _close(cleaner.scores_, cleaner_memory.scores_)
    np.testing.assert_array_equal(cleaner.issues_, cleaner_memory.issues_)


def test_dask_dataframe_counts_are_checked_when_the_blocks_are_read(dask_client, monkeypatch):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    import skinfluence.utils._dask as dask_utils

    task, model = _model("binary")
    X, y, _ = _data(task)
    ddf = dd.from_pandas(pd.DataFrame(X).rename(columns=str).assign(label=y), npartitions=2)
    features = ddf[[str(j) for j in range(D)]]
    # counts kept for this frame that no longer hold (as after the files were rewritten)
    monkeypatch.setitem(dask_utils._COUNTED, features._name, (300, 400))
    with pytest.raises(ValueError, match="350 rows, but 300 were counted"):
        InfluenceFunctions(FrozenEstimator(model)).fit(features, ddf["label"])


def test_dask_dataframes_with_text_columns_are_refused(dask_client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    task, model = _model("binary")
    X, y, _ = _data(task)
    frame = pd.DataFrame(X[:, :4], columns=list("abcd")).assign(e=np.where(y, "u", "v"))
    with pytest.raises(TypeError, match="column.s. e of the dask DataFrame are not numeric"):
        InfluenceFunctions(FrozenEstimator(model)).fit(dd.from_pandas(frame, npartitions=2), y)


def test_dask_warns_as_in_memory_when_the_model_is_not_at_the_optimum(dask_client):
    task, model = _model("sample_fit")  # fitted on a third of the rows
    X, y, _ = _data(task)
    Xd, yd = _dask(X, y)
    with pytest.warns(NotStationaryWarning, match="not at a minimum"):
        InfluenceFunctions(FrozenEstimator(model)).fit(X, y)
    with pytest.warns(NotStationaryWarning, match="not at a minimum") as record:
        InfluenceFunctions(FrozenEstimator(model)).fit(Xd, yd)
    assert record[0].filename == __file__  # points at the caller's fit
    with pytest.warns(NotStationaryWarning, match="not at a minimum") as record:
        InfluenceCleaner(FrozenEstimator(model)).fit(Xd, yd)
    assert record[0].filename == __file__
    _, converged = _model("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotStationaryWarning)
        InfluenceFunctions(FrozenEstimator(converged)).fit(Xd, yd)


@pytest.mark.parametrize("name", ["LinearRegression", "RidgeClassifier", "SGDRegressor",
                                  "LinearSVC", "GammaRegressor", "TweedieRegressor",
                                  "RidgeCV", "LogisticRegressionCV"])
def test_dask_other_linear_families_equal_in_memory(dask_client, name):
    from sklearn import linear_model, svm

    X, signal, _ = _data("regression")
    y = {"classifier": (signal > 0).astype(int), "regressor": signal,
         "positive": np.exp(0.3 * signal / signal.std())}
    kind = ("positive" if name in ("GammaRegressor", "TweedieRegressor") else
            "classifier" if name in ("RidgeClassifier", "LinearSVC", "LogisticRegressionCV")
            else "regressor")
    params = {"SGDRegressor": dict(random_state=0), "TweedieRegressor": dict(power=1.5)}
    estimator = getattr(linear_model, name, None) or getattr(svm, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence; SGD is not at the optimum
        model = estimator(**params.get(name, {})).fit(X, y[kind])
        memory = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(X, y[kind])
        Xd, yd = _dask(X, y[kind])
        lazy = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(Xd, yd)
    assert isinstance(lazy.self_influence_, da.Array)
    _close(lazy.self_influence_, memory.self_influence_)
    _close(lazy.transform(X[:20], y[kind][:20]), memory.transform(X[:20], y[kind][:20]))


def test_large_data_guide_example_runs():
    # the user guide's cluster example, as printed (it starts its own LocalCluster)
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "user_guide"
            / "large_data.rst").read_text()
    section = text.split("On a cluster: dask arrays")[1]
    code = section.split(".. code-block:: python")[1].split("\nWhat runs where")[0]
    namespace = {}
    exec(compile("\n".join(line[3:] for line in code.splitlines()), "large_data.rst",
                 "exec"), namespace)
    assert namespace["cleaner"].n_issues_ > 100
    assert namespace["top"].helpful_indices.shape == (3, 5)
    assert namespace["block"].shape == (3, 100)


def test_dask_leverage_one_warns_once_on_the_client(dask_client, monkeypatch):
    import skinfluence.influence._newton as newton

    solve = newton.woodbury_systems
    marker = 1.2345  # the sample weight of the rows whose Newton step is made singular

    def singular_marked_rows(M, S, w, r):
        A, c, singular = solve(M, S, w, r)
        return A, c, singular | np.isclose(w / w.min(), marker)  # w: sample_weight * C

    # leverage 1 is a matter of rounding in these K x K solves: the marked rows stand in
    # for it, so that the test follows the rows, not the rounding
    monkeypatch.setattr(newton, "woodbury_systems", singular_marked_rows)
    task, model = _model("multinomial")
    X, y, _ = _data(task)
    sw = np.ones(N)
    sw[[7, 160]] = marker  # rows of blocks 0 and 1
    Xd, yd, swd = _dask(X, y, sw)
    with pytest.warns(RuntimeWarning, match="2 training point.s. have leverage 1"):
        memory = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(X, y, sample_weight=sw)
    expected = memory.explain(X[:10], y[:10], k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotStationaryWarning)  # weights other than the fit's
        lazy = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(Xd, yd,
                                                                         sample_weight=swd)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = lazy.explain(Xd[:10], yd[:10], k=5)  # the flags come with the blocks' top k
        self_influence = lazy.self_influence_
        lazy.transform(X[:10], y[:10]).compute()
    messages = [w for w in record if "leverage 1" in str(w.message)]
    assert len(messages) == 1  # one warning for all blocks and all calls, on the client
    assert "2 training point(s) (training rows 7, 160) have leverage 1" in str(
        messages[0].message)
    assert messages[0].filename == __file__
    np.testing.assert_array_equal(lazy.objective_.first_order_rows(), [7, 160])
    _close(self_influence, memory.self_influence_)
    np.testing.assert_array_equal(got.helpful_indices, expected.helpful_indices)
    _close(got.helpful_values, expected.helpful_values)
    # lazy results alone: the rows are found by one pass over the blocks, warned once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotStationaryWarning)
        again = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(Xd, yd,
                                                                          sample_weight=swd)
    with pytest.warns(RuntimeWarning, match=r"rows 7, 160\) have leverage 1") as record:
        again.self_influence_
    assert len(record) == 1 and record[0].filename == __file__
    # the cleaner: the leave-one-out tasks return the rows with their outputs
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cleaner = InfluenceCleaner(FrozenEstimator(model)).fit(Xd, yd, sample_weight=swd)
    messages = [w for w in record if "leverage 1" in str(w.message)]
    assert len(messages) == 1 and messages[0].filename == __file__
    assert "rows 7, 160)" in str(messages[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = InfluenceCleaner(FrozenEstimator(model)).fit(X, y, sample_weight=sw)
    # the in-memory cleaner has its own leverage kernel (_loo.py), which the stand-in above
    # does not reach: rows 7 and 160 keep their Newton step there
    others = np.setdiff1d(np.arange(N), [7, 160])
    _close(cleaner.scores_[others], expected.scores_[others])
    assert np.abs(cleaner.scores_[[7, 160]] - expected.scores_[[7, 160]]).max() > 1e-6


_READS = []  # rows of each partition read by a task (the test cluster runs in this process)


def _counting_reads(part):
    _READS.append(len(part))
    return part


def _frames(X, y, npartitions, monkeypatch):
    """``(features, labels)`` of a dask DataFrame whose partition reads are counted in
    ``_READS``, with no row counts kept from earlier tests."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    import skinfluence.utils._dask as dask_utils

    monkeypatch.setattr(dask_utils, "_COUNTED", {})
    columns = [f"x{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns).assign(label=y)
    ddf = dd.from_pandas(frame, npartitions=npartitions).map_partitions(
        _counting_reads, meta=frame.iloc[:0])
    _READS.clear()
    return ddf[columns], ddf["label"]


def test_dask_dataframes_are_counted_in_the_pass_of_the_hessian(dask_client, monkeypatch):
    task, model = _model("multinomial")
    X, y, _ = _data(task)
    features, labels = _frames(X, y, 4, monkeypatch)
    with distributed.get_task_stream(dask_client) as stream:
        lazy = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(features, labels)
    names = [str(t["key"]) for t in stream.data]
    # partition 0 for the first rows, then X and y of each partition read once: counted
    # while the Hessian is summed (a separate count would read each partition once more)
    assert len(_READS) == 2 + 2 * 4
    assert sum("_counted_sums_block" in name for name in names) == 4
    assert not [name for name in names if "_frame_length" in name]
    assert list(lazy.objective_.X.chunks[0]) == [175] * 4
    # the same frames again (counted): the sums over their row blocks, in a pass of their
    # own, are those summed with the counts, bit for bit
    _READS.clear()
    again = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(features, labels)
    assert len(_READS) == 2 + 2 * 4
    np.testing.assert_array_equal(again.solver_.inverse(), lazy.solver_.inverse())
    np.testing.assert_array_equal(lazy.self_influence_.compute(),
                                  again.self_influence_.compute())
    memory = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(X, y)
    _close(lazy.self_influence_, memory.self_influence_)
    expected = memory.explain(X[:20], y[:20], k=5)
    got = lazy.explain(X[:20], y[:20], k=5)
    np.testing.assert_array_equal(got.harmful_indices, expected.harmful_indices)
    _close(got.harmful_values, expected.harmful_values)
    # the cleaner on new frames: the labels, the first rows, the counted sums, the
    # leave-one-out outputs
    features, labels = _frames(X, y, 5, monkeypatch)
    cleaner = InfluenceCleaner(FrozenEstimator(model)).fit(features, labels)
    assert len(_READS) == 5 + 2 + 2 * 5 + 2 * 5
    expected = InfluenceCleaner(FrozenEstimator(model)).fit(X, y)
    _close(cleaner.scores_, expected.scores_)
    np.testing.assert_array_equal(cleaner.issues_, expected.issues_)


def test_dask_labels_on_other_partitions_are_aligned_before_the_sums(dask_client, monkeypatch):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    task, model = _model("binary")
    X, y, sw = _data(task)
    features, _ = _frames(X, y, 4, monkeypatch)  # partitions of 175 rows
    cuts = [0, 100, 350, 525, N]  # as many partitions, other rows
    labels, weights = (dd.concat([
        dd.from_pandas(pd.Series(v[a:b], index=range(a, b)), npartitions=1)
        for a, b in zip(cuts[:-1], cuts[1:])]) for v in (y, np.ones(N)))
    lazy = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(features, labels,
                                                                    sample_weight=weights)
    assert list(lazy.objective_.X.chunks[0]) == [175] * 4
    assert list(lazy.objective_.y.chunks[0]) == [175] * 4
    memory = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(X, y)
    _close(lazy.self_influence_, memory.self_influence_)
    _close(lazy.transform(X[:10], y[:10]), memory.transform(X[:10], y[:10]))
