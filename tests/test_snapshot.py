"""Every estimator's outputs on fixed small inputs match the saved snapshot.

The proof that an internal change (the redesign of issue #14) moved no
number: ``tests/snapshot/outputs.py`` recomputes the outputs of every case and
each is compared with ``tests/snapshot/outputs.npz`` (see
``tests/snapshot/make_snapshot.py`` for when, and only when, to regenerate it).

Integer, boolean and string arrays must be equal.  Floats must agree to
``rtol=1e-12`` plus ``atol=1e-12 * max|saved array|``: the computation runs on
one BLAS thread, so run to run it is bit-identical, but a refactoring may
legitimately regroup a sum (one GEMM instead of two, another BLAS kernel on
another CPU), which changes the last bits of a result -- about 1e-16 relative
per operation, amplified by the conditioning of the problem.  The absolute
part, relative to the array's scale, covers entries that are tiny only through
cancellation (an influence of 1e-18 next to ones of 1e-2).  Anything larger
is a changed number.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "snapshot"
SNAPSHOT = HERE / "outputs.npz"

_spec = importlib.util.spec_from_file_location("skinfluence_snapshot_outputs",
                                               HERE / "outputs.py")
outputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(outputs)

RTOL = 1e-12

pytestmark = pytest.mark.snapshot


@pytest.fixture(scope="module")
def saved():
    """``{case name (None: no registered case): {key: saved array}}``."""
    by_case = {}
    with np.load(SNAPSHOT) as f:
        for key in f.files:
            name = "_meta" if key.startswith("_meta/") else outputs.case_of(key)
            by_case.setdefault(name, {})[key] = f[key]
    return by_case


def _meta(saved):
    versions = saved.get("_meta", {}).get("_meta/versions")
    return "" if versions is None else " (snapshot made with " + ", ".join(versions) + ")"


def assert_same(key, new, old):
    """Raise AssertionError naming ``key`` if ``new`` is not ``old`` (see the module doc)."""
    assert new.shape == old.shape, f"{key}: shape {new.shape}, saved {old.shape}"
    floating = old.dtype.kind in "fc"
    assert (new.dtype.kind in "fc") == floating and (floating or new.dtype == old.dtype), (
        f"{key}: dtype {new.dtype}, saved {old.dtype}")
    if not floating:
        np.testing.assert_array_equal(new, old, err_msg=key)
        return
    finite = np.abs(old[np.isfinite(old)])
    scale = float(finite.max()) if finite.size else 0.0
    np.testing.assert_allclose(new, old, rtol=RTOL, atol=RTOL * scale, equal_nan=True,
                               err_msg=key)


def test_every_saved_key_belongs_to_a_case(saved):
    orphans = sorted(saved.get(None, {}))
    assert not orphans, f"saved keys of no registered case: {orphans[:20]}"
    empty = sorted(name for name in outputs.CASES if name not in saved)
    assert not empty, f"cases with no saved outputs (regenerate with a reason): {empty}"


@pytest.mark.parametrize("name", sorted(outputs.CASES))
def test_outputs_match_snapshot(name, saved):
    new = outputs.compute_case(name)
    old = saved.get(name, {})
    missing, extra = sorted(set(old) - set(new)), sorted(set(new) - set(old))
    assert not missing and not extra, (
        f"{name}: keys no longer computed {missing}; keys not in the snapshot {extra}")
    failures = []
    for key in sorted(old):
        try:
            assert_same(key, new[key], old[key])
        except AssertionError as exc:
            failures.append(str(exc).strip())
    assert not failures, "\n\n".join(failures) + _meta(saved)


def test_comparison_catches_small_changes():
    """The comparison itself: last-bit noise passes, a 1e-10 change or a flipped index fails."""
    a = np.array([1.0, -2.5, 3e-18, np.nan])
    assert_same("k", a * (1 + 1e-15), a)
    with pytest.raises(AssertionError, match="k"):
        assert_same("k", a * (1 + 1e-10), a)
    with pytest.raises(AssertionError):
        assert_same("k", np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(AssertionError):
        assert_same("k", np.array(["a"]), np.array(["b"]))
    with pytest.raises(AssertionError):
        assert_same("k", a[:3], a)
