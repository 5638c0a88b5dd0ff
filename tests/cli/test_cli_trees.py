"""``--model forest`` and ``--model hgb``, run as subprocesses on CSVs of bundled data sets.

The numbers are checked against the library on the same features, and the forest's
against refits of its trees on the same bootstrap draws and scikit-learn's own out-of-bag
predictions (``oob_score=True``).
"""

import csv
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.frozen import FrozenEstimator

from skinfluence.cli import make_model
from skinfluence.cli._models import TREE_MODELS
from skinfluence.cli._columns import load_table

# as in test_cli.py: one BLAS thread per subprocess
ENV = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning", MPLBACKEND="Agg",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run(*args):
    """``python -m skinfluence ARGS`` -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "skinfluence", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=ENV)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_out(path_or_text):
    text = path_or_text if isinstance(path_or_text, str) else path_or_text.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    """Iris with two labels flipped (rows 10 and 60)."""
    iris = load_iris()
    rows = [[f"{v:.1f}" for v in x] + [iris.target_names[t]]
            for x, t in zip(iris.data, iris.target)]
    rows[10][-1] = "virginica"  # a setosa
    rows[60][-1] = "setosa"  # a versicolor
    path = write_csv(tmp_path_factory.mktemp("iris") / "iris.csv",
                     iris.feature_names + ["species"], rows)
    return path


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory):
    """The first 120 rows of diabetes, with 6 targets shifted far up."""
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:120], y[:120].copy()
    shifted = np.zeros(120, dtype=bool)
    shifted[[3, 30, 57, 71, 90, 111]] = True
    y[shifted] += 3 * y.std()
    names = [f"x{i}" for i in range(X.shape[1])]
    path = write_csv(tmp_path_factory.mktemp("diabetes") / "diabetes.csv", names + ["target"],
                     [[repr(float(v)) for v in x] + [repr(float(t))] for x, t in zip(X, y)])
    return path, shifted


def _same_draws_refit(forest, X, y, j, Xq, proba):
    """The forest regrown without ``j`` on its own bootstrap draws: each tree refit with its
    draw counts as weights, ``j``'s zeroed (what fitting the forest does per tree)."""
    out = []
    for tree, idx in zip(forest.estimators_, forest.estimators_samples_):
        w = np.bincount(idx, minlength=len(y)).astype(float)
        w[j] = 0.0
        t = clone(tree).fit(X, y, sample_weight=w)
        out.append(t.predict_proba(Xq) if proba else t.predict(Xq))
    return np.mean(out, axis=0)


def test_help_lists_the_tree_models():
    proc = run("explain", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "forest: random forest" in text and "same bootstrap draws" in text
    assert "hgb: histogram gradient boosting" in text and "BoostIn" in text


def test_forest_explain_is_the_refit_on_the_same_draws(iris_csv, tmp_path):
    out = tmp_path / "why.csv"
    proc = run("explain", iris_csv, "-t", "species", "--row", 70, "--model", "forest",
               "-k", 3, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "regrown exactly without the training row" in proc.stdout
    _, rows = read_out(out)
    assert [r[0] for r in rows] == ["helpful"] * 3 + ["harmful"] * 3
    _, _, X, y, _ = load_table(str(iris_csv), "species")
    forest = make_model("forest").fit(X, y)
    pred = forest.predict(X[70:71])[0]
    k = int(np.searchsorted(forest.classes_, pred))
    p0 = forest.predict_proba(X[70:71])[0, k]
    for r in rows:  # log-loss of the predicted class, refit minus fitted
        j, value = int(r[2]), float(r[3])
        p = _same_draws_refit(forest, X, y, j, X[70:71], proba=True)[0, k]
        assert value == pytest.approx(np.log(p0) - np.log(p), rel=1e-9, abs=1e-12)
    assert float(rows[3][3]) < 0 < float(rows[0][3])


def test_forest_explain_same_rows_on_any_number_of_threads(iris_csv, tmp_path):
    """--n-jobs changes how the rows are split among threads, not the listing: equal
    influences (iris has many) list by row number, whatever the thread count."""
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"why{jobs}.csv"
        proc = run("explain", iris_csv, "-t", "species", "--row", 70, "--model", "forest",
                   "-k", 12, "-j", jobs, "-o", out)
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    _, rows = read_out(outs[0])
    for kind in ("helpful", "harmful"):
        listed = [(float(r[3]), int(r[2])) for r in rows if r[0] == kind]
        sign = -1 if kind == "helpful" else 1
        assert listed == sorted(listed, key=lambda vr: (sign * vr[0], vr[1]))
        values = [v for v, _ in listed]
        assert len(set(values)) < len(values)  # the order of ties is exercised
    proc = run("explain", iris_csv, "-t", "species", "--row", 3, "-j", 0)
    assert proc.returncode != 0 and "-1 for all cores" in proc.stderr


def test_forest_label_issues_use_out_of_bag_probabilities(iris_csv):
    proc = run("label-issues", iris_csv, "-t", "species", "--model", "forest", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_out(proc.stdout)
    order = [int(r[-5]) for r in rows]
    scores = np.array([float(r[-4]) for r in rows])
    # scikit-learn's own out-of-bag probabilities of the same forest (same seed and draws)
    _, _, X, y, _ = load_table(str(iris_csv), "species")
    forest = make_model("forest").set_params(oob_score=True).fit(X, y)
    codes = np.searchsorted(forest.classes_, y)
    expected = 1 - forest.oob_decision_function_[np.arange(len(y)), codes]
    np.testing.assert_allclose(scores, expected[order], rtol=1e-12, atol=1e-12)
    assert set(order[:2]) == {10, 60}  # the two flipped labels come first
    assert [r[-1] for r in rows[:2]] == ["True", "True"]


def test_forest_regression_explain_and_label_issues(diabetes_csv, tmp_path):
    path, shifted = diabetes_csv
    out = tmp_path / "why.csv"
    proc = run("explain", path, "-t", "target", "--task", "regression", "--row", 8,
               "--model", "forest", "-k", 2, "-o", out)
    assert proc.returncode == 0, proc.stderr
    _, _, X, y, _ = load_table(str(path), "target", task="regression")
    forest = make_model("forest", "regression").fit(X, y)
    header, rows = read_out(out)
    assert header[:4] == ["kind", "rank", "row", "effect"]
    full = forest.predict(X[8:9])[0]
    for r in rows:  # effect = prediction - prediction of the same-draws refit without j
        refit = _same_draws_refit(forest, X, y, int(r[2]), X[8:9], proba=False)[0]
        assert float(r[3]) == pytest.approx(full - refit, rel=1e-9, abs=1e-9)

    proc = run("label-issues", path, "-t", "target", "--task", "regression", "--model",
               "forest", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_out(proc.stdout)
    order = np.array([int(r[-5]) for r in rows])
    suggested = np.array([float(r[-2]) for r in rows])
    flagged = np.array([r[-1] == "True" for r in rows])
    # flagged rows are given their out-of-bag prediction: scikit-learn's oob_prediction_
    oob = clone(forest).set_params(oob_score=True).fit(X, y).oob_prediction_
    np.testing.assert_allclose(suggested[flagged], oob[order[flagged]], rtol=1e-10)
    assert flagged.any() and shifted[order[:6]].mean() >= 2 / 3


def test_forest_data_oob_uses_the_forests_own_trees(iris_csv):
    from skinfluence import DataOOB

    proc = run("value", iris_csv, "-t", "species", "--model", "forest", "--method", "data-oob",
               "-o", "-")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_out(proc.stdout)
    got = np.empty(150)
    got[[int(r[-3]) for r in rows]] = [float(r[-2]) for r in rows]
    _, _, X, y, _ = load_table(str(iris_csv), "species")
    forest = make_model("forest").fit(X, y)
    expected = DataOOB(FrozenEstimator(forest)).fit(X, y).values_
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[10] == 0 and got[60] == 0  # no tree that left them out agrees with the flip


def test_hgb_explain_is_boostin(iris_csv, diabetes_csv, tmp_path):
    from skinfluence import InfluenceFunctions
    from skinfluence.cli._commands import explain_row

    out = tmp_path / "why.csv"
    proc = run("explain", iris_csv, "-t", "species", "--row", 70, "--model", "hgb", "-k", 3,
               "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "BoostIn approximation" in proc.stdout
    _, rows = read_out(out)
    _, _, X, y, _ = load_table(str(iris_csv), "species")
    inf = InfluenceFunctions(make_model("hgb"), approximation="boostin").fit(X, y)
    expected = inf.transform(X[70:71], inf.predict(X[70:71]))[0]
    idx = np.array([int(r[2]) for r in rows])
    np.testing.assert_allclose([float(r[3]) for r in rows], expected[idx], rtol=1e-6,
                               atol=1e-9 * np.abs(expected).max())
    np.testing.assert_array_equal(idx[:3], np.argsort(-expected, kind="stable")[:3])
    # regression (the command's code path, in process): minus the change of the prediction
    _, _, X, y, _ = load_table(str(diabetes_csv[0]), "target", task="regression")
    kinds, _, _ = explain_row(X, y, make_model("hgb", "regression"), 8, k=3,
                              task="regression", approximation=TREE_MODELS["hgb"])
    inf = InfluenceFunctions(make_model("hgb", "regression"), approximation="boostin")
    effect = -inf.fit(X, y).transform(X[8:9])[0]
    for idx, values in kinds.values():
        np.testing.assert_allclose(values, effect[idx], rtol=1e-12)
    np.testing.assert_array_equal(kinds["raises"][0], np.argsort(-effect, kind="stable")[:3])


def test_hgb_label_issues_find_the_flips(iris_csv):
    from skinfluence import InfluenceCleaner

    proc = run("label-issues", iris_csv, "-t", "species", "--model", "hgb", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert "the score still ranks them" in proc.stderr and "warning" not in proc.stderr
    _, rows = read_out(proc.stdout)
    order = [int(r[-5]) for r in rows]
    _, _, X, y, _ = load_table(str(iris_csv), "species")
    with pytest.warns(UserWarning, match="keep every tree's splits"):
        cleaner = InfluenceCleaner(make_model("hgb")).fit(X, y)
    np.testing.assert_allclose([float(r[-4]) for r in rows], cleaner.scores_[order],
                               rtol=1e-6, atol=1e-9)
    # fixed-structure leave-one-out of a boosted model: both flips among the top 5 of 150
    assert {10, 60} <= set(order[:5])


@pytest.fixture(scope="module")
def iris_split(iris_csv, tmp_path_factory):
    """The flipped iris split in two: 90 training rows (both flips), 60 validation rows."""
    header, rows = read_out(iris_csv)
    val_rows = set(range(0, 150, 5)) | set(range(2, 150, 5))
    train = [r for i, r in enumerate(rows) if i not in val_rows]
    val = [r for i, r in enumerate(rows) if i in val_rows]
    folder = tmp_path_factory.mktemp("iris_split")
    return write_csv(folder / "train.csv", header, train), write_csv(folder / "val.csv",
                                                                      header, val)


@pytest.mark.parametrize("name, approximation", [("forest", "exact"),
                                                 ("hgb", "leaf_influence")])
def test_value_influence_of_tree_models(iris_split, name, approximation):
    from skinfluence.cli._columns import load_validation
    from skinfluence.valuation import InfluenceValuation

    train, val = iris_split
    proc = run("value", train, "-t", "species", "--model", name, "--method", "influence",
               "--validation", val, "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert ("regrown exactly" if name == "forest" else "LeafInfluence") in proc.stderr
    _, rows = read_out(proc.stdout)
    got = np.empty(len(rows))
    got[[int(r[-3]) for r in rows]] = [float(r[-2]) for r in rows]
    _, plan, X, y, _ = load_table(str(train), "species")
    _, X_val, y_val = load_validation(str(val), plan)
    iv = InfluenceValuation(make_model(name)).fit(X, y, X_val=X_val, y_val=y_val)
    assert iv.influence_.approximation_ == approximation
    np.testing.assert_allclose(got, iv.values_, rtol=1e-9, atol=1e-12 * np.abs(got).max())
    if name == "forest":
        # exact: the rise of the mean validation log-loss when the forest is regrown
        # without the row on its own bootstrap draws (clipped as sklearn's log_loss)
        forest = make_model("forest").fit(X, y)
        codes = np.searchsorted(forest.classes_, y_val)
        eps = np.finfo(np.float64).eps

        def loss(P):
            return -np.log(np.clip(P[np.arange(len(codes)), codes], eps, 1 - eps)).mean()

        base = loss(forest.predict_proba(X_val))
        for j in (int(np.argmin(got)), int(np.argmax(got))):
            refit = loss(_same_draws_refit(forest, X, y, j, X_val, proba=True))
            assert got[j] == pytest.approx(refit - base, rel=1e-9, abs=1e-12)


def test_value_influence_needs_a_validation_file(iris_split):
    proc = run("value", iris_split[0], "-t", "species", "--model", "hgb", "--method",
               "influence")
    assert proc.returncode != 0
    assert "--method influence scores the model on a validation set" in proc.stderr
    assert "--validation" in proc.stderr
