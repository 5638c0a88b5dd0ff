"""Old spellings accepted for one release with a FutureWarning that names the new one."""

import functools
import inspect
import warnings

# the release in which the old spellings stop working
REMOVED_IN = "0.3"


def positional_deprecated(*names):
    """Decorate a method whose parameters ``names`` used to be positional and are now
    keyword-only: positional values beyond the current positional parameters are taken as
    ``names`` in that order, with a FutureWarning naming the keyword spelling.

    The signature seen by ``inspect`` (hence scikit-learn's ``get_params``) is the new one.
    """

    def decorate(func):
        params = inspect.signature(func).parameters.values()
        n_positional = sum(p.kind == p.POSITIONAL_OR_KEYWORD for p in params)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            extra = args[n_positional:]
            if not extra:
                return func(*args, **kwargs)
            if len(extra) > len(names):
                return func(*args, **kwargs)  # Python's own TypeError on too many arguments
            moved = dict(zip(names, extra))
            owner = type(args[0]).__name__
            method = "" if func.__name__ == "__init__" else f".{func.__name__}"
            spelled = ", ".join(f"{name}=..." for name in moved)
            warnings.warn(
                f"Pass {spelled} to {owner}{method} as keyword argument(s): positional use "
                f"is deprecated since skinfluence 0.2 and will raise a TypeError in "
                f"{REMOVED_IN}.", FutureWarning, stacklevel=2)
            clash = sorted(set(moved) & set(kwargs))
            if clash:
                raise TypeError(f"{owner}{method} got multiple values for {clash[0]!r}.")
            return func(*args[:n_positional], **moved, **kwargs)

        return wrapper

    return decorate
