"""Faithfulness metrics against hand computations, actual retraining and pyDVL."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceCleaner, InfluenceFunctions, TracIn
from skinfluence.metrics import (
    Retrainer,
    brittleness,
    lds_ceiling,
    lds_scorer,
    linear_datamodeling_score,
    loo_correlation,
    random_subsets,
    removal_curve,
)
from skinfluence.valuation import DataOOB

HERE = Path(__file__).resolve().parent


class CountingLogisticRegression(LogisticRegression):
    """LogisticRegression counting its fits (module level: picklable, cacheable)."""

    n_fit_calls = 0

    def fit(self, X, y, sample_weight=None):
        type(self).n_fit_calls += 1
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X[:200], y[:200], X[400:430], y[400:430]


def _ridge_fit_predict(X, y, alpha, X_new):
    """Ridge with intercept in closed form: centred normal equations."""
    xm, ym = X.mean(axis=0), y.mean()
    Xc = X - xm
    w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - ym))
    return X_new @ w + (ym - xm @ w)


def _ranks(v):
    r = np.empty(v.size)
    r[np.argsort(v)] = np.arange(v.size)
    return r


def test_lds_equals_hand_computation():
    rng = np.random.default_rng(0)
    X, Xt = rng.normal(size=(14, 3)), rng.normal(size=(4, 3))
    y, yt = X @ [1.0, -2.0, 0.5] + rng.normal(size=14), rng.normal(size=4)
    A = rng.normal(size=(4, 14))  # any attributions: a user callable returning them
    res = linear_datamodeling_score(lambda Xq, yq: A, X, y, Xt, yt, estimator=Ridge(alpha=0.7),
                                    fraction=0.4, n_subsets=9, random_state=3,
                                    return_details=True)
    # the subsets: round(0.4 * 14) = 6 points removed, drawn by a seeded permutation
    rs = np.random.RandomState(3)
    removed = np.zeros((9, 14), dtype=bool)
    for s in range(9):
        removed[s, rs.permutation(14)[:6]] = True
    np.testing.assert_array_equal(res.removed, removed)
    base = (yt - _ridge_fit_predict(X, y, 0.7, Xt)) ** 2
    lds = []
    for i in range(4):
        pred = np.array([A[i, m].sum() for m in removed])
        act = np.array([(yt[i] - _ridge_fit_predict(X[~m], y[~m], 0.7, Xt[i:i + 1])[0]) ** 2
                        for m in removed]) - base[i]
        np.testing.assert_allclose(res.actual[:, i], act, rtol=1e-9, atol=1e-12)
        ra, rb = _ranks(pred), _ranks(act)
        ra, rb = ra - ra.mean(), rb - rb.mean()
        lds.append(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)))
    assert res.score == pytest.approx(np.mean(lds), abs=1e-12)


def test_loo_correlation_of_exact_method_on_ridge_is_one():
    X, y = load_diabetes(return_X_y=True)
    res = loo_correlation(InfluenceFunctions(Ridge(alpha=1.0)), X[:150], y[:150], X[300:340],
                          y[300:340], n_samples=40, random_state=0, return_details=True)
    # Newton removal is exact for a quadratic objective; refits are direct solves
    assert res.pearson == pytest.approx(1.0, abs=1e-10)
    assert res.spearman == pytest.approx(1.0, abs=1e-10)
    assert res.n_fits == 41  # the full model and one refit per training point left out


def test_group_datamodel_beats_additive_on_half_removals(cancer):
    X, y, Xt, yt = cancer
    inf = InfluenceFunctions(LogisticRegression(max_iter=5000)).fit(X, y)
    kw = dict(n_subsets=30, random_state=0)
    additive = linear_datamodeling_score(inf, X, y, Xt, yt, **kw)
    group = linear_datamodeling_score(inf, X, y, Xt, yt, datamodel="group", **kw)
    assert group > additive
    assert group > 0.9


def test_second_method_reuses_the_first_methods_retrains(cancer, tmp_path):
    X, y, Xt, yt = cancer
    est = CountingLogisticRegression(max_iter=5000)
    newton = InfluenceFunctions(LogisticRegression(max_iter=5000)).fit(X, y).transform(Xt, yt)
    first = InfluenceFunctions(LogisticRegression(max_iter=5000),
                               approximation="first_order").fit(X, y).transform(Xt, yt)
    kw = dict(estimator=est, n_subsets=12, random_state=0, memory=str(tmp_path),
              return_details=True)
    CountingLogisticRegression.n_fit_calls = 0
    a = linear_datamodeling_score(newton, X, y, Xt, yt, **kw)
    assert CountingLogisticRegression.n_fit_calls == a.n_fits == 13  # 12 subsets + full model
    b = linear_datamodeling_score(first, X, y, Xt, yt, **kw)
    assert CountingLogisticRegression.n_fit_calls == 13 and b.n_fits == 0
    np.testing.assert_array_equal(a.actual, b.actual)  # the same retrains
    assert a.score != b.score
    # without memory, every call retrains
    kw["memory"] = None
    linear_datamodeling_score(first, X, y, Xt, yt, **kw)
    assert CountingLogisticRegression.n_fit_calls == 26


def test_retrainer_is_seeded_and_checks_subsets(cancer):
    X, y, _, _ = cancer
    np.testing.assert_array_equal(random_subsets(50, 0.3, 4, 7), random_subsets(50, 0.3, 4, 7))
    with pytest.raises(ValueError, match="removes every training point"):
        Retrainer(LogisticRegression(), X, y).map([np.arange(len(y))], len)
    with pytest.raises(ValueError, match="fraction"):
        random_subsets(10, 0.01, 3, 0)
    with pytest.raises(ValueError, match="Attributions must have shape"):
        linear_datamodeling_score(np.zeros(5), X, y, X[:3], y[:3], estimator=LogisticRegression())


def _pydvl_definition(values, X, y, Xt, yt, percentages, remove_best):
    """pyDVL 0.10 ``compute_removal_score``, transcribed: sort the values (descending to
    remove the best), drop the first ``int(pct * n)``, fit a clone on the rest, score."""
    order = np.argsort(values)[::-1] if remove_best else np.argsort(values)
    scores = []
    for pct in percentages:
        kept = order[int(pct * len(values)):]
        model = LogisticRegression(max_iter=5000).fit(X[kept], y[kept])
        scores.append(model.score(Xt, yt))
    return np.array(scores)


@pytest.fixture(scope="module")
def removal_task():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    values = np.random.default_rng(0).normal(size=300)  # distinct: no ties to break
    return X[:300], y[:300], X[300:], y[300:], values, np.array([0.0, 0.1, 0.25, 0.5, 0.7])


@pytest.mark.parametrize("order", ["high", "low"])
def test_removal_curve_reproduces_pydvl_definition(removal_task, order):
    X, y, Xt, yt, values, pcts = removal_task
    f, s = removal_curve(values, LogisticRegression(max_iter=5000), X, y, Xt, yt, order=order,
                         fractions=pcts)
    np.testing.assert_array_equal(f, pcts)
    np.testing.assert_array_equal(s, _pydvl_definition(values, X, y, Xt, yt, pcts,
                                                       remove_best=order == "high"))


def test_removal_curve_matches_pydvl_itself(removal_task, tmp_path):
    """pyDVL needs its own environment: point SKINFLUENCE_PYDVL_PYTHON at an interpreter
    with ``pydvl==0.10.0`` installed (no torch needed)."""
    python = os.environ.get("SKINFLUENCE_PYDVL_PYTHON")
    if not python:
        pytest.skip("set SKINFLUENCE_PYDVL_PYTHON to a Python with pydvl 0.10 installed")
    X, y, Xt, yt, values, pcts = removal_task
    np.savez(tmp_path / "data.npz", X=X, y=y, X_test=Xt, y_test=yt, values=values,
             percentages=pcts)
    subprocess.run([python, str(HERE / "pydvl_removal.py"), str(tmp_path / "data.npz"),
                    str(tmp_path / "out.json")], check=True, capture_output=True)
    ref = json.loads((tmp_path / "out.json").read_text())
    for order in ("high", "low"):
        _, s = removal_curve(values, LogisticRegression(max_iter=5000), X, y, Xt, yt,
                             order=order, fractions=pcts)
        np.testing.assert_array_equal(s, ref[order])


def test_brittleness_flips_are_checked_by_retraining(cancer):
    X, y, Xt, yt = cancer
    lr = LogisticRegression(max_iter=5000)
    inf = InfluenceFunctions(lr).fit(X, y)
    margin = np.abs(inf.decision_function(Xt))
    near = np.argsort(margin)[:4]  # the least confident predictions flip first
    ks = (1, 3, 10, 30)
    res = brittleness(inf, X, y, Xt[near], n_removed=ks, return_details=True)
    assert res.flipped.any()
    pred = inf.predict(Xt[near])
    A = inf.transform(Xt[near], pred)
    for i, k in enumerate(res.n_removed):
        top = np.argsort(-A[i], kind="stable")
        for cand in ks:
            if not np.isnan(k) and cand > k:
                break
            keep = np.setdiff1d(np.arange(len(y)), top[:cand])
            flipped = clone(lr).fit(X[keep], y[keep]).predict(Xt[near][i:i + 1])[0] != pred[i]
            assert flipped == (cand == k)
    with pytest.raises(ValueError, match="classifiers"):
        brittleness(InfluenceFunctions(Ridge()), X, y.astype(float), Xt)


def test_every_kind_of_method_is_scored(cancer):
    X, y, Xt, yt = cancer
    kw = dict(n_subsets=8, random_state=0)
    lr = LogisticRegression(max_iter=5000)
    methods = {
        "first_order": InfluenceFunctions(lr, approximation="first_order"),
        "tracin": TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=3,
                         random_state=0),
        "data_oob": DataOOB(lr, n_estimators=40, random_state=0),
        "cleaner": InfluenceCleaner(lr),
        "callable": lambda Xq, yq: np.ones((len(yq), len(y))) + np.arange(len(y)),
    }
    for name, method in methods.items():
        est = lr if name == "callable" else None
        score = linear_datamodeling_score(method, X, y, Xt, yt, estimator=est, **kw)
        assert -1.0 <= score <= 1.0, name
    with pytest.raises(ValueError, match="group-aware"):
        linear_datamodeling_score(methods["tracin"], X, y, Xt, yt, datamodel="group", **kw)


def test_grid_search_tunes_an_explainer_by_lds(cancer, tmp_path):
    X, y, Xt, yt = cancer
    scorer = lds_scorer(Xt, yt, n_subsets=10, memory=str(tmp_path))
    grid = {"damping": [0.0, 30.0]}
    search = GridSearchCV(InfluenceFunctions(LogisticRegression(max_iter=5000)), grid,
                          scoring=scorer, cv=2).fit(X, y)
    assert search.best_params_["damping"] in grid["damping"]
    best = search.best_estimator_
    # the explainer's own score still delegates to the wrapped model (accuracy)
    assert best.score(Xt, yt) == best.estimator_.score(Xt, yt)
    # recovered training data: the scorer retrains on what the explainer was fitted on
    direct = linear_datamodeling_score(best, X, y, Xt, yt, n_subsets=10, random_state=0)
    assert scorer(best, Xt, yt) == pytest.approx(direct, abs=1e-12)


@pytest.mark.dask
def test_dask_backend_gives_the_same_lds(cancer):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X, y, Xt, yt = cancer
    A = InfluenceFunctions(LogisticRegression(max_iter=5000)).fit(X, y).transform(Xt, yt)
    kw = dict(estimator=LogisticRegression(max_iter=5000), n_subsets=6, random_state=0,
              n_jobs=2)
    local = linear_datamodeling_score(A, X, y, Xt, yt, **kw)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster), parallel_config(backend="dask"):
            remote = linear_datamodeling_score(A, X, y, Xt, yt, **kw)
    assert remote == local


@pytest.fixture(scope="module")
def mlp_task():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    mlp = MLPClassifier((16,), activation="tanh", alpha=1e-2, solver="lbfgs", tol=1e-10,
                        max_iter=5000, random_state=0)
    return mlp, X[:150], y[:150], X[400:430], y[400:430], X[430:460], y[430:460]


def test_lds_ceiling_is_the_lds_of_two_hand_retrainings(mlp_task, tmp_path):
    mlp, X, y, Xt, yt, _, _ = mlp_task
    details = lds_ceiling(mlp, X, y, Xt, yt, n_subsets=8, random_state=0, warm_start=False,
                          memory=str(tmp_path), return_details=True)
    masks = random_subsets(len(y), 0.5, 8, 0)
    losses = {}
    for seed in (0, 1):
        rows = []
        for m in masks:
            P = clone(mlp).set_params(random_state=seed).fit(X[~m], y[~m]).predict_proba(Xt)
            rows.append(-np.log(P[np.arange(len(yt)), yt]))
        losses[seed] = np.array(rows)
    hand = np.mean([np.corrcoef(_ranks(losses[1][:, i]), _ranks(losses[0][:, i]))[0, 1]
                    for i in range(len(yt))])
    assert details.score == pytest.approx(hand, abs=1e-10)
    # two trainings of an MLP agree well but not perfectly on these subsets
    assert 0.5 < details.score < 1.0
    with pytest.raises(ValueError, match="deterministic"):
        lds_ceiling(LinearRegression(), X, y, Xt, yt, n_subsets=3)


def test_damping_chosen_by_lds_on_validation_data_beats_no_damping_on_fresh_data(
        mlp_task, tmp_path):
    # an MLP's Hessian has near-flat directions that a half removal does not follow;
    # damping chosen by the LDS on validation points and other subsets (the scorer on the
    # full training set) transfers to fresh test points and subsets, against retraining
    mlp, X, y, Xv, yv, Xt, yt = mlp_task
    n = len(y)
    scorer = lds_scorer(Xv, yv, X=X, y=y, n_subsets=12, random_state=1, warm_start=False,
                        memory=str(tmp_path))
    search = GridSearchCV(InfluenceFunctions(mlp), {"damping": [0.0, 0.1]}, scoring=scorer,
                          cv=[(np.arange(n), np.arange(n))]).fit(X, y)
    kw = dict(n_subsets=12, random_state=0, warm_start=False, memory=str(tmp_path))
    chosen = linear_datamodeling_score(search.best_estimator_, X, y, Xt, yt, **kw)
    undamped = linear_datamodeling_score(InfluenceFunctions(mlp), X, y, Xt, yt, **kw)
    assert search.best_params_["damping"] == 0.1
    assert chosen > undamped + 0.1


def test_retrainer_refits_ensembles_from_scratch(cancer):
    # an ensemble's warm start keeps its old trees (fitted on all the data): a retrain
    # must be a fresh fit on the subset, for forests and boosting alike
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    X, y, Xt, _ = cancer
    keep = np.arange(0, len(y), 2)
    for model in (RandomForestClassifier(n_estimators=5, bootstrap=False, random_state=0),
                  HistGradientBoostingClassifier(max_iter=10, random_state=0)):
        refit = Retrainer(model, X, y).map([np.arange(1, len(y), 2)], lambda m: m)[0]
        fresh = clone(model).fit(X[keep], y[keep])
        np.testing.assert_array_equal(refit.predict_proba(Xt), fresh.predict_proba(Xt))
        assert not np.array_equal(refit.predict_proba(Xt),
                                  clone(model).fit(X, y).predict_proba(Xt))
        with pytest.raises(ValueError, match="adds trees"):
            Retrainer(model, X, y, warm_start=True)


def test_gradient_rollback_on_a_small_graph_against_retraining():
    # the knowledge-graph model is retrained on subsets of the triples (y=None) and the
    # loss is minus the log-probability of each test triple's tail
    from skinfluence import DistMult, GradientRollback
    from skinfluence.datasets import load_nations

    data = load_nations()
    X = data.train[np.random.default_rng(0).permutation(len(data.train))[:150]]
    Xt = data.test[:8]
    dm = DistMult(n_entities=data.n_entities, n_relations=data.n_relations, n_components=6,
                  max_iter=10, random_state=0)
    gr = GradientRollback(dm).fit(X)
    A = gr.transform(Xt).toarray()
    loo = loo_correlation(gr, X, None, Xt, None, n_samples=3, random_state=0,
                          return_details=True)

    def tail_loss(model):
        return -np.log(model.predict_proba(Xt[:, :2])[np.arange(len(Xt)), Xt[:, 2]])

    base = tail_loss(clone(dm).fit(X))
    for k, j in enumerate(loo.train_indices):
        hand = tail_loss(clone(dm).fit(np.delete(X, j, axis=0))) - base
        np.testing.assert_allclose(loo.actual[:, k], hand, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(loo.predicted, A[:, loo.train_indices])
    lds = linear_datamodeling_score(gr, X, None, Xt, None, n_subsets=4, random_state=0,
                                    return_details=True)
    np.testing.assert_allclose(lds.predicted, lds.removed @ A.T, rtol=1e-12)
    assert -1.0 <= lds.score <= 1.0
