"""The packages of gan_suite depend one way: every import of gan_suite code points down the layers.

The layers, lowest first (a module may import its own package and any lower layer, never a
higher one or another package of its own layer; evaluation imports neither training nor models,
see :data:`SEPARATED`):

0. ``gan_suite`` (the package itself: ``__version__``), ``errors``
1. ``seeding``, ``safe_files``, ``arguments``, ``run_layout``, ``visual``, ``tracking``: shared
   by every layer above; they import nothing of gan_suite but ``errors``
2. ``data``
3. ``nets``, ``losses``
4. ``training``
5. ``models`` (the ready-made GANModules of the configs)
6. ``evaluation`` (reads training checkpoints as files; imports no training code)
7. ``benchmark``
8. ``cli``
9. ``__main__``

Every import counts: at the top of a module, inside a function (lazy imports) or under
``TYPE_CHECKING``. Imports named by strings (``importlib``, class paths in configs) are not
imports of code and are not checked.
"""

import ast
import pathlib

import gan_suite

PACKAGE_ROOT = pathlib.Path(gan_suite.__file__).parent

LAYERS = [
    {"", "errors"},
    {"seeding", "safe_files", "arguments", "run_layout", "visual", "tracking"},
    {"data"},
    {"nets", "losses"},
    {"training"},
    {"models"},
    {"evaluation"},
    {"benchmark"},
    {"cli"},
    {"__main__"},
]

#: (importer, imported) top-level parts that must not import each other although the second is
#: lower: evaluation reads what training writes (checkpoints, run directories) as files, so it
#: works on any checkpoint without the training code that made it
SEPARATED = {("evaluation", "training"), ("evaluation", "models")}

#: imports against the order that stay, each with its reason: (importer module, imported module);
#: none at present
ALLOWED: set = set()


def layer_of(part: str) -> int:
    for level, parts in enumerate(LAYERS):
        if part in parts:
            return level
    raise AssertionError(f"gan_suite.{part} has no layer: add it to LAYERS and to the docstring")


def top_part(module: str) -> str:
    """'gan_suite.evaluation.metrics.fid' -> 'evaluation'; 'gan_suite' -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = ("gan_suite",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path, name: str):
    """(line, module) of every import in the file, wherever it stands, in line order."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = sorted((n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, (ast.Import, ast.ImportFrom))), key=lambda n: n.lineno)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            if module == "gan_suite":  # ``from gan_suite import X``: X may be a sub-package
                for alias in node.names:
                    yield node.lineno, f"gan_suite.{alias.name}" if alias.name != "__version__" else "gan_suite"
            else:
                yield node.lineno, module


def offending_imports(root: pathlib.Path = PACKAGE_ROOT) -> list[str]:
    """One line per import of gan_suite code against the layer order, in the files under ``root``."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        own = top_part(name)
        for line, module in imported_modules(path, name):
            if module != "gan_suite" and not module.startswith("gan_suite."):
                continue
            target = top_part(module)
            if target == own or (name, module) in ALLOWED:
                continue
            if layer_of(target) >= layer_of(own) or (own, target) in SEPARATED:
                why = "separated" if (own, target) in SEPARATED else f"layer {layer_of(own)} -> layer {layer_of(target)}"
                offenders.append(f"{path.relative_to(root.parent)}:{line} imports {module} ({own or 'gan_suite'} -> {target or 'gan_suite'}: {why})")
    return offenders


def test_every_import_points_down_the_layers():
    offenders = offending_imports()
    assert not offenders, "imports against the layer order:\n" + "\n".join(offenders)


def test_every_module_has_a_layer():
    parts = {top_part(module_name(path, PACKAGE_ROOT)) for path in PACKAGE_ROOT.rglob("*.py")}
    for part in parts:
        layer_of(part)
    assert parts == set().union(*LAYERS), "LAYERS names a module that does not exist"


def test_the_check_sees_lazy_and_relative_imports(tmp_path):
    """The scan reads imports inside functions and relative ones, and refuses evaluation -> training
    (a fake package tree)."""
    fake = tmp_path / "gan_suite"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("")
    (fake / "data" / "loader.py").write_text(
        "def load():\n    from gan_suite.training.module import GANModule\n    return GANModule\n"
        "from ..evaluation import metrics\n"
        "from gan_suite import training\n"
        "from gan_suite.errors import ConfigError\n"
    )
    (fake / "evaluation").mkdir()
    (fake / "evaluation" / "__init__.py").write_text("from gan_suite.nets import spec\nfrom gan_suite.training import callbacks\n")
    found = offending_imports(fake)
    assert [line.split(" (")[0] for line in found] == [
        "gan_suite/data/loader.py:2 imports gan_suite.training.module",
        "gan_suite/data/loader.py:4 imports gan_suite.evaluation",
        "gan_suite/data/loader.py:5 imports gan_suite.training",
        "gan_suite/evaluation/__init__.py:2 imports gan_suite.training",
    ]
