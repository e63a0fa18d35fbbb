"""Installs rnn_jax; dependencies come from requirements.txt (runtime) and requirements-test.txt (extras)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements(name):
    lines = (HERE / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


_test = _requirements("requirements-test.txt")
_torch = [r for r in _test if r.startswith("torch")]

setup(
    name="rnn_jax",
    version="0.1.0",
    description="Recurrent neural networks as pure JAX functions, with PyTorch parity",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["rnn_jax", "rnn_jax.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=_requirements("requirements.txt"),
    extras_require={"test": _test, "torch": _torch},
)
