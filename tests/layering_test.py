"""Imports point one way: core <- reward <- agents (language and control rooms, recipes above both) <- bin
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
    assert rooms == {"language", "control", "recipes"}, rooms


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
