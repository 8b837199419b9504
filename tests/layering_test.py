"""Imports point one way: core <- reward <- agents (language, control and recommend rooms, recipes above them) <- bin
(ARCHITECTURE.md)."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent

# (folder, packages it must not import). The language and control rooms never import each other; the recipes that
# compose whole pipelines sit above both; nothing below the binaries imports them.
RULES = [
    ("rlhf_tf", ("rlhf_tf.reward", "rlhf_tf.agents", "rlhf_tf.bin")),
    ("reward", ("rlhf_tf.agents", "rlhf_tf.bin")),
    ("agents/language", ("rlhf_tf.agents.control", "rlhf_tf.agents.recipes", "rlhf_tf.bin")),
    ("agents/control", ("rlhf_tf.agents.language", "rlhf_tf.agents.recipes", "rlhf_tf.bin")),
    (
        "agents/recommend",
        ("rlhf_tf.agents.language", "rlhf_tf.agents.control", "rlhf_tf.agents.recipes", "rlhf_tf.bin"),
    ),
    ("agents/recipes", ("rlhf_tf.bin",)),
    ("agents", ("rlhf_tf.bin",)),
]


def _imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_violations(root=ROOT):
    """["<file> imports <module>", ...] for every import against RULES under `root`."""
    violations = []
    for folder, forbidden in RULES:
        for path in (root / folder).rglob("*.py"):
            if folder == "rlhf_tf" and "bin" in path.relative_to(root / folder).parts:
                continue
            for module in _imported_modules(path):
                if any(module == name or module.startswith(name + ".") for name in forbidden):
                    violations.append(f"{path.relative_to(root)} imports {module}")
    return violations


def test_imports_point_one_way():
    assert import_violations() == []


def test_every_package_folder_is_covered_by_a_rule():
    """A new room under agents/ gets its own rule (the catch-all "agents" rule only forbids the binaries)."""
    rooms = {path.parent.name for path in (ROOT / "agents").glob("*/__init__.py")}
    assert rooms == {"language", "control", "recommend", "recipes"}, rooms


def test_a_planted_import_in_a_forbidden_direction_fails(tmp_path):
    for folder, _ in RULES:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "agents/language/planted.py").write_text("from rlhf_tf.agents.control import run\n")
    (tmp_path / "reward/planted.py").write_text("import rlhf_tf.agents.language.ppo\n")
    (tmp_path / "rlhf_tf/planted.py").write_text("from rlhf_tf.reward import trainer\n")
    (tmp_path / "agents/control/planted.py").write_text("from rlhf_tf.agents.recipes import report\n")
    assert sorted(import_violations(tmp_path)) == [
        "agents/control/planted.py imports rlhf_tf.agents.recipes",
        "agents/control/planted.py imports rlhf_tf.agents.recipes.report",
        "agents/language/planted.py imports rlhf_tf.agents.control",
        "agents/language/planted.py imports rlhf_tf.agents.control.run",
        "reward/planted.py imports rlhf_tf.agents.language.ppo",
        "rlhf_tf/planted.py imports rlhf_tf.reward",
        "rlhf_tf/planted.py imports rlhf_tf.reward.trainer",
    ]


# Attribute use of tf.keras (tf.keras.layers, tensorflow.keras.Model) or `from tensorflow import keras`.
_TF_KERAS_USE = re.compile(r"\b(tf|tensorflow)\.keras\.[A-Za-z_]|from tensorflow import keras")


def test_no_tf_keras_in_our_code():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("rlhf_tf", "reward", "agents")
        for path in (ROOT / folder).rglob("*.py")
        # keras_setup is the one module whose job is to inspect where tf.keras points.
        if path.name != "keras_setup.py" and _TF_KERAS_USE.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


CONTRACTS_MODULE = pathlib.Path("rlhf_tf/training/run_directory.py")


def _run_directory_entries(root):
    """The entry names the contracts module declares in ENTRIES (read from its source, without importing TF)."""
    tree = ast.parse((root / CONTRACTS_MODULE).read_text(encoding="utf-8"))
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            constants[node.targets[0].id] = node.value.value
        if isinstance(node, ast.Assign) and node.targets[0].id == "ENTRIES":
            names = [element.id for element in node.value.elts]
    return {constants[name] for name in names}


def _is_path_join(call):
    function = call.func
    return (
        isinstance(function, ast.Attribute)
        and function.attr == "join"
        and (isinstance(function.value, ast.Attribute) and function.value.attr in ("path", "gfile"))
    )


def path_literal_violations(root=ROOT):
    """["<file>:<line> <literal>", ...] for run-directory entries spelled outside the contracts module: a known
    entry name given to os.path.join (or tf.io.gfile.join), or any string that starts with "<entry>/"."""
    entries = _run_directory_entries(root)
    violations = []
    for folder in ("rlhf_tf", "agents", "reward"):
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            if relative == CONTRACTS_MODULE:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
            for node in ast.walk(tree):
                literals = []
                if isinstance(node, ast.Call) and _is_path_join(node):
                    literals = [
                        arg.value
                        for arg in node.args
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value in entries
                    ]
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    literals = [node.value for entry in entries if node.value.startswith(entry + "/")]
                violations += [f"{relative}:{node.lineno} {literal}" for literal in literals]
    return violations


def test_run_directory_paths_are_named_only_in_the_contracts_module():
    assert path_literal_violations() == []


def test_a_planted_run_directory_literal_fails(tmp_path):
    (tmp_path / CONTRACTS_MODULE).parent.mkdir(parents=True)
    (tmp_path / CONTRACTS_MODULE).write_text((ROOT / CONTRACTS_MODULE).read_text(encoding="utf-8"))
    for folder in ("agents/language", "reward"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "agents/language/planted.py").write_text(
        'import os\n\n\ndef f(run):\n    return os.path.join(run, "ckpt", "final-with-normalization")\n'
    )
    (tmp_path / "reward/planted.py").write_text('SEGMENTS = "segments/round-0.npz"\n')
    assert path_literal_violations(tmp_path) == [
        "agents/language/planted.py:5 ckpt",
        "agents/language/planted.py:5 final-with-normalization",
        "reward/planted.py:1 segments/round-0.npz",
    ]
