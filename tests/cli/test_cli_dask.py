"""``label-issues --dask`` and ``value --dask`` write the output of the in-memory command
(same rows in the same order, same cells; scores to 1e-10) on a file that the sample
covers, read by dask in partitions and scored on a LocalCluster."""

import os
from functools import partial

import numpy as np
import pytest

from skinfluence.cli import main

pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

pytestmark = pytest.mark.dask

N = 240


@pytest.fixture(scope="module")
def address(dask_cluster):
    return dask_cluster.scheduler_address


def _frame(seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    label = np.where(X @ [1.0, -1.0, 0.5] + 0.5 * rng.standard_normal(n) > 0, "spam", "ham")
    label[:15] = np.where(label[:15] == "spam", "ham", "spam")  # flipped labels
    color = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({"id": [f"r{i:04d}" for i in range(n)], "x0": X[:, 0].round(6),
                         "x1": X[:, 1].round(6), "color": color, "x2": X[:, 2].round(6),
                         "label": label})


def _files(tmp_path, kind):
    frame = _frame()
    if kind == "csv":
        path = tmp_path / "data.csv"
        frame.to_csv(path, index=False)
        return str(path), {}
    path = tmp_path / "data.parquet"
    os.makedirs(path)
    for i, part in enumerate(np.array_split(np.arange(N), 3)):  # 3 partitions
        frame.iloc[part].to_parquet(path / f"part.{i}.parquet", index=False)
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    return str(path), {"whole": str(whole)}


def _same_output(got_path, expected_path, numeric):
    got, expected = (pd.read_csv(p, dtype=str, keep_default_na=False)
                     for p in (got_path, expected_path))
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) == N
    for name in expected.columns:
        if name in numeric:
            np.testing.assert_allclose(got[name].astype(float), expected[name].astype(float),
                                       rtol=1e-10, atol=1e-12)
        else:
            assert (got[name] == expected[name]).all(), name


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_label_issues_dask_writes_the_in_memory_output(tmp_path, address, kind, capsys,
                                                        monkeypatch):
    import skinfluence.cli._dask as cli_dask

    # CSV read in blocks of 4 kB: 4 partitions of this file
    monkeypatch.setattr(cli_dask, "_read", partial(cli_dask._read, blocksize=4_000))
    data, extra = _files(tmp_path, kind)
    memory, lazy = tmp_path / "memory.csv", tmp_path / "lazy.csv"
    source = extra.get("whole", data)  # the in-memory command reads one file
    assert main(["label-issues", source, "--target", "label", "-o", str(memory), "-q"]) == 0
    code = main(["label-issues", data, "--target", "label", "-o", str(lazy), "-q",
                 "--scheduler", address])
    assert code == 0, capsys.readouterr().err
    _same_output(lazy, memory, numeric={"score"})
    ranked = pd.read_csv(lazy)
    assert ranked["issue"].sum() >= 10 and ranked["score"].is_monotonic_decreasing
    assert not [f for f in os.listdir(tmp_path) if "skinfluence-" in f]  # no partial file


@pytest.mark.parametrize("validation", [False, True])
def test_value_dask_writes_the_in_memory_output(tmp_path, address, validation, capsys):
    data, extra = _files(tmp_path, "parquet")
    args = []
    if validation:
        _frame(seed=1, n=40).to_csv(tmp_path / "val.csv", index=False)
        args = ["--validation", str(tmp_path / "val.csv")]
    memory, lazy = tmp_path / "memory.csv", tmp_path / "lazy.csv"
    assert main(["value", extra["whole"], "--target", "label", "-o", str(memory), "-q"]
                + args) == 0
    code = main(["value", data, "--target", "label", "-o", str(lazy), "-q", "--dask",
                 "--scheduler", address] + args)
    assert code == 0, capsys.readouterr().err
    _same_output(lazy, memory, numeric={"value"})


def test_dask_output_is_not_replaced_on_failure(tmp_path, address, capsys):
    data, _ = _files(tmp_path, "csv")
    out = tmp_path / "ranked.csv"
    out.write_text("earlier output\n")
    frame = _frame()
    frame.loc[200, "label"] = "eggs"  # a class the sample of 100 rows has not seen
    frame.to_csv(data, index=False)
    code = main(["label-issues", data, "--target", "label", "-o", str(out), "-q",
                 "--scheduler", address, "--sample", "100"])
    assert code == 2
    assert "'eggs' is not among the classes of the sample" in capsys.readouterr().err
    assert out.read_text() == "earlier output\n"
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "ranked.csv"]
    code = main(["label-issues", data, "--target", "label", "-o", "-", "--dask"])
    assert code == 2 and "give --output FILE.csv" in capsys.readouterr().err


def test_dask_output_is_written_whole_or_not_at_all(tmp_path, address, monkeypatch, capsys):
    import skinfluence.cli._dask as cli_dask

    data, _ = _files(tmp_path, "csv")
    out = tmp_path / "ranked.csv"
    out.write_text("earlier output\n")
    to_csv = pd.DataFrame.to_csv
    written = []

    def fail_on_the_second_partition(frame, *args, **kwargs):
        # the sorted output is appended partition by partition to the temporary file:
        # the first partition is on disk when the second one fails
        if written:
            raise OSError("disk full")
        written.append(len(frame))
        return to_csv(frame, *args, **kwargs)

    monkeypatch.setattr(cli_dask, "_read", partial(cli_dask._read, blocksize=4_000))
    monkeypatch.setattr(pd.DataFrame, "to_csv", fail_on_the_second_partition)
    code = main(["label-issues", data, "--target", "label", "-o", str(out), "-q",
                 "--scheduler", address])
    assert code == 1 and "disk full" in capsys.readouterr().err
    assert written and written[0] < N  # a first partition was written, not the whole
    assert out.read_text() == "earlier output\n"
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "ranked.csv"]


def test_dask_text_in_a_numeric_column_beyond_the_sample_is_an_error(tmp_path, address,
                                                                      capsys):
    frame = _frame().astype({"x1": object})
    frame.loc[150, "x1"] = "oops"  # after the sample of 100 rows, where x1 is numeric
    frame.to_csv(tmp_path / "data.csv", index=False)
    code = main(["label-issues", str(tmp_path / "data.csv"), "--target", "label", "-q",
                 "--scheduler", address, "--sample", "100"])
    assert code == 2
    assert "column 'x1' holds numbers in the sample but other values" in \
        capsys.readouterr().err
