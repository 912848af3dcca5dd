"""Every ```python block of README.md and docs/*.md runs as written.

Each block runs alone in a fresh interpreter (sys.executable), in an empty temporary directory,
so it must bring its own imports and inputs. A block that needs an optional package says so in an
HTML comment on the line just before its fence, e.g. `<!-- requires: torch fla -->`; it is
skipped (with the reason) when one of them cannot be imported, as tests/test_models.py does.
Shell commands and program output belong in ```console / ```text blocks, which are not run.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^ {0,3}(```+)\s*([^`\s]*)[^`]*$")  # CommonMark: no backtick in the info string
CLOSE = re.compile(r"^ {0,3}(```+)\s*$")
REQUIRES = re.compile(r"^\s*<!--\s*requires:(.*?)-->\s*$")
PYTHON_LANGS = {"python", "py", "python3"}
TIMEOUT = 300


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
def test_python_block_runs(block: Block, tmp_path: Path):
    missing = [m for m in block.requires if m and importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{block.name} needs {', '.join(missing)}, which cannot be imported here")
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    try:
        r = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.name}: the python block still ran after {TIMEOUT} s", pytrace=False)
    if r.returncode != 0:
        pytest.fail(
            f"{block.name}: the python block failed (exit {r.returncode})\n"
            f"--- stderr ---\n{r.stderr.strip()}\n--- stdout (end) ---\n{r.stdout[-2000:].strip()}",
            pytrace=False,
        )
