"""Write the architecture figure of ``docs/developers.rst``, read from the package's code.

Three parts, all derived from the source with :mod:`ast` (nothing is imported but
``skinfluence`` itself, to find it):

* the layers: each subpackage or top-level module of ``skinfluence`` placed above
  everything it imports (imports inside functions count too), with the list of
  those imports.  Where two units import each other they are shown module by module;
* the estimators: the public classes, and whether the meta-estimators among them
  derive from :class:`skinfluence.base.BaseExplainer`;
* the module map: every module with the first sentence of its docstring.

``docs/conf.py`` runs it on every build, so the figure cannot go stale.  By hand::

    python docs/_scripts/architecture.py [OUT]      # default: print to stdout
"""

import ast
import os
import re
import sys
import textwrap
from collections import defaultdict

ROOT = "skinfluence"
BASE = "BaseExplainer"


# ------------------------------------------------------------------ reading the code
def package_modules(pkg_dir):
    """``{dotted module name: path}`` of every ``.py`` file below ``pkg_dir``."""
    modules = {}
    for dirpath, dirnames, files in os.walk(pkg_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")) or
                             os.path.exists(os.path.join(dirpath, d, "__init__.py")))
        rel = os.path.relpath(dirpath, os.path.dirname(pkg_dir)).split(os.sep)
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            parts = rel + ([] if f == "__init__.py" else [f[:-3]])
            modules[".".join(parts)] = os.path.join(dirpath, f)
    return modules


def _lazy_names(modules):
    """Public names of the root package -> the module that defines them (its ``_LAZY``)."""
    tree = ast.parse(open(modules[ROOT], encoding="utf-8").read())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", None) == "_LAZY" for t in node.targets)):
            return ast.literal_eval(node.value)
    return {}


def imports_of(name, path, modules, lazy):
    """Modules of the package that module ``name`` imports (anywhere in its source)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == ROOT)
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join(parts + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if source.split(".")[0] != ROOT:
            continue
        for alias in node.names:
            if f"{source}.{alias.name}" in modules:  # "from . import submodule"
                found.add(f"{source}.{alias.name}")
            elif source == ROOT and alias.name in lazy:  # "from skinfluence import Name"
                found.add(lazy[alias.name])
            else:
                found.add(source)
    return {m for m in found if m in modules and m != name}


# ------------------------------------------------------------------ layers
def _unit(module, split):
    """The node a module is drawn in: its top-level unit, or itself if that unit is split."""
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the root package: lazy public names only
    unit = ".".join(parts[:2])
    return module if unit in split else unit


def _cycles(graph):
    """The strongly connected components of ``graph`` with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def unit_graph(module_imports):
    """``{node: nodes it imports}``, units split into modules where they form a cycle."""
    split = set()
    while True:
        graph = defaultdict(set)
        for module, targets in module_imports.items():
            u = _unit(module, split)
            if u is None or module.endswith(".__main__"):
                continue
            graph[u]
            for t in targets:
                v = _unit(t, split)
                if v is not None and v != u:
                    graph[u].add(v)
        cyclic = {".".join(n.split(".")[:2]) for comp in _cycles(graph) for n in comp}
        if not cyclic - split:
            return dict(graph)
        split |= cyclic


def layers(graph):
    """``{node: layer}``: 0 for nodes importing nothing of the package, else one above
    the highest node they import (members of a remaining cycle share a layer)."""
    memo = {}

    def depth(v, seen):
        if v in memo:
            return memo[v]
        seen = seen | {v}
        d = max((depth(w, seen) + 1 for w in graph.get(v, ()) if w not in seen), default=0)
        memo[v] = d
        return d

    return {v: depth(v, frozenset()) for v in graph}


# ------------------------------------------------------------------ estimators
def class_bases(modules):
    """``{class name: (module, [base names])}`` for every class of the package."""
    out = {}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rpartition(".")[2] for b in node.bases]
                out.setdefault(node.name, (name, bases))
    return out


def derives_from(cls, target, bases, seen=()):
    if cls == target:
        return True
    if cls not in bases or cls in seen:
        return False
    return any(derives_from(b, target, bases, seen + (cls,)) for b in bases[cls][1])


# ------------------------------------------------------------------ text
_ROLE = re.compile(r":[a-z]+:`~?\.?([^`<]*?)(?: <[^>]*>)?`")


def _plain(text):
    """A docstring sentence without reST markup."""
    text = _ROLE.sub(r"\1", text)
    return " ".join(text.replace("``", "").split())


def summary(path):
    """First sentence of a module's docstring (empty if it has none)."""
    doc = ast.get_docstring(ast.parse(open(path, encoding="utf-8").read())) or ""
    para = _plain(doc.split("\n\n")[0])
    m = re.match(r"(.+?[.:])(\s|$)", para)
    return (m.group(1) if m else para).rstrip(":.")


def _short(node):
    return node[len(ROOT) + 1:]


def render(pkg_dir):
    modules = package_modules(pkg_dir)
    lazy = _lazy_names(modules)
    module_imports = {m: imports_of(m, p, modules, lazy) for m, p in modules.items()}
    graph = unit_graph(module_imports)
    layer = layers(graph)
    width = max(len(_short(v)) for v in graph) + 2

    out = ["Layers, lowest first: each unit imports only units below it (generated from the",
           "imports of the package; ``->`` lists what a unit imports).", "",
           ".. code-block:: text", ""]
    for lvl in range(max(layer.values()) + 1):
        nodes = sorted(v for v in graph if layer[v] == lvl)
        for i, v in enumerate(nodes):
            label = f"layer {lvl}" if i == 0 else ""
            deps = ", ".join(sorted(_short(w) for w in graph[v]))
            line = f"   {label:<9}{_short(v):<{width}}"
            if not deps:
                out.append(line.rstrip())
                continue
            out += textwrap.wrap(deps, 96, initial_indent=line + "-> ",
                                 subsequent_indent=" " * (len(line) + 3),
                                 break_on_hyphens=False)
        out.append("")

    bases = class_bases(modules)
    out += ["Public estimators and their base (generated from the class definitions):", ""]
    for name, module in sorted(lazy.items()):
        if name not in bases:
            continue
        if derives_from(name, BASE, bases):
            kind = "a ``BaseExplainer``"
        elif derives_from(name, "MetaEstimatorMixin", bases):
            kind = "a meta-estimator *not* on ``BaseExplainer`` (bases: {})".format(
                ", ".join(f"``{b}``" for b in bases[name][1]))
        else:
            kind = "a model, not a meta-estimator"
        out.append(f"* ``{name}`` (``{bases[name][0]}``): {kind}")
    out.append("")

    out += ["The modules (generated from the first sentence of each module's docstring):",
            "", ".. code-block:: text", ""]
    for module in sorted(modules):
        if module == ROOT:
            continue
        rel = module[len(ROOT) + 1:]
        depth = rel.count(".")
        out.append("   " + "  " * depth + f"{rel.rpartition('.')[2]:<{24 - 2 * depth}}"
                   + summary(modules[module]))
    out.append("")
    return "\n".join(out)


def write(path, pkg_dir=None):
    """Write the figure to ``path`` (only when it changed, so Sphinx rebuilds only then)."""
    if pkg_dir is None:
        import skinfluence

        pkg_dir = os.path.dirname(os.path.abspath(skinfluence.__file__))
    text = render(pkg_dir)
    if os.path.exists(path) and open(path, encoding="utf-8").read() == text:
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        write(sys.argv[1])
    else:
        import skinfluence

        print(render(os.path.dirname(os.path.abspath(skinfluence.__file__))))
