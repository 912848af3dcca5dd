"""The user-facing scripts of examples/python/ run as a new user would run them: in a fresh
interpreter, from any directory, exiting 0 and printing what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "python"

# script -> lines its output must contain
EXPECTED = {
    "quickstart.py": ["KWiseHash(k=4, seed=7)", "CountSketch(rows=5, buckets=256", "round-trip exactly"],
    "causal_stream.py": ["Plan(n=4096, d=16, dv=16)", "certificate: 4/4 probes", "exact_attention: max |err|"],
    "sparse_recovery.py": ["SparseRecoveryPlan(n=1048576", "decode('sublinear'): 8 entries", "decode('standard')"],
}


def test_every_example_is_run_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    for line in EXPECTED[script]:
        assert line in proc.stdout, f"{script} did not print {line!r}:\n{proc.stdout}"
