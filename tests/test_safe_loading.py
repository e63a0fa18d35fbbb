"""Safe loading: no module of rnn_jax/ or experiments/ can run code held in a file it reads.

An AST scan of every .py file there refuses pickle and its kin (pickle, dill, shelve, marshal, joblib, ...),
``np.load`` without an explicit ``allow_pickle=False``, ``torch.load`` without ``weights_only=True``,
``yaml.load`` without a SafeLoader, ``eval`` / ``exec``, and ``__import__`` / ``importlib.import_module`` of a
name that is not a literal (a name read from a file). The scanner is tested on hand-written snippets of each
form, safe and unsafe, and must see the library's own loaders (features, PyTorch weights, orbax checkpoints)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib", "jsonpickle"}
# call -> (keyword, what its value must be) for loaders that are safe with that keyword only
GUARDED = {"numpy.load": ("allow_pickle", False), "jax.numpy.load": ("allow_pickle", False),
           "torch.load": ("weights_only", True)}
BANNED_CALLS = {"eval", "exec", "pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load",
                "numpy.lib.format.read_array"}
DYNAMIC_IMPORTS = {"__import__", "importlib.import_module", "importlib.__import__"}


def _aliases(tree) -> dict:
    """Returns {local name: dotted origin} of a module's imports (``np`` -> ``numpy``, ``load`` -> ``numpy.load``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node, aliases) -> str | None:
    """Returns the call target's dotted name through the import aliases (``np.load`` -> ``numpy.load``)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword_is(call, name, value) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def _call_finding(call, target) -> str | None:
    if target in GUARDED:
        keyword, value = GUARDED[target]
        return None if _keyword_is(call, keyword, value) else f"{target} without {keyword}={value}"
    if target in BANNED_CALLS or target.split(".")[0] in PICKLERS:
        return f"{target}(...)"
    if target == "yaml.load":
        loaders = [k.value for k in call.keywords if k.arg == "Loader"] + call.args[1:2]
        safe = loaders and ast.unparse(loaders[0]).endswith("SafeLoader")
        return None if safe else "yaml.load without a SafeLoader"
    if target in DYNAMIC_IMPORTS and not (call.args and isinstance(call.args[0], ast.Constant)):
        return f"{target} of a name that is not a literal"
    return None


def unsafe_loading(source: str) -> list[str]:
    """Returns ``'line N: what'`` for every unsafe loading form in one module's source."""
    tree = ast.parse(source)
    aliases, found = _aliases(tree), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: import {m}" for m in modules if m.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.Call):
            target = _dotted(node.func, aliases)
            problem = _call_finding(node, target) if target else None
            if problem:
                found.append(f"line {node.lineno}: {problem}")
    return found


UNSAFE = {
    "import pickle": "import pickle\n",
    "from pickle import": "from pickle import loads\n",
    "import dill as": "import dill as d\n",
    "pickle.load": "x = pickle.load(f)\n",
    "np.load default": "import numpy as np\nnp.load('a.npy')\n",
    "np.load allow_pickle=True": "import numpy as np\nnp.load('a.npy', allow_pickle=True)\n",
    "from numpy import load": "from numpy import load\nload('a.npy')\n",
    "jnp.load": "import jax.numpy as jnp\njnp.load('a.npy')\n",
    "torch.load": "import torch\ntorch.load('w.pt')\n",
    "torch.load weights_only=False": "import torch\ntorch.load('w.pt', weights_only=False)\n",
    "yaml.load": "import yaml\nyaml.load(text)\n",
    "yaml.load Loader": "import yaml\nyaml.load(text, Loader=yaml.Loader)\n",
    "eval": "eval(open('f').read())\n",
    "exec": "exec(code)\n",
    "__import__": "__import__(name)\n",
    "import_module": "import importlib\nimportlib.import_module(config['module'])\n",
    "read_pickle": "import pandas as pd\npd.read_pickle('x')\n",
}
SAFE = ("import numpy as np\nnp.load(path, allow_pickle=False)\n",
        "import torch\ntorch.load(path, map_location='cpu', weights_only=True)\n",
        "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)\nyaml.safe_load(text)\n",
        "import importlib\nimportlib.import_module('rnn_jax.data.sst')\n",
        "model.eval()\nrnn.eval()\n",
        "import json\njson.loads(text)\n")


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_the_scanner_finds_each_unsafe_form(name):
    assert len(unsafe_loading(UNSAFE[name])) == 1, name


@pytest.mark.parametrize("source", SAFE)
def test_the_scanner_passes_the_safe_forms(source):
    assert unsafe_loading(source) == []


def test_no_module_of_the_library_or_the_experiments_loads_unsafely():
    modules = sorted(p for folder in ("rnn_jax", "experiments") for p in (ROOT / folder).rglob("*.py"))
    assert len(modules) > 50
    found = [f"{p.relative_to(ROOT)}: {f}" for p in modules for f in unsafe_loading(p.read_text(encoding="utf-8"))]
    assert found == []
    # the loaders it must see (so they passed in their safe forms): features, PyTorch weights, orbax checkpoints
    seen = {}
    for name in ("rnn_jax/data/captions.py", "rnn_jax/interop/torch.py", "rnn_jax/training/checkpoint.py"):
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        aliases = _aliases(tree)
        calls = {_dotted(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        seen[name] = calls | set(aliases.values())
    assert "numpy.load" in seen["rnn_jax/data/captions.py"] and "torch.load" in seen["rnn_jax/interop/torch.py"]
    assert "orbax.checkpoint" in seen["rnn_jax/training/checkpoint.py"]
