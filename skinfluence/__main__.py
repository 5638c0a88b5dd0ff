"""``python -m skinfluence``: the command line; with no arguments, the demo."""

import sys

from skinfluence.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["demo"]))
