"""Write ``tests/snapshot/outputs.npz``, the saved outputs ``tests/test_snapshot.py`` checks.

    python tests/snapshot/make_snapshot.py               # regenerate outputs.npz
    python tests/snapshot/make_snapshot.py -o other.npz  # write elsewhere (e.g. to diff runs)

When to regenerate: never during the internal redesign (issue #14) -- the
saved numbers are what proves it moved none.  Only when a change is *meant* to
move numbers (a bug fix, a better approximation, a new case), and then in the
same commit as that change, with the reason and the keys that moved in the
commit message.  Before committing, run the generator twice and check that
the two files are identical (``--compare``), so that the snapshot holds only
deterministic numbers.
"""

import os

# one thread everywhere, before numpy / numba load their thread pools
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # the checkout's skinfluence, not an installed one

from outputs import compute_outputs  # noqa: E402

SNAPSHOT = HERE / "outputs.npz"


def versions():
    """Library versions the snapshot was made with (saved under ``_meta/``, not compared)."""
    import numba
    import scipy
    import sklearn

    import skinfluence

    return np.array([f"{m.__name__} {m.__version__}"
                     for m in (skinfluence, np, scipy, sklearn, numba)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(SNAPSHOT))
    parser.add_argument("--compare", metavar="OTHER.npz",
                        help="after writing, list keys whose arrays differ from OTHER.npz")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    out = compute_outputs()
    seconds = time.perf_counter() - t0
    np.savez_compressed(args.output, **out, **{"_meta/versions": versions()})
    size = os.path.getsize(args.output)
    print(f"{len(out)} keys in {seconds:.1f} s -> {args.output} ({size / 1e6:.2f} MB)")
    if args.compare:
        with np.load(args.compare) as other:
            old = {k: other[k] for k in other.files if not k.startswith("_meta/")}
        differ = sorted(k for k in set(out) & set(old)
                        if out[k].dtype != old[k].dtype or out[k].shape != old[k].shape
                        or out[k].tobytes() != old[k].tobytes())
        only = sorted(set(out) ^ set(old))
        for k in differ:
            print(f"differs: {k}")
        for k in only:
            print(f"in one file only: {k}")
        print(f"{len(differ)} differing, {len(only)} unmatched keys")
        return 1 if differ or only else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
