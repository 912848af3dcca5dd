"""Every ```python block of README.md and docs/*.md runs as written.

Each block runs alone in a fresh interpreter (sys.executable), in an empty temporary directory,
so it must bring its own imports and inputs. Blocks that need flash-linear-attention run in a child
forked from a warm interpreter that has already imported torch and fla (tests/docs_warm_runner.py:
that import takes about 10 s); the child has its own directory, namespace and output, as a fresh
interpreter would. A block that needs an optional package says so in an
HTML comment on the line just before its fence, e.g. `<!-- requires: torch fla -->`; it is
skipped (with the reason) when one of them cannot be imported, as tests/test_models.py does.
Shell commands and program output belong in ```console / ```text blocks, which are not run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^ {0,3}(```+)\s*([^`\s]*)[^`]*$")  # CommonMark: no backtick in the info string
CLOSE = re.compile(r"^ {0,3}(```+)\s*$")
REQUIRES = re.compile(r"^\s*<!--\s*requires:(.*?)-->\s*$")
PYTHON_LANGS = {"python", "py", "python3"}
TIMEOUT = 300
# Packages whose import is slow enough to share: a block needing one of these runs in a warm
# interpreter that imported what is listed (`import fla` imports torch and transformers itself).
WARM = {"fla": ("torch", "fla", "transformers")}


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the first code line
    code: str
    requires: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def fenced_blocks(path: Path):
    """(language, line of the fence, code lines, the line before the fence, closed?) of every
    fenced block of a markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not ((c := CLOSE.match(lines[j])) and len(c.group(1)) >= len(m.group(1))):
            j += 1
        yield m.group(2).lower(), i + 1, lines[i + 1 : j], lines[i - 1] if i else "", j < len(lines)
        i = j + 1


def python_blocks() -> list[Block]:
    blocks: list[Block] = []
    for path in doc_files():
        if not path.exists():
            continue
        for lang, fence_line, code, before, _ in fenced_blocks(path):
            if lang in PYTHON_LANGS:
                req = REQUIRES.match(before)
                names = tuple(re.split(r"[\s,]+", req.group(1).strip())) if req else ()
                blocks.append(Block(path, fence_line + 1, "\n".join(code) + "\n", names))
    return blocks


BLOCKS = python_blocks()


def test_docs_have_python_blocks():
    assert (ROOT / "docs").is_dir(), "docs/ is missing"
    assert BLOCKS, "no ```python block found in README.md or docs/*.md"


def test_fences_are_closed():
    for path in doc_files():
        if path.exists():
            for _, fence_line, _, _, closed in fenced_blocks(path):
                assert closed, f"{path.relative_to(ROOT)}:{fence_line}: this ``` fence is never closed"


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, marks=pytest.mark.extras) if b.requires else b for b in BLOCKS],
    ids=[b.name for b in BLOCKS],
)
def test_python_block_runs(block: Block, tmp_path: Path, warm_runners: dict[tuple[str, ...], WarmRunner]):
    missing = [m for m in block.requires if m and importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{block.name} needs {', '.join(missing)}, which cannot be imported here")
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    warm = tuple(sorted({p for m in block.requires for p in WARM.get(m, ())}))
    if warm:
        if warm not in warm_runners:
            warm_runners[warm] = WarmRunner(warm)
        code, stdout, stderr = warm_runners[warm].run(script, tmp_path)
    else:
        try:
            r = subprocess.run(
                [sys.executable, str(script)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            code, stdout, stderr = None, "", ""
        else:
            code, stdout, stderr = r.returncode, r.stdout, r.stderr
    if code is None:
        pytest.fail(f"{block.name}: the python block still ran after {TIMEOUT} s", pytrace=False)
    if code != 0:
        pytest.fail(
            f"{block.name}: the python block failed (exit {code})\n"
            f"--- stderr ---\n{stderr.strip()}\n--- stdout (end) ---\n{stdout[-2000:].strip()}",
            pytrace=False,
        )


class WarmRunner:
    """tests/docs_warm_runner.py with `modules` imported: runs a block in a forked child."""

    def __init__(self, modules: tuple[str, ...]):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("docs_warm_runner.py")), *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read(TIMEOUT)
        if ready != {"ready": True}:
            raise RuntimeError(f"the warm interpreter importing {modules} did not start (said {ready!r})")

    def _read(self, timeout: float) -> dict | None:
        assert self.proc.stdout is not None
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def run(self, script: Path, cwd: Path) -> tuple[int | None, str, str]:
        """(exit code or None after TIMEOUT s, stdout, stderr) of `script` run in `cwd`."""
        assert self.proc.stdin is not None
        out, err = cwd / "block.stdout", cwd / "block.stderr"
        req = {"script": str(script), "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        started = self._read(TIMEOUT)
        if started is None:
            raise RuntimeError("the warm interpreter stopped answering")
        done = self._read(TIMEOUT)
        code = None
        if done is None:
            os.kill(started["pid"], signal.SIGKILL)
            self._read(TIMEOUT)
        else:
            code = done["exit"]
        return code, out.read_text(errors="replace"), err.read_text(errors="replace")

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def warm_runners() -> Iterator[dict[tuple[str, ...], WarmRunner]]:
    runners: dict[tuple[str, ...], WarmRunner] = {}
    yield runners
    for r in runners.values():
        r.close()
