"""Imports point one way: core <- reward <- agents <- bin (ARCHITECTURE.md)."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent

# (folder, installed package, packages it must not import)
RULES = [
    ("rlhf_tf", "rlhf_tf", ("rlhf_tf.reward", "rlhf_tf.agents", "rlhf_tf.bin")),
    ("reward", "rlhf_tf.reward", ("rlhf_tf.agents", "rlhf_tf.bin")),
    ("agents", "rlhf_tf.agents", ("rlhf_tf.bin",)),
]


def _imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_imports_point_one_way():
    violations = []
    for folder, _, forbidden in RULES:
        for path in (ROOT / folder).rglob("*.py"):
            if folder == "rlhf_tf" and "bin" in path.relative_to(ROOT / folder).parts:
                continue
            for module in _imported_modules(path):
                if module.startswith(forbidden):
                    violations.append(f"{path.relative_to(ROOT)} imports {module}")
    assert violations == []


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
