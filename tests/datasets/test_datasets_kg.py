"""Bundled knowledge-graph datasets: contents match the shipped files."""

from importlib import resources

import numpy as np
import pytest

from skinfluence.datasets import load_kinships, load_nations, load_umls

SIZES = {
    load_nations: ((1592, 199, 201), 14, 55),
    load_kinships: ((8544, 1068, 1074), 104, 25),
    load_umls: ((5216, 652, 661), 135, 46),
}


@pytest.mark.parametrize("loader", list(SIZES))
def test_shapes_ids_and_names(loader):
    (n_tr, n_va, n_te), ne, nr = SIZES[loader]
    d = loader()
    assert d.train.shape == (n_tr, 3) and d.valid.shape == (n_va, 3)
    assert d.test.shape == (n_te, 3)
    assert d.n_entities == ne == len(d.entity_names)
    assert d.n_relations == nr == len(d.relation_names)
    for split in (d.train, d.valid, d.test):
        assert split.dtype == np.int64
        assert split[:, [0, 2]].min() >= 0 and split[:, [0, 2]].max() < ne
        assert split[:, 1].min() >= 0 and split[:, 1].max() < nr
    assert list(d.entity_names) == sorted(d.entity_names)
    assert isinstance(d.DESCR, str) and d.DESCR
    tr, va, te = loader(return_X_y=True)
    np.testing.assert_array_equal(tr, d.train)
    np.testing.assert_array_equal(te, d.test)


@pytest.mark.parametrize("name,loader", [("nations", load_nations),
                                         ("kinships", load_kinships),
                                         ("umls", load_umls)])
def test_round_trip_to_file_text(name, loader):
    d = loader()
    path = resources.files("skinfluence.datasets") / "data" / name / "test.txt"
    lines = [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    decoded = [[d.entity_names[h], d.relation_names[r], d.entity_names[t]]
               for h, r, t in d.test]
    assert decoded == lines
