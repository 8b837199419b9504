"""Packaging for rlhf-tf: the one place that names dependencies."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent
VERSION = {}
exec((HERE / "rlhf_tf" / "version.py").read_text(), VERSION)

# The set that plain pip resolves on Python 3.10-3.12 (see the project's STACK notes):
# tf-agents 0.19 pins typing-extensions 4.5 and tensorflow-probability 0.23 and breaks on numpy 2;
# TensorFlow 2.21 no longer brings tensorboard, which tf.summary needs.
INSTALL_REQUIRES = [
    "tensorflow~=2.21.0",
    "tf-keras~=2.21.0",
    "tf-agents==0.19.0",
    "keras-hub~=0.32.0",
    "numpy<2",
    "tensorflow-datasets>=4.9",
    # tensorflow-datasets builds datasets through etils.epath, which imports it but does not declare it.
    "importlib_resources",
    "tensorboard~=2.21.0",
    "absl-py>=2.0",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    # The labeling app (rlhf-tf label-server): Flask, served by waitress.
    "flask>=3.0",
    "waitress>=3.0",
    # Its labeling guidelines are markdown, rendered with raw HTML escaped.
    "markdown-it-py>=3.0",
]

EXTRAS_REQUIRE = {
    "dev": [
        "pytest>=8",
        # The suite runs on two workers, a test file each (setup.cfg): tracing, XLA compiles, browser waits and
        # subprocess start-ups are single-threaded, so the two cores overlap them.
        "pytest-xdist>=3.8",
        "ruff>=0.6",
        # CI executes colab/quickstart.ipynb top to bottom.
        "nbclient>=0.10",
        "nbformat>=5.10",
        "ipykernel>=6.29",
        # IPython >= 8.19 needs typing_extensions.TypeAliasType (>= 4.6), but tf-agents pins typing-extensions 4.5,
        # and keras-hub imports IPython through kagglehub when it is installed: a newer IPython breaks `import
        # keras_hub`. pip's resolver does not see this (IPython does not declare it).
        "ipython<8.19",
        # Browser tests of the labeling app drive the system's Chromium (Debian's `chromium` package; nothing is
        # downloaded at test time).
        "playwright>=1.45",
    ],
}

setuptools.setup(
    name="rlhf-tf",
    version=VERSION["__version__"],
    description="Reinforcement learning from human feedback for TensorFlow and Keras.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    license="Apache-2.0",
    # agents/ and reward/ live at the top of the repository but install inside the package,
    # so that nothing as generic as `import reward` lands in a user's environment.
    package_dir={
        "rlhf_tf": "rlhf_tf",
        "rlhf_tf.agents": "agents",
        "rlhf_tf.reward": "reward",
    },
    packages=(
        ["rlhf_tf"]
        + ["rlhf_tf." + p for p in setuptools.find_packages("rlhf_tf")]
        + ["rlhf_tf.agents"]
        + ["rlhf_tf.agents." + p for p in setuptools.find_packages("agents")]
        + ["rlhf_tf.reward"]
        + ["rlhf_tf.reward." + p for p in setuptools.find_packages("reward")]
    ),
    include_package_data=True,
    # The labeling app's pages, script and style sheet (Flask's templates/ and static/ folders).
    package_data={"rlhf_tf.feedback": ["templates/*.html", "static/*.js", "static/*.css"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["rlhf-tf = rlhf_tf.bin.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
