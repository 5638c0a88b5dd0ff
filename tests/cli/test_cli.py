"""The ``skinfluence`` command line, run as a subprocess on generated and bundled CSVs.

Results are checked against the library called directly on the same features
(the CLI must not change the numbers), and bad inputs must give exit code 2
with a message naming the problem and no traceback.
"""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skinfluence.cli import make_model
from skinfluence.cli._columns import infer_columns, load_table
from skinfluence.cli._tabular import DataError, read_csv

# One BLAS thread per subprocess: the problems are small and pytest -n 2 already uses both cores.
ENV = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning", MPLBACKEND="Agg",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run(*args, stdin=None, timeout=300):
    """``python -m skinfluence ARGS`` -> CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "skinfluence", *map(str, args)],
        capture_output=True, text=True, input=stdin, timeout=timeout, env=ENV,
    )


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_out(path_or_text):
    text = Path(path_or_text).read_text() if not isinstance(path_or_text, str) else path_or_text
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)


@pytest.fixture(scope="module")
def shop_csv(tmp_path_factory):
    """Mixed-type customer table with 10% flipped string labels.

    Columns: a unique customer code (identifier), a row counter, numbers with
    missing cells, a categorical city, and the label.
    """
    rng = np.random.default_rng(0)
    n = 160
    income = rng.normal(0, 1, n)
    age = rng.integers(18, 80, n)
    city = rng.choice(["Paris", "Lyon", "Nice"], n)
    clean = np.where(income + 0.5 * (city == "Nice") > 0.2, "buyer", "browser")
    flip = np.zeros(n, dtype=bool)
    flip[rng.choice(n, 16, replace=False)] = True
    label = np.where(flip, np.where(clean == "buyer", "browser", "buyer"), clean)
    rows = []
    for i in range(n):
        inc = "" if i % 23 == 5 else f"{income[i]:.3f}"
        rows.append([f"C-{i * 7919 % 10007:05d}", str(i + 1), str(age[i]), city[i], inc, label[i]])
    path = write_csv(tmp_path_factory.mktemp("data") / "shop.csv",
                     ["customer", "n", "age", "city", "income", "status"], rows)
    return path, flip, label


# ----------------------------------------------------------------- CSV -> features
def test_column_roles_and_features(shop_csv):
    path, _, label = shop_csv
    table, plan, X, y, notes = load_table(str(path), "status")
    assert plan.identifiers == ["customer", "n"]
    assert plan.numeric == ["age", "income"] and plan.categorical == ["city"]
    # 2 scaled numbers + 3 one-hot cities; every column finite
    assert X.shape == (160, 5) and np.isfinite(X).all()
    np.testing.assert_allclose(X[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X[:, 2:].sum(axis=1), 1)
    assert list(y) == list(label)
    assert any("missing" in note for note in notes)


def test_numeric_labels_are_normalised(tmp_path):
    p = write_csv(tmp_path / "a.csv", ["x", "y"], [[1, "1"], [2, "1.0"], [3, "0"], [4, "0.0"],
                                                   [5.5, "1"], [2, "0"]])
    _, _, _, y, _ = load_table(str(p), "y")
    assert sorted(set(y)) == ["0", "1"]


def test_junk_and_identifier_detection(tmp_path):
    rows = [[str(i), f"{i * 0.5}", "x" if i % 2 else "y"] for i in range(20)]
    rows[3][1] = "oops"
    table = read_csv(str(write_csv(tmp_path / "j.csv", ["lbl", "v", "c"], rows)))
    with pytest.raises(DataError, match=r"column 'v' holds numbers except for 1 cell.*'oops'"):
        infer_columns(table, "c")
    plan = infer_columns(table, "c", categorical=["v"])
    assert plan.categorical == ["v"]
    # a sorted integer column looks like a row counter unless declared numeric
    assert infer_columns(table, "v", categorical=["v"]).identifiers == ["lbl"]
    assert infer_columns(table, "v", categorical=["v"], numeric=["lbl"]).numeric == ["lbl"]
    # a mostly-text column with distinct values is an identifier, not 20 one-hot columns
    rows = [[f"name {i}", str(i % 3), "x" if i % 2 else "y"] for i in range(20)]
    table = read_csv(str(write_csv(tmp_path / "k.csv", ["who", "v", "c"], rows)))
    plan = infer_columns(table, "c")
    assert plan.identifiers == ["who"] and plan.numeric == ["v"]


# ----------------------------------------------------------------- help and usage
def test_help_version_and_usage_codes():
    proc = run("--help")
    assert proc.returncode == 0
    for cmd in ("demo", "label-issues", "explain", "value", "exit codes"):
        assert cmd in proc.stdout
    proc = run("label-issues", "--help")
    assert proc.returncode == 0 and "--target" in proc.stdout and "cross_val" in proc.stdout
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("skinfluence ")
    assert run("frobnicate").returncode == 2
    assert_user_error(run("label-issues", "x.csv"), "--target")  # missing required option
    assert_user_error(run("explain", "x.csv", "--target", "y", "--row", "two"), "invalid int")


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("skinfluence")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not pip-installed)")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0 and "skinfluence" in proc.stdout


# ----------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "name, content, args, fragments",
    [
        ("missing.csv", None, ["--target", "y"], ["no such file"]),
        ("empty.csv", "", ["--target", "y"], ["is empty"]),
        ("blank.csv", "\n\n  \n", ["--target", "y"], ["is empty"]),
        ("seps.csv", ",,,\n , ,\n", ["--target", "y"], ["is empty"]),
        ("header.csv", "a,b,y\n", ["--target", "y"], ["no data rows"]),
        ("col.csv", "a,b,y\n1,2,0\n2,1,1\n", ["--target", "label"],
         ["no column named 'label'", "Columns are: a, b, y"]),
        ("one.csv", "a,b,y\n1,2,cat\n2,1,cat\n3,3,cat\n", ["--target", "y"],
         ["single class ('cat')"]),
        ("junk.csv", "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12))
         .replace("5,2,1", "5,n.a.,1"), ["--target", "y"],
         ["column 'b' holds numbers except for 1 cell", "'n.a.'", "data rows 5"]),
        ("ragged.csv", "a,b,y\n1,2,0\n1,2\n", ["--target", "y"], ["line 3", "2 fields"]),
        ("nolabel.csv", "a,b,y\n1,2,0\n2,1,\n3,1,1\n", ["--target", "y"],
         ["target column 'y' is empty in 1 row", "data rows 1"]),
        ("nofeat.csv", "id,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)), ["--target", "y"],
         ["no usable feature columns"]),
        ("single.csv", "a,y\n1,0\n2,0\n3,1\n", ["--target", "y"], ["single row", "'1' (1)"]),
        ("binary.csv", b"\x00\x01\x02PK", ["--target", "y"], ["binary file"]),
        # a continuous target is a regression target unless --task classification says not
        ("continuous.csv", "a,y\n" + "".join(f"{i % 7},{i * 0.37:.2f}\n" for i in range(60)),
         ["--target", "y", "--task", "classification"],
         ["60 distinct values in 60 rows", "--task regression"]),
    ],
)
def test_bad_inputs_exit_2_with_message(tmp_path, name, content, args, fragments):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    proc = run("label-issues", path, *args)
    assert_user_error(proc, *fragments)
    assert proc.stderr.splitlines()[-1].startswith("skinfluence label-issues: error: ")


def test_row_out_of_range(shop_csv):
    path, _, _ = shop_csv
    assert_user_error(run("explain", path, "--target", "status", "--row", 160),
                      "out of range", "0 to 159")
    # rows do not count from the end: -1 is an error, not silently the last row
    proc = run("explain", path, "--target", "status", "--row", -1)
    assert_user_error(proc, "--row -1 is out of range", "0 to 159")
    assert "fitting" not in proc.stderr
    assert_user_error(run("label-issues", path, "--target", "status", "--method", "loss",
                          "--plot", Path(path).parent / "no" / "such" / "dir.png"),
                      "cannot save the plot")


@pytest.mark.parametrize("where", ["under_a_file", "missing_dir", "a_directory"])
def test_unwritable_output_fails_before_the_work(shop_csv, tmp_path, where):
    path, _, _ = shop_csv
    (tmp_path / "afile").write_text("not a directory")
    out = {"under_a_file": tmp_path / "afile" / "out.csv",
           "missing_dir": tmp_path / "no" / "such" / "out.csv",
           "a_directory": tmp_path}[where]
    proc = run("label-issues", path, "--target", "status", "--output", out)
    assert_user_error(proc, f"cannot write {out}")
    # nothing was read or computed first
    assert "read 160 rows" not in proc.stderr and proc.stdout == ""
    assert (tmp_path / "afile").read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    picture = tmp_path if where == "a_directory" else out.with_suffix(".png")
    proc = run("value", path, "--target", "status", "--plot", picture)
    assert_user_error(proc, f"cannot save the plot to {picture}")
    assert "read 160 rows" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_no_partial_file(shop_csv, tmp_path, monkeypatch, capsys, existing):
    import errno

    from skinfluence import cli
    from skinfluence.cli import _render

    path, _, _ = shop_csv
    out = tmp_path / "ranked.csv"
    if existing:
        out.write_text("an earlier result\n")
    real_writer = csv.writer

    class FullDisk:
        """A csv writer that writes 20 rows, then fails like a full disk."""

        def __init__(self, fh, **kwargs):
            self.writer = real_writer(fh, **kwargs)

        def writerow(self, row):
            self.writer.writerow(row)

        def writerows(self, rows):
            self.writer.writerows(list(rows)[:20])
            raise OSError(errno.ENOSPC, "No space left on device")

    argv = ["label-issues", str(path), "-t", "status", "--method", "loss", "-q", "-o", str(out)]
    monkeypatch.setattr(_render.csv, "writer", FullDisk)
    assert cli.main(argv) == 2
    assert "cannot write" in capsys.readouterr().err
    if existing:  # the earlier file is untouched
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ranked.csv"]
        assert out.read_text() == "an earlier result\n"
    else:  # no partial file, no temporary file
        assert list(tmp_path.iterdir()) == []
    # a write that succeeds replaces the file whole, with the usual permissions
    monkeypatch.setattr(_render.csv, "writer", real_writer)
    assert cli.main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranked.csv"]
    assert len(read_out(out)[1]) == 160
    umask = os.umask(0)
    os.umask(umask)
    if not existing:
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------- label-issues
def test_label_issues_output_and_fidelity(shop_csv, tmp_path):
    from skinfluence import InfluenceCleaner

    path, flip, label = shop_csv
    out = tmp_path / "ranked.csv"
    proc = run("label-issues", path, "--target", "status", "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert "not used as a feature" in proc.stderr and "'customer'" in proc.stderr
    header, rows = read_out(out)
    original_header, original_rows = read_out(path)
    assert header == original_header + ["row", "score", "given_label", "suggested_label", "issue"]
    assert len(rows) == 160
    # every original cell is passed through unchanged
    for r in rows:
        assert r[:6] == original_rows[int(r[6])]
    scores = np.array([float(r[7]) for r in rows])
    assert np.all(np.diff(scores) <= 0)  # ranked by suspicion
    # the same numbers as the library on the same features
    _, _, X, y, _ = load_table(str(path), "status")
    cleaner = InfluenceCleaner(make_model("logistic")).fit(X, y)
    order = [int(r[6]) for r in rows]
    # (tolerance: the fits converge to 1e-8 but BLAS threading differs between the processes)
    np.testing.assert_allclose(scores, cleaner.scores_[order], rtol=1e-5, atol=1e-8)
    assert [r[9] for r in rows] == [str(s) for s in cleaner.suggested_labels_[order]]
    assert [r[8] for r in rows] == list(label[order])
    # and it finds the flips: the 16 most suspicious rows hold most of the 16 flipped ones
    assert flip[order[:16]].mean() >= 0.6


def test_label_issues_to_stdout_keeps_messages_on_stderr(shop_csv):
    path, _, _ = shop_csv
    proc = run("label-issues", path, "-t", "status", "-o", "-", "--method", "loss")
    assert proc.returncode == 0, proc.stderr
    header, rows = read_out(proc.stdout)
    assert header[-5:] == ["row", "score", "given_label", "suggested_label", "issue"]
    assert len(rows) == 160
    assert "look mislabelled" in proc.stderr


def test_label_issues_on_bundled_iris(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = [[f"{v:.1f}" for v in x] + [iris.target_names[t]] for x, t in
            zip(iris.data, iris.target)]
    rows[10][-1] = "virginica"  # a setosa labelled virginica
    path = write_csv(tmp_path / "iris.csv", iris.feature_names + ["species"], rows)
    proc = run("label-issues", path, "--target", "species", "--show", 3)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("most suspicious 3 rows:")[1].splitlines()
    first = table[3].split()
    assert first[0] == "10" and first[2:4] == ["virginica", "setosa"]


# ----------------------------------------------------------------- explain and value
def test_explain_matches_library(shop_csv, tmp_path):
    from skinfluence import InfluenceFunctions

    path, _, _ = shop_csv
    out = tmp_path / "why.csv"
    proc = run("explain", path, "--target", "status", "--row", 7, "-k", 4, "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert "most helpful training rows" in proc.stdout
    header, rows = read_out(out)
    assert header[:4] == ["kind", "rank", "row", "influence"]
    assert [r[0] for r in rows] == ["helpful"] * 4 + ["harmful"] * 4

    _, _, X, y, _ = load_table(str(path), "status")
    inf = InfluenceFunctions(make_model("logistic")).fit(X, y)
    pred = inf.predict(X[7:8])
    effect = inf.transform(X[7:8], pred)[0]
    rows_ = np.array([int(r[2]) for r in rows])
    np.testing.assert_allclose([float(r[3]) for r in rows], effect[rows_], rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(rows_[:4], np.argsort(-effect, kind="stable")[:4])
    np.testing.assert_array_equal(rows_[4:], np.argsort(effect, kind="stable")[:4])


def test_explain_regression_target(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    t = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=40)
    path = write_csv(tmp_path / "reg.csv", ["a", "b", "c", "price"],
                     [list(map(str, x)) + [str(v)] for x, v in zip(X, t)])
    out = tmp_path / "why.csv"
    proc = run("explain", path, "--target", "price", "--row", 39, "--regression", "-k", 2,
               "-o", out, "--plot", tmp_path / "why.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "why.png").stat().st_size > 1000
    assert "row 39" in proc.stdout and "lower the prediction most" in proc.stdout
    # --regression is the deprecated spelling of --task regression
    assert "--regression is deprecated" in proc.stderr and "task: regression" in proc.stderr
    # contribution of j = prediction with j - prediction of the ridge refit without j, with
    # the alpha of the smallest exact leave-one-out error (the default regression model)
    from sklearn.linear_model import Ridge

    from skinfluence.linalg import ridge_loo_path

    header, rows = read_out(out)
    assert header[:4] == ["kind", "rank", "row", "effect"]
    assert [r[0] for r in rows] == ["raises", "raises", "lowers", "lowers"]
    _, _, Xf, y, _ = load_table(str(path), "price", task="regression")
    alpha = ridge_loo_path(Xf, y).alpha
    assert f"alpha = {alpha:.4g}, chosen by exact leave-one-out" in proc.stderr
    full = Ridge(alpha=alpha).fit(Xf, y).predict(Xf[-1:])[0]
    for r in rows:
        j = int(r[2])
        keep = np.arange(40) != j
        refit = Ridge(alpha=alpha).fit(Xf[keep], y[keep]).predict(Xf[-1:])[0]
        assert float(r[3]) == pytest.approx(full - refit, rel=1e-6, abs=1e-12)
    assert float(rows[0][3]) > 0 > float(rows[-1][3])


def test_explain_kernel_ridge_is_exact(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    t = np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=40)
    path = write_csv(tmp_path / "reg.csv", ["a", "b", "c", "price"],
                     [list(map(str, x)) + [str(v)] for x, v in zip(X, t)])
    out = tmp_path / "why.csv"
    proc = run("explain", path, "--target", "price", "--row", 5, "--model", "kernel-ridge",
               "-k", 2, "-o", out)
    assert proc.returncode == 0, proc.stderr
    # contribution of j = prediction with j - prediction of the kernel ridge refit without j
    from sklearn.kernel_ridge import KernelRidge

    header, rows = read_out(out)
    assert header[:4] == ["kind", "rank", "row", "effect"]
    _, _, Xf, y, _ = load_table(str(path), "price", task="regression")
    full = KernelRidge(alpha=1.0, kernel="rbf").fit(Xf, y).predict(Xf[5:6])[0]
    for r in rows:
        j = int(r[2])
        keep = np.arange(40) != j
        refit = KernelRidge(alpha=1.0, kernel="rbf").fit(Xf[keep], y[keep]).predict(Xf[5:6])[0]
        assert float(r[3]) == pytest.approx(full - refit, rel=1e-6, abs=1e-12)
    proc = run("explain", path, "--target", "price", "--row", 5, "--model", "kernel-ridge",
               "-k", 2, "-o", "-")
    assert proc.returncode == 0, proc.stderr


def test_explain_lasso_is_exact(tmp_path):
    """--model lasso: alpha from LassoCV, effects equal to the Lasso refits without each row."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 6))
    t = 2.0 * X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=60)
    path = write_csv(tmp_path / "reg.csv", ["a", "b", "c", "d", "e", "f", "price"],
                     [list(map(str, x)) + [str(v)] for x, v in zip(X, t)])
    out = tmp_path / "why.csv"
    proc = run("explain", path, "--target", "price", "--row", 3, "--model", "lasso",
               "-k", 3, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "lasso with alpha" in proc.stderr + proc.stdout
    from sklearn.linear_model import Lasso

    from skinfluence.cli._models import lasso_alpha

    header, rows = read_out(out)
    assert header[:4] == ["kind", "rank", "row", "effect"]
    _, _, Xf, y, _ = load_table(str(path), "price", task="regression")
    model = Lasso(alpha=lasso_alpha(Xf, y), tol=1e-10, max_iter=100_000)
    assert np.any(model.fit(Xf, y).coef_ == 0)  # a sparse fit
    full = model.fit(Xf, y).predict(Xf[3:4])[0]
    for r in rows:
        j = int(r[2])
        keep = np.arange(60) != j
        refit = model.fit(Xf[keep], y[keep]).predict(Xf[3:4])[0]
        assert float(r[3]) == pytest.approx(full - refit, rel=1e-6, abs=1e-9)


def test_explain_lasso_classification_matches_library(shop_csv, tmp_path):
    """--model lasso on class labels: L1 logistic regression (saga), as the library gives."""
    from skinfluence import InfluenceFunctions

    path, _, _ = shop_csv
    out = tmp_path / "why.csv"
    proc = run("explain", path, "--target", "status", "--row", 7, "-k", 3, "--model", "lasso",
               "--alpha", 10, "--output", out)
    assert proc.returncode == 0, proc.stderr
    header, rows = read_out(out)
    _, _, X, y, _ = load_table(str(path), "status")
    model = make_model("lasso", alpha=10.0)
    assert model.l1_ratio == 1.0 and model.C == 0.1
    inf = InfluenceFunctions(model).fit(X, y)
    assert np.any(inf.estimator_.coef_ == 0)
    effect = inf.transform(X[7:8], inf.predict(X[7:8]))[0]
    rows_ = np.array([int(r[2]) for r in rows])
    np.testing.assert_allclose([float(r[3]) for r in rows], effect[rows_], rtol=1e-5, atol=1e-8)


def test_value_matches_library(shop_csv, tmp_path):
    from skinfluence import KNNShapley

    path, flip, _ = shop_csv
    out = tmp_path / "values.csv"
    picture = tmp_path / "values.png"
    proc = run("value", path, "--target", "status", "--output", out, "--plot", picture)
    assert proc.returncode == 0, proc.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header, rows = read_out(out)
    assert header[-3:] == ["row", "value", "rank"]
    values = np.array([float(r[-2]) for r in rows])
    assert np.all(np.diff(values) >= 0)  # least valuable first
    _, _, X, y, _ = load_table(str(path), "status")
    expected = KNNShapley(n_neighbors=5).fit(X, y).values_
    order = [int(r[-3]) for r in rows]
    np.testing.assert_allclose(values, expected[order], rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- demo
def test_demo_runs_end_to_end():
    proc = run(timeout=600)  # `python -m skinfluence` without arguments is the demo
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1. Finding the flipped labels" in out
    assert "2. Why does the model" in out
    assert "3. Data values" in out
    assert "done in" in out


def test_value_loo_with_validation_file(shop_csv, tmp_path):
    from skinfluence import LOOValuation
    from skinfluence.cli._columns import load_validation

    path, _, _ = shop_csv
    header, rows = read_out(path)
    train = write_csv(tmp_path / "train.csv", header, rows[:60])
    val = write_csv(tmp_path / "val.csv", header, rows[100:])
    assert_user_error(run("value", train, "-t", "status", "--method", "loo"),
                      "--method loo scores the model on a validation set", "--validation")
    out = tmp_path / "loo.csv"
    proc = run("value", train, "-t", "status", "--method", "loo", "--validation", val, "-o", out)
    assert proc.returncode == 0, proc.stderr
    _, out_rows = read_out(out)
    _, plan, X, y, _ = load_table(str(train), "status")
    _, X_val, y_val = load_validation(str(val), plan)
    assert X_val.shape == (60, X.shape[1])
    expected = LOOValuation(make_model("logistic")).fit(X, y, X_val=X_val, y_val=y_val).values_
    got = np.empty(60)
    got[[int(r[-3]) for r in out_rows]] = [float(r[-2]) for r in out_rows]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_semicolon_csv_keeps_its_dialect_and_typos_get_a_hint(tmp_path):
    rng = np.random.default_rng(7)
    lines = ["code;x;colour;Kind"] + [
        f"{rng.integers(10**6)}-{i};{rng.normal():.3f};{'red' if i % 3 else 'blue'};"
        f"{'a' if i % 2 else 'b'}" for i in range(30)
    ]
    path = tmp_path / "semi.csv"
    path.write_text("\n".join(lines) + "\n")
    assert_user_error(run("value", path, "--target", "kind"), "Did you mean 'Kind'?")
    proc = run("value", path, "--target", "Kind", "-o", "-", "-q")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "code;x;colour;Kind;row;value;rank"
    assert len(out) == 31 and all(line.count(";") == 6 for line in out)


def _mixed_rows(n=90, seed=11):
    """Rows of (height, weight, count, colour, label): decimals with signs, an integer
    column, a missing cell and a category."""
    rng = np.random.default_rng(seed)
    h, w = rng.normal(size=n), rng.normal(size=n)
    count = rng.integers(0, 9, n)
    colour = rng.choice(["red", "green"], n)
    label = np.where(h - 0.7 * w + 0.2 * (colour == "red") + 0.4 * rng.normal(size=n) > 0,
                     "pos", "neg")
    rows = [[f"{h[i]:.4f}", "" if i == 4 else f"{w[i]:.3f}", str(count[i]), colour[i],
             label[i]] for i in range(n)]
    return ["height", "weight", "count", "colour", "label"], rows


def test_decimal_commas_are_numbers(tmp_path):
    header, rows = _mixed_rows()
    dot = write_csv(tmp_path / "dot.csv", header, rows)
    comma = tmp_path / "comma.csv"
    comma.write_text("\n".join(";".join(r) for r in [header] + [
        [c.replace(".", ",") for c in row] for row in rows]) + "\n")
    assert "-0,".encode() in comma.read_bytes()
    for command in (["label-issues", "--method", "loss"], ["value"]):
        ref = run(*command[:1], dot, "-t", "label", *command[1:], "-o", "-")
        got = run(*command[:1], comma, "-t", "label", *command[1:], "-o", "-")
        assert ref.returncode == 0 and got.returncode == 0, (ref.stderr, got.stderr)
        assert "separator ';' (guessed), decimal mark ',' (guessed from column(s) height, " \
               "weight)" in got.stderr
        # the same features: 3 numbers + 2 one-hot colours, as with decimal points
        assert "4 feature column(s) -> 5 model input(s)" in ref.stderr
        assert "4 feature column(s) -> 5 model input(s)" in got.stderr
        # and the same result, in the input's dialect (the cells parse to the same floats)
        ref_rows = list(csv.reader(io.StringIO(ref.stdout)))
        got_rows = list(csv.reader(io.StringIO(got.stdout), delimiter=";"))
        assert len(got_rows) == len(ref_rows) == 91
        assert [[c.replace(",", ".") for c in r] for r in got_rows] == ref_rows
    # --decimal overrides the guess
    proc = run("value", comma, "-t", "label", "--decimal", ".", "--sep", ";", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert "separator ';' (given), decimal mark '.' (given)" in proc.stderr
    assert "-> 5 model input(s)" not in proc.stderr  # the decimals are text again


def test_decimal_guess_never_misreads_commas(tmp_path):
    header, rows = _mixed_rows(n=20)

    def table(name, text, **kwargs):
        (tmp_path / name).write_text(text)
        return read_csv(str(tmp_path / name), **kwargs)

    # a comma-separated file, even with quoted decimal commas, reads '.'
    t = table("c.csv", "a,b,y\n" + "".join(f'"{i},5",{i},x\n' for i in range(12)))
    assert (t.delimiter, t.decimal, t.header) == (",", ".", ["a", "b", "y"])
    # ... and so does a comma-separated file read with a wrong --delimiter
    t = table("c2.csv", "a,b\n" + "".join(f"{i},{i + 1}\n" for i in range(12)), delimiter=";")
    assert t.decimal == "."
    # separator ';', numbers with points, integers, and text: '.'
    t = table("p.csv", "\n".join(";".join(r) for r in [header] + rows))
    assert (t.delimiter, t.decimal, t.decimal_evidence) == (";", ".", [])
    t = table("i.csv", "a;b;y\n" + "".join(f"{i};{i % 3};x\n" for i in range(12)))
    assert (t.delimiter, t.decimal) == (";", ".")
    # commas in one column and points in another: '.', and the user is told
    text = "a;b;y\n" + "".join(f"{i},5;{i}.25;{i % 2}\n" for i in range(12))
    t = table("m.csv", text)
    assert t.decimal == "." and t.decimal_conflict == (["a"], ["b"])
    _, plan, _, _, notes = load_table(str(tmp_path / "m.csv"), "y")
    assert plan.numeric == ["b"]
    assert any("decimal commas" in n and "--decimal ," in n for n in notes)
    # tab-separated with decimal commas: ','; given explicitly, no guess
    t = table("t.csv", "a\tb\ty\n" + "".join(f"-{i},5\t{i}\tx\n" for i in range(12)))
    assert (t.delimiter, t.decimal, t.decimal_evidence) == ("\t", ",", ["a"])
    t = read_csv(str(tmp_path / "t.csv"), decimal=".")
    assert t.decimal == "." and not t.guessed["decimal"]
    # with decimal commas a point is junk (it could group thousands), named in the error
    text = "a;y\n" + "".join(f"{i},5;{i % 2}\n" for i in range(12)).replace("3,5", "3.5")
    assert_user_error(run("label-issues", table("j.csv", text).path, "-t", "y"),
                      "'3.5'", "decimal mark ','")


def test_label_issues_with_mlp(shop_csv):
    path, flip, _ = shop_csv
    proc = run("label-issues", path, "-t", "status", "--model", "mlp", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_out(proc.stdout)
    order = [int(r[6]) for r in rows]
    assert sorted(order) == list(range(160))
    # approximate for a neural net, but still far better than chance (1.6 of 16 flips)
    assert flip[order[:16]].sum() >= 8


# ----------------------------------------------------------------- classification or regression
@pytest.fixture(scope="module")
def fair_csv(tmp_path_factory):
    """A table shaped like statsmodels' ``fair`` data: a continuous target (``affairs``),
    integer ratings with few values (``rate_marriage``), and 10% of targets shifted."""
    rng = np.random.default_rng(4)
    n = 200
    rate = rng.integers(1, 6, n)
    age = rng.uniform(17.5, 42.0, n)
    yrs = np.clip(age - 18 - rng.uniform(0, 6, n), 0.5, None)
    children = rng.integers(0, 5, n).astype(float)
    clean = 2.0 - 0.45 * rate + 0.05 * yrs + 0.1 * children + 0.3 * rng.normal(size=n)
    shifted = np.zeros(n, dtype=bool)
    shifted[rng.choice(n, n // 10, replace=False)] = True
    affairs = clean + np.where(shifted, 4.0 * clean.std(), 0.0)
    rows = [[str(r), f"{a:.1f}", f"{m:.1f}", f"{c:.1f}", f"{v:.7f}"]
            for r, a, m, c, v in zip(rate, age, yrs, children, affairs)]
    path = write_csv(tmp_path_factory.mktemp("fair") / "fair.csv",
                     ["rate_marriage", "age", "yrs_married", "children", "affairs"], rows)
    return path, shifted


def _task_line(proc):
    """The task line, among the first lines of the messages."""
    lines = proc.stderr.splitlines()[:3]
    found = [line for line in lines if line.startswith("task: ")]
    assert found, proc.stderr
    return found[0]


def test_task_is_inferred_from_the_target(fair_csv, tmp_path):
    path, _ = fair_csv
    _, plan, _, y, _ = load_table(str(path), "affairs", task="auto")
    assert plan.task == "regression" and "numbers with decimals" in plan.task_reason
    assert y.dtype == np.float64
    _, plan, _, y, _ = load_table(str(path), "rate_marriage", task="auto")
    assert plan.task == "classification" and "5 distinct whole number" in plan.task_reason
    assert sorted(set(y)) == ["1", "2", "3", "4", "5"]
    # many distinct whole numbers are quantities
    rows = [[str(i % 5), str(i * 3 % 97)] for i in range(80)]
    counts = write_csv(tmp_path / "counts.csv", ["x", "visits"], rows)
    _, plan, _, _, _ = load_table(str(counts), "visits", task="auto")
    assert plan.task == "regression" and "more than 20" in plan.task_reason
    # text is always labels, even with a few numbers among it
    rows = [[str(i % 4), "other" if i % 3 else str(i)] for i in range(30)]
    text = write_csv(tmp_path / "text.csv", ["x", "kind"], rows)
    _, plan, _, _, _ = load_table(str(text), "kind", task="auto")
    assert plan.task == "classification" and "holds text" in plan.task_reason


def test_value_on_a_continuous_target(fair_csv, tmp_path):
    from skinfluence import KNNShapley

    path, shifted = fair_csv
    out = tmp_path / "values.csv"
    proc = run("value", path, "--target", "affairs", "-o", out)
    assert proc.returncode == 0, proc.stderr
    line = _task_line(proc)
    assert line.startswith("task: regression (target 'affairs' holds numbers with decimals")
    assert "--task classification" in line
    assert "predict the targets of the other rows" in proc.stderr
    _, rows = read_out(out)
    _, _, X, y, _ = load_table(str(path), "affairs", task="regression")
    expected = KNNShapley(n_neighbors=5, task="regression").fit(X, y).values_
    got = np.empty(len(y))
    got[[int(r[-3]) for r in rows]] = [float(r[-2]) for r in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # the shifted targets are among the least valuable rows
    least = [int(r[-3]) for r in rows[:20]]
    assert shifted[least].mean() >= 0.5
    # --task regression gives the same, and says it was given
    again = run("value", path, "--target", "affairs", "--task", "regression", "-o", "-")
    assert again.returncode == 0, again.stderr
    assert _task_line(again) == "task: regression (given by --task)"
    assert read_out(again.stdout)[1] == rows


def test_integer_target_with_few_values_stays_classification(fair_csv, tmp_path):
    from skinfluence import KNNShapley

    path, _ = fair_csv
    proc = run("value", path, "--target", "rate_marriage", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert _task_line(proc).startswith(
        "task: classification (target 'rate_marriage' holds 5 distinct whole number(s); "
        "--task regression")
    _, _, X, y, _ = load_table(str(path), "rate_marriage")
    _, rows = read_out(proc.stdout)
    got = np.empty(len(y))
    got[[int(r[-3]) for r in rows]] = [float(r[-2]) for r in rows]
    np.testing.assert_allclose(got, KNNShapley(n_neighbors=5).fit(X, y).values_,
                               rtol=1e-9, atol=1e-12)
    # --task regression overrides: the ratings are numbers to predict
    proc = run("value", path, "--target", "rate_marriage", "--task", "regression", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert _task_line(proc) == "task: regression (given by --task)"
    _, _, X, y, _ = load_table(str(path), "rate_marriage", task="regression")
    _, rows = read_out(proc.stdout)
    got[[int(r[-3]) for r in rows]] = [float(r[-2]) for r in rows]
    np.testing.assert_allclose(got, KNNShapley(n_neighbors=5, task="regression").fit(X, y)
                               .values_, rtol=1e-9, atol=1e-12)
    # and explain then uses the regression model by default
    proc = run("explain", path, "--target", "rate_marriage", "--task", "regression",
               "--row", 4, "-k", 2)
    assert proc.returncode == 0, proc.stderr
    assert "model: ridge regression with alpha = " in proc.stderr
    assert "training rows that raise the prediction most" in proc.stdout


def test_task_and_model_conflicts_are_explained(fair_csv):
    path, _ = fair_csv
    assert_user_error(run("explain", path, "-t", "affairs", "--row", 1, "--model", "logistic"),
                      "--model logistic is a classifier", "--task classification")
    assert_user_error(run("explain", path, "-t", "rate_marriage", "--row", 1, "--task",
                          "classification", "--model", "ridge"),
                      "--model ridge is a regression model", "--task regression")
    assert_user_error(run("explain", path, "-t", "rate_marriage", "--row", 1, "--alpha", 2),
                      "--alpha is the penalty of --model ridge")
    assert_user_error(run("value", path, "-t", "affairs", "--regression", "--task",
                          "classification"), "--regression contradicts --task classification")
    assert run("value", path, "-t", "affairs", "--alpha", "0").returncode == 2
    # --model ridge alone still means a numeric target, as before --task existed
    proc = run("explain", path, "-t", "rate_marriage", "--row", 1, "--model", "ridge",
               "--alpha", "0.5", "-q")
    assert proc.returncode == 0, proc.stderr


def test_label_issues_on_a_continuous_target(fair_csv, tmp_path):
    from sklearn.linear_model import Ridge

    from skinfluence import InfluenceCleaner
    from skinfluence.linalg import ridge_loo_path

    path, shifted = fair_csv
    out = tmp_path / "ranked.csv"
    proc = run("label-issues", path, "--target", "affairs", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert _task_line(proc).startswith("task: regression")
    assert "have a suspicious target value" in proc.stdout
    header, rows = read_out(out)
    assert header[-5:] == ["row", "score", "given_label", "suggested_label", "issue"]
    _, _, X, y, _ = load_table(str(path), "affairs", task="regression")
    cleaner = InfluenceCleaner(Ridge(alpha=ridge_loo_path(X, y).alpha)).fit(X, y)
    order = [int(r[5]) for r in rows]
    np.testing.assert_allclose([float(r[6]) for r in rows], cleaner.scores_[order],
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([float(r[8]) for r in rows],
                               np.asarray(cleaner.suggested_labels_, dtype=float)[order],
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([float(r[7]) for r in rows], y[order], rtol=1e-12)
    # the 20 most suspicious rows are mostly the 20 shifted ones
    assert shifted[order[:20]].mean() >= 0.8


def test_first_run_of_a_command_says_its_kernels_compile(shop_csv, tmp_path, monkeypatch,
                                                         capsys):
    # the note comes once per command and model, until a run of it has completed; a failed
    # run and --quiet leave it to the next run
    from skinfluence import _numba, cli

    monkeypatch.setattr(_numba, "_marker", lambda key: str(tmp_path / "used" / key))
    monkeypatch.setattr(_numba, "cache_enabled", lambda: True)
    path, _, _ = shop_csv
    args = ["label-issues", str(path), "-t", "status", "--method", "loss", "--show", "1"]
    assert cli.main(args + ["--quiet"]) == 0
    assert "compiles its numerical kernels" not in capsys.readouterr().err
    assert cli.main(["label-issues", str(path), "-t", "no_such_column"]) == 2
    assert cli.main(args) == 0
    assert "first run of this command and model compiles" in capsys.readouterr().err
    assert cli.main(args) == 0
    assert "compiles its numerical kernels" not in capsys.readouterr().err
    assert cli.main(args + ["--model", "lasso"]) == 0
    assert "compiles its numerical kernels" in capsys.readouterr().err
