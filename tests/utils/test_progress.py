"""The one progress helper (``skinfluence.utils._progress``), with and without tqdm."""

import sys
import types

import pytest

from skinfluence.utils import _progress
from skinfluence.utils._progress import progress, progress_bar


class _FakeTqdm:
    """Stands in for ``tqdm.auto.tqdm``: records how it was made and used."""

    made = []

    def __init__(self, iterable=None, *, total=None, desc="", leave=True):
        self.iterable, self.total, self.desc, self.leave = iterable, total, desc, leave
        self.n = 0
        self.postfix = None
        self.closed = False
        _FakeTqdm.made.append(self)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1

    def update(self, n=1):
        self.n += n

    def set_postfix(self, **values):
        self.postfix = values

    def close(self):
        self.closed = True


@pytest.fixture
def with_tqdm(monkeypatch):
    """tqdm importable (a stand-in, whether or not tqdm is installed)."""
    _FakeTqdm.made = []
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = _FakeTqdm
    package = types.ModuleType("tqdm")
    package.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    assert _progress._tqdm() is _FakeTqdm


@pytest.fixture
def without_tqdm(monkeypatch):
    """tqdm not importable (a None entry in sys.modules makes the import fail)."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert _progress._tqdm() is None


# ------------------------------------------------------------------ verbose=0
@pytest.mark.parametrize("tqdm_fixture", ["with_tqdm", "without_tqdm"])
def test_quiet_costs_nothing(request, tqdm_fixture, capsys):
    request.getfixturevalue(tqdm_fixture)
    items = [1, 2, 3]
    assert progress(items, desc="x", verbose=0) is items  # the iterable itself
    gen = (i for i in range(3))
    assert progress(gen, verbose=False) is gen
    assert progress_bar(10, desc="x", verbose=0) is None
    assert capsys.readouterr().err == ""
    if tqdm_fixture == "with_tqdm":
        assert _FakeTqdm.made == []


# ------------------------------------------------------------------ with tqdm
def test_progress_uses_tqdm_with_the_length_as_total(with_tqdm):
    out = list(progress(range(7), desc="blocks", verbose=1))
    assert out == list(range(7))
    (bar,) = _FakeTqdm.made
    assert (bar.total, bar.desc, bar.leave) == (7, "blocks", False)
    assert bar.n == 7


def test_progress_with_tqdm_explicit_total_and_no_length(with_tqdm):
    list(progress((i for i in range(4)), verbose=1))
    list(progress((i for i in range(4)), total=4, verbose=2))
    assert [bar.total for bar in _FakeTqdm.made] == [None, 4]


def test_progress_bar_uses_tqdm(with_tqdm):
    bar = progress_bar(5, desc="epochs", verbose=1)
    assert isinstance(bar, _FakeTqdm)
    assert (bar.total, bar.desc, bar.leave, bar.iterable) == (5, "epochs", False, None)
    bar.update(2)
    bar.set_postfix(loss=0.5)
    bar.close()
    assert bar.n == 2 and bar.postfix == {"loss": 0.5} and bar.closed


# ------------------------------------------------------------------ without tqdm
def test_progress_without_tqdm_prints_about_every_tenth(without_tqdm, capsys):
    out = list(progress(list(range(20)), desc="blocks", verbose=1))
    assert out == list(range(20))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10  # every 2 items of 20
    assert lines[0].startswith("blocks: 2/20 (")
    assert lines[-1].startswith("blocks: 20/20 (") and lines[-1].endswith(" s)")


def test_progress_without_tqdm_reports_the_last_item_of_an_uneven_total(without_tqdm, capsys):
    list(progress(range(7), desc="d", verbose=1))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"d: {i}/7" for i in range(1, 8)]
    list(progress(range(25), desc="d", verbose=1))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines][-1] == "d: 25/25"
    assert len(lines) == 13  # every 2 of 25, and the last


def test_progress_without_tqdm_and_without_a_total_is_silent(without_tqdm, capsys):
    assert list(progress((i for i in range(5)), verbose=1)) == list(range(5))
    assert capsys.readouterr().err == ""


def test_progress_bar_without_tqdm(without_tqdm, capsys):
    bar = progress_bar(4, desc="epochs", verbose=1)
    assert bar is not None
    bar.set_postfix(loss=0.25)
    for _ in range(4):
        bar.update()
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"epochs: {i}/4 loss=0.25" for i in range(1, 5)]


def test_progress_bar_without_tqdm_by_several_steps(without_tqdm, capsys):
    bar = progress_bar(100, desc="x", verbose=1)
    bar.update(10)
    bar.update(5)  # 15: not a multiple of the step of 10, no line
    bar.update(85)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["x: 10/100", "x: 100/100"]
