"""Reading tables for the command line: CSV dialects, Parquet, DataFrames and column roles.

The reader keeps every cell as written (the output passes them through) and
decides the role of every column from the strings, so these tests pin the
rules on small hand-written files.
"""

import importlib.util
import io

import numpy as np
import pandas as pd
import pytest

from skinfluence.cli import main
from skinfluence.cli._columns import infer_columns, load_table, load_validation, target_values
from skinfluence.cli._tabular import DataError, read_csv, read_table, table_from_frame

HAS_PARQUET = any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet"))
needs_parquet = pytest.mark.skipif(
    not HAS_PARQUET, reason="reading Parquet needs pyarrow or fastparquet (pip install pyarrow)"
)


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def lines(*rows, sep=",", end="\n"):
    return end.join(sep.join(map(str, r)) for r in rows) + end


# ----------------------------------------------------------------- reading CSV text
def test_cells_are_kept_as_written(tmp_path):
    text = 'name,x,y\n"Doe, J", 1.5 ,a\n"say ""hi""",2,b\n'
    table = read_csv(write(tmp_path, "q.csv", text))
    assert table.header == ["name", "x", "y"] and table.n_rows == 2
    # raw cells for the output, stripped cells for the rules
    assert table.raw_rows() == [["Doe, J", " 1.5 ", "a"], ['say "hi"', "2", "b"]]
    assert list(table.column("x")) == ["1.5", "2"]
    assert table.cell(1, "name") == 'say "hi"'
    assert table.raw_rows([1, 0])[0][0] == 'say "hi"'


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_endings_bom_and_blank_records(tmp_path, end):
    rows = [("a", "b", "y")] + [(i, i % 3, "xy"[i % 2]) for i in range(6)]
    text = "\ufeff" + end + lines(*rows[:3], end=end) + end + ",," + end + "   " + end \
        + lines(*rows[3:], end=end) + end
    table = read_csv(write(tmp_path, "e.csv", text))
    assert table.header == ["a", "b", "y"]
    assert table.raw_rows() == [[str(c) for c in r] for r in rows[1:]]


def test_latin1_file(tmp_path):
    path = write(tmp_path, "l.csv", "ville,y\nNîmes,1\nSète,0\n", encoding="latin-1")
    assert list(read_csv(path).column("ville")) == ["Nîmes", "Sète"]


def test_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a;y\n1;0\n2;1\n"))
    table = read_csv("-")
    assert (table.path, table.delimiter, table.header) == ("-", ";", ["a", "y"])


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_separator_is_sniffed(tmp_path, sep):
    path = write(tmp_path, "s.csv", lines(("a", "b", "y"), (1.5, "u", 0), (2.5, "v", 1), sep=sep))
    table = read_csv(path)
    assert table.delimiter == sep and table.guessed["delimiter"]
    assert table.header == ["a", "b", "y"]


def test_given_separator(tmp_path):
    path = write(tmp_path, "s.csv", "a:b:y\n1,5:u:0\n2,5:v:1\n")
    table = read_csv(path, delimiter=":")
    assert (table.header, table.guessed["delimiter"]) == (["a", "b", "y"], False)
    assert (table.decimal, table.decimal_evidence) == (",", ["a"])
    # with a wrong separator the header is one column, and the error says so
    table = read_csv(path, delimiter=";")
    assert table.header == ["a:b:y"]
    with pytest.raises(DataError, match="read as a single column.*pass --delimiter"):
        infer_columns(table, "y")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        (" \n\n", "is empty"),
        (",,,\n,\n", "is empty"),  # nothing but separators: no header at all
        ("a,b,y\n", "has a header but no data rows"),
        ("a,b,y\n,,\n \n", "has a header but no data rows"),
        ("a,,y\n1,2,3\n", r"empty column name \(column 2\)"),
        ("a,b,a\n1,2,3\n", "duplicate column names in the header: a"),
        ("a,b,y\n1,2,0\n1,2\n", r"line 3: 2 fields but the header has 3 columns \(delimiter ','\)"),
        ("a,b,y\n1,2,0\n\n1,2,0,4\n", "line 4: 4 fields but the header has 3 columns"),
        # a quoted field over three lines: the line is where the bad record ends
        ('a,b,y\n"x\n\ny",2,0\n1,2\n', "line 5: 2 fields"),
        ('a,b,y\n1,"x" y,0\n', "line 2: not a valid CSV file.*enclose a whole field"),
        ('a,b,y\n1,"open,0\n2,3,4\n', "line 3: not a valid CSV file.*a quote is not closed"),
    ],
)
def test_unreadable_csv(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_csv(write(tmp_path, "bad.csv", text))


def test_missing_directory_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="is a directory, not a CSV file"):
        read_table(str(tmp_path))
    path = tmp_path / "b.csv"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00")  # gzip
    with pytest.raises(DataError, match="looks like a binary file"):
        read_table(str(path))


def test_header_names_are_stripped_and_one_column_files(tmp_path):
    table = read_csv(write(tmp_path, "h.csv", " a , y \n1,0\n2,1\n"))
    assert table.header == ["a", "y"]
    table = read_csv(write(tmp_path, "one.csv", "y\n1\n0\n"))
    with pytest.raises(DataError, match="single column .*'y'.*feature column"):
        infer_columns(table, "y")


# ----------------------------------------------------------------- decimal marks
def test_decimal_commas_are_guessed_only_without_comma_separators(tmp_path):
    text = lines(("x", "n", "y"), *[(f"{i},25", i % 3, "ab"[i % 2]) for i in range(8)], sep=";")
    table = read_csv(write(tmp_path, "c.csv", text))
    assert (table.decimal, table.decimal_evidence, table.guessed["decimal"]) == (",", ["x"], True)
    _, plan, X, _, _ = load_table(table.path, "y")
    assert plan.numeric == ["x", "n"]
    # the same numbers with points read to the same features
    dots = write(tmp_path, "d.csv", text.replace(",", "."))
    np.testing.assert_array_equal(load_table(dots, "y")[2], X)
    # comma-separated files always read '.': "1,25" there is two fields
    table = read_csv(write(tmp_path, "k.csv", 'x,y\n"1,25",a\n"2,5",b\n'))
    assert table.decimal == "." and not table.decimal_evidence


def test_decimal_conflict_and_given_mark(tmp_path):
    text = "a;b;y\n" + "".join(f"{i},5;{i}.25;{i % 2}\n" for i in range(8))
    path = write(tmp_path, "m.csv", text)
    table = read_csv(path)
    assert table.decimal == "." and table.decimal_conflict == (["a"], ["b"])
    _, plan, _, _, notes = load_table(path, "y")
    assert plan.numeric == ["b"] and plan.identifiers == ["a"]  # distinct text
    assert any("--decimal ," in note for note in notes)
    # given ',', a point is junk (it could group thousands), named with a hint about the mark
    text = "b;y\n" + "".join(f"{i},5;{i % 2}\n" for i in range(8)).replace("3,5", "3.5")
    with pytest.raises(DataError, match=r"column 'b' holds numbers except for 1 cell.*'3.5'.*"
                                        r"decimal mark ','"):
        load_table(write(tmp_path, "p.csv", text), "y", decimal=",")
    with pytest.raises(DataError, match="decimal mark must be"):
        read_csv(path, decimal=";")


# ----------------------------------------------------------------- column roles
def roles(tmp_path, text, target="y", **kwargs):
    plan = infer_columns(read_csv(write(tmp_path, "r.csv", text)), target, **kwargs)
    return plan


def test_column_typing_rules(tmp_path):
    n = 8
    rows = [("idx", "user_id", "code", "num", "cat", "const", "empty", "y")] + [
        (i, (i * 5) % n, f"K{i * 7 % 11}", f"{(-1) ** i * i / 4}", "pq"[i % 2], "same",
         "NA" if i % 2 else "", "yn"[i % 3 == 0]) for i in range(n)
    ]
    plan = roles(tmp_path, lines(*rows))
    assert plan.numeric == ["num"] and plan.categorical == ["cat"]
    assert plan.identifiers == ["idx", "user_id", "code"] and plan.constant == ["const", "empty"]
    assert plan.reasons == {
        "idx": "identifier: distinct increasing integers",
        "user_id": "identifier: distinct increasing integers",
        "code": "identifier: a different text in every row",
        "const": "the same value in every row",
        "empty": "empty",
    }
    # overrides
    plan = roles(tmp_path, lines(*rows), numeric=["idx"], categorical=["num"],
                 id_columns=["cat"], ignore=["user_id"])
    assert plan.numeric == ["idx"] and plan.categorical == ["num"]
    assert plan.reasons["cat"] == "given as --id-columns"
    assert plan.reasons["user_id"] == "given as --ignore"
    with pytest.raises(DataError, match=r"--ignore: no column named 'Cat'.*Did you mean 'cat'"):
        roles(tmp_path, lines(*rows), ignore=["Cat"])


def test_identifier_needs_five_rows_and_distinct_values(tmp_path):
    few = lines(("who", "x", "y"), *[(f"n{i}", i % 2, i % 2) for i in range(4)])
    assert roles(tmp_path, few).categorical == ["who"]
    many = lines(("who", "x", "y"), *[(f"n{i}", i % 2, i % 2) for i in range(5)])
    assert roles(tmp_path, many).identifiers == ["who"]
    # not increasing: an integer feature, not a row counter
    shuffled = lines(("k", "x", "y"), *[(k, i % 2, i % 2) for i, k in enumerate([3, 1, 4, 0, 2])])
    assert roles(tmp_path, shuffled).numeric == ["k", "x"]


def test_missing_markers_and_junk(tmp_path):
    cells = ["1.5", "NA", "n/a", "?", "-", "null", "None", "nan", "", "2", "3", "4"]
    text = lines(("v", "y"), *[(c, i % 2) for i, c in enumerate(cells)])
    path = write(tmp_path, "j.csv", text)
    _, plan, X, _, notes = load_table(path, "y")
    assert plan.numeric == ["v"] and X.shape == (12, 1)
    assert any("8 missing value(s) in 1 feature column(s)" in note for note in notes)
    # one stray word in 12 numbers is junk; so is an infinite value
    for bad in ("oops", "inf", "-Infinity", "1e999"):
        junk = lines(("v", "y"), *[(bad if i == 3 else i / 2, i % 2) for i in range(12)])
        with pytest.raises(DataError, match=r"column 'v' holds numbers except for 1 cell.*"
                                            r"\(data rows 3, counting from 0\).*--categorical v"):
            roles(tmp_path, junk)
    # past a quarter of text the column is categories
    text = lines(("v", "y"), *[("w" if i % 3 == 0 else i, i % 2) for i in range(12)])
    assert roles(tmp_path, text).categorical == ["v"]


def test_target_rules(tmp_path):
    labels = ["1", "1.0", "01", "0", "0.0", "+1"]
    table = read_csv(write(tmp_path, "t.csv", lines(("x", "y"),
                                                    *[(i % 3, v) for i, v in enumerate(labels)])))
    plan = infer_columns(table, "y")
    assert list(target_values(table, plan)) == ["1", "1", "1", "0", "0", "1"]
    np.testing.assert_array_equal(target_values(table, plan, task="regression"),
                                  [1, 1, 1, 0, 0, 1])
    table = read_csv(write(tmp_path, "u.csv", "x,y\n1,a\n2,\n3,b\n"))
    with pytest.raises(DataError, match="target column 'y' is empty in 1 row"):
        target_values(table, infer_columns(table, "y"))
    table = read_csv(write(tmp_path, "v.csv", "x,y\n1,a\n2,b\n3,b\n"))
    with pytest.raises(DataError, match="must hold numbers for a regression model"):
        target_values(table, infer_columns(table, "y"), task="regression")


# ----------------------------------------------------------------- DataFrames and Parquet
def frame():
    rng = np.random.default_rng(5)
    n = 30
    return pd.DataFrame({
        "key": [f"k{i}" for i in range(n)],
        "x": rng.normal(size=n).round(6),
        "count": rng.integers(0, 5, n),
        "colour": rng.choice(["red", "blue", None], n),
        "y": rng.choice(["a", "b"], n),
    })


def test_dataframe_reads_like_its_csv(tmp_path):
    df = frame()
    df.loc[3, "x"] = np.nan
    path = tmp_path / "f.csv"
    df.to_csv(path, index=False)
    table, plan, X, y, notes = load_table(df, "y")
    assert table.source == "frame" and table.path == "DataFrame"
    ref_table, ref_plan, X_ref, y_ref, ref_notes = load_table(str(path), "y")
    assert (plan.numeric, plan.categorical, plan.identifiers) == (
        ref_plan.numeric, ref_plan.categorical, ref_plan.identifiers) == (
        ["x", "count"], ["colour"], ["key"])
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert notes == ref_notes
    # floats are written so that they read back exactly; missing values are empty cells
    assert table.cell(3, "x") == "" and table.cell(0, "x") == str(float(df.loc[0, "x"]))
    _, X_val, y_val = load_validation(df.iloc[:7], plan)
    np.testing.assert_array_equal(X_val, X[:7])


def test_dataframe_errors():
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        table_from_frame(np.zeros((2, 2)))
    with pytest.raises(DataError, match="duplicate column names"):
        table_from_frame(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(DataError, match="no data rows"):
        table_from_frame(pd.DataFrame({"a": [], "y": []}))


@needs_parquet
@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".bin"])
def test_parquet_reads_like_the_dataframe(tmp_path, suffix):
    df = frame()
    path = tmp_path / f"f{suffix}"
    df.to_parquet(path, index=False)
    table, plan, X, y, _ = load_table(str(path), "y")
    assert table.source == "parquet"  # by name, or by its magic bytes
    _, plan_ref, X_ref, y_ref, _ = load_table(df, "y")
    assert plan.features == plan_ref.features
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


@needs_parquet
def test_parquet_command_line(tmp_path, capsys):
    df = frame()
    df.to_parquet(tmp_path / "f.parquet", index=False)
    df.to_csv(tmp_path / "f.csv", index=False)
    outs = []
    for name in ("f.parquet", "f.csv"):
        out = tmp_path / f"{name}.out.csv"
        assert main(["value", str(tmp_path / name), "-t", "y", "-q", "-o", str(out)]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    assert main(["value", str(tmp_path / "f.parquet"), "-t", "y", "-v"]) == 0
    assert "read as Parquet" in capsys.readouterr().err
    (tmp_path / "text.parquet").write_text("a,y\n1,0\n")
    assert main(["value", str(tmp_path / "text.parquet"), "-t", "y"]) == 2
    assert "not a readable Parquet file" in capsys.readouterr().err


def test_parquet_without_an_engine_says_what_to_install(tmp_path, monkeypatch, capsys):
    from skinfluence.cli import _tabular

    real = importlib.util.find_spec

    def find_spec(name, package=None):
        return None if name in ("pyarrow", "fastparquet") else real(name, package)

    monkeypatch.setattr(_tabular.importlib.util, "find_spec", find_spec)
    path = tmp_path / "f.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 16 + b"PAR1")
    with pytest.raises(DataError, match="needs pyarrow or fastparquet: pip install pyarrow"):
        read_table(str(path))
    assert main(["label-issues", str(path), "-t", "y"]) == 2
    err = capsys.readouterr().err
    assert "pip install pyarrow" in err and "Traceback" not in err
    with pytest.raises(DataError, match="no such file"):
        read_table(str(tmp_path / "nope.parquet"))
