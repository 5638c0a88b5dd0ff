"""Output of the command line: messages, text tables, CSV files and plots."""

import csv
import os
import sys
import tempfile

import numpy as np

__all__ = ["UsageError", "Console", "format_table", "fmt", "unique_names", "num",
           "check_writable", "write_csv", "save_plot"]


class UsageError(Exception):
    """User-facing error: printed without traceback, exit code 2."""


class Console:
    """Messages for people go to stderr when stdout carries data, else to stdout."""

    def __init__(self, quiet=False, data_on_stdout=False):
        self.quiet = quiet
        self.stream = sys.stderr if data_on_stdout else sys.stdout

    def say(self, text=""):
        print(text, file=self.stream, flush=True)

    def note(self, text):
        if not self.quiet:
            print(f"note: {text}", file=sys.stderr, flush=True)

    def progress(self, text):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


def format_table(header, rows, max_width=24):
    """Fixed-width text table; long cells are shortened."""

    def cut(value):
        text = value if isinstance(value, str) else fmt(value)
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    cells = [[cut(h) for h in header]] + [[cut(v) for v in row] for row in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def unique_names(existing, wanted):
    """Output column names that do not clash with the CSV's own columns."""
    taken = set(existing)
    out = []
    for name in wanted:
        new = name
        while new in taken:
            new = "skinfluence_" + new
        taken.add(new)
        out.append(new)
    return out


def num(value, decimal="."):
    """A float cell for the output CSV, in the input's decimal mark."""
    text = repr(float(value))
    return text.replace(".", ",") if decimal == "," else text


def check_writable(path, action="write"):
    """Fail before any work if ``path`` cannot be written.

    The directory must exist and accept a new file (tried by creating and removing
    one: os.access says yes to root even on a read-only file system), and the path
    must not be a directory.  ``action`` words the message: "cannot {action} {path}".
    """
    if path is None or path == "-":
        return
    if os.path.isdir(path):
        raise UsageError(f"cannot {action} {path}: that is a directory; give a file name.")
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        what = "is a file, not a directory" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"cannot {action} {path}: {folder} {what}.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".skinfluence-", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot {action} {path}: no new file can be made in {folder} "
                         f"({exc.strerror}).") from None
    os.close(fd)
    os.remove(probe)


def write_csv(path, header, rows, delimiter=","):
    """Write a CSV in the input's dialect (same delimiter) to a file or stdout ('-').

    A file is written to a temporary file next to it and renamed into place, so
    a failed write leaves no partial file and any earlier ``path`` untouched.
    """
    if path == "-":
        writer = csv.writer(sys.stdout, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()
        return
    target = os.path.realpath(path)  # write through a symlink, as open() would
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target),
                                   prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter=delimiter)
            writer.writerow(header)
            writer.writerows(rows)
        # mkstemp makes the file private (0600); give it the mode open() would have
        if os.path.exists(target):
            mode = os.stat(target).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def save_plot(path, draw, console):
    """Draw with ``draw(ax)`` and save to ``path`` (needs matplotlib, imported only here)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'skinfluence[plot]'.") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw(ax)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot save the plot to {path}: {exc}") from None
    finally:
        plt.close(fig)
    console.say(f"saved the plot to {path}")
