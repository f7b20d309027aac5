"""The scheduling core must stay importable without torch or asyncio (ARCHITECTURE.md).

numpy is kept out of ``core/`` (plain mechanism); policies may use it (a core dependency, and
matplotlib's): astraea keeps its moving response ratios in arrays (policies/ratio_order.py)."""

import ast
import pathlib
import subprocess
import sys

import astraea.core

FORBIDDEN = {"core": {"torch", "asyncio", "numpy"}, "policies": {"torch", "asyncio"}}


def test_core_sources_import_no_forbidden_module():
    root = pathlib.Path(astraea.core.__file__).parent.parent
    offenders = []
    for sub, forbidden in FORBIDDEN.items():
        for path in (root / sub).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert offenders == []


def test_importing_core_and_policies_loads_neither_torch_nor_asyncio():
    code = (
        "import sys, astraea.core, astraea.policies, astraea.sim.simulator;"
        "bad = sorted({'torch', 'asyncio'} & set(sys.modules)); print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
