"""Small knowledge-graph benchmarks shipped inside the package.

Nations, Kinships and UMLS as distributed by PyKEEN (MIT licence): one
tab-separated ``head<TAB>relation<TAB>tail`` triple per line, split into
``train.txt``, ``valid.txt`` and ``test.txt``.
"""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_nations", "load_kinships", "load_umls"]

_DESCR = {
    "nations": (
        "Nations: 14 countries and 55 relations between them (trade, treaties, "
        "diplomacy, ...), 1992 triples."
    ),
    "kinships": (
        "Kinships: kinship terms of the Alyawarra (104 people, 25 relations), "
        "10686 triples."
    ),
    "umls": (
        "UMLS: 135 biomedical concepts of the Unified Medical Language System "
        "semantic network, 46 relations, 6529 triples."
    ),
}


def _read_split(name, split):
    path = resources.files("skinfluence.datasets") / "data" / name / f"{split}.txt"
    rows = []
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n\r")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise ValueError(
                    f"{name}/{split}.txt line {lineno}: expected 3 tab-separated "
                    f"fields (head, relation, tail), got {len(parts)}"
                )
            rows.append(parts)
    return rows


def _load(name, return_X_y=False):
    splits = {s: _read_split(name, s) for s in ("train", "valid", "test")}
    # ids are assigned over all splits, sorted by name, so that they do not
    # depend on the order of the files and valid/test ids are always in range
    entities = sorted({r[0] for rows in splits.values() for r in rows}
                      | {r[2] for rows in splits.values() for r in rows})
    relations = sorted({r[1] for rows in splits.values() for r in rows})
    ent_id = {e: i for i, e in enumerate(entities)}
    rel_id = {r: i for i, r in enumerate(relations)}
    arrays = {}
    for split, rows in splits.items():
        arr = np.empty((len(rows), 3), dtype=np.int64)
        for k, (h, r, t) in enumerate(rows):
            arr[k] = ent_id[h], rel_id[r], ent_id[t]
        arrays[split] = arr
    if return_X_y:
        return arrays["train"], arrays["valid"], arrays["test"]
    return Bunch(
        train=arrays["train"],
        valid=arrays["valid"],
        test=arrays["test"],
        entity_names=np.asarray(entities, dtype=object),
        relation_names=np.asarray(relations, dtype=object),
        n_entities=len(entities),
        n_relations=len(relations),
        DESCR=_DESCR[name],
    )


def load_nations(*, return_X_y=False):
    """Load the Nations knowledge graph (14 entities, 55 relations).

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(train, valid, test)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``train``, ``valid``, ``test``: int64 arrays of shape ``(n, 3)`` with
        ``(head, relation, tail)`` ids; ``entity_names``, ``relation_names``:
        arrays mapping ids to names; ``n_entities``, ``n_relations``: counts
        over all three splits (pass them to the estimators so that ids absent
        from ``train`` stay in range); ``DESCR``.

    Examples
    --------
    >>> from skinfluence.datasets import load_nations
    >>> data = load_nations()
    >>> data.train.shape, data.n_entities, data.n_relations
    ((1592, 3), 14, 55)
    """
    return _load("nations", return_X_y)


def load_kinships(*, return_X_y=False):
    """Load the Kinships knowledge graph (104 entities, 25 relations).

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(train, valid, test)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_nations`.

    Examples
    --------
    >>> from skinfluence.datasets import load_kinships
    >>> data = load_kinships()
    >>> data.train.shape, data.n_entities, data.n_relations
    ((8544, 3), 104, 25)
    """
    return _load("kinships", return_X_y)


def load_umls(*, return_X_y=False):
    """Load the UMLS knowledge graph (135 entities, 46 relations).

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(train, valid, test)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_nations`.

    Examples
    --------
    >>> from skinfluence.datasets import load_umls
    >>> data = load_umls()
    >>> data.train.shape, data.n_entities, data.n_relations
    ((5216, 3), 135, 46)
    """
    return _load("umls", return_X_y)
