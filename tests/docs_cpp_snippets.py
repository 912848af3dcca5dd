#!/usr/bin/env python3
"""Compile (and optionally run) every ```cpp block of README.md and docs/*.md against an
installed streamattn.

    python tests/docs_cpp_snippets.py --prefix <install prefix> [--cxx g++] [--run] [--keep DIR]

A block that contains `int main` is compiled as it is. Any other block is a list of statements:
its `#include` lines go to the top of the file, the rest into `int main() { ... }`, after the
umbrella include <streamattn/streamattn.hpp> and a few standard headers. A hidden set-up line may
precede a block as an HTML comment on the line just before the fence; it is injected at the start
of main(), e.g.

    <!-- cpp-setup: streamattn::RowMatrix<double> X = streamattn::RowMatrix<double>::Random(100, 1); -->

Flags: -std=c++17 -I<prefix>/include, Eigen's include directory (from `python -m cmeel cmake`:
<p>/include/eigen3 for the first ':'-separated prefix p that has it, else /usr/include/eigen3),
every <prefix>/lib*/libstreamattn*.a inside -Wl,--start-group ... -Wl,--end-group, and -pthread.
One line per snippet; the exit status is nonzero if any snippet fails (or none is found).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^ {0,3}(```+)\s*([^`\s]*)[^`]*$")  # CommonMark: no backtick in the info string
CLOSE = re.compile(r"^ {0,3}(```+)\s*$")
SETUP = re.compile(r"^\s*<!--\s*cpp-setup:(.*?)-->\s*$")
CPP_LANGS = {"cpp", "c++", "cxx"}
STD_HEADERS = ["algorithm", "cmath", "cstdint", "cstdio", "iostream", "optional", "string", "vector"]


@dataclass
class Snippet:
    path: Path
    line: int  # 1-based line of the first code line
    code: str
    setup: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def extract(path: Path, langs: set[str]) -> list[Snippet]:
    """Fenced blocks whose language is in `langs`, with the set-up comment just before them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Snippet] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang = m.group(2).lower()
        start = i + 1
        j = start
        while j < len(lines) and not ((c := CLOSE.match(lines[j])) and len(c.group(1)) >= len(m.group(1))):
            j += 1
        if lang in langs:
            setup = ""
            if i > 0:
                s = SETUP.match(lines[i - 1])
                if s:
                    setup = s.group(1).strip()
            out.append(Snippet(path, start + 1, "\n".join(lines[start:j]) + "\n", setup))
        i = j + 1
    return out


def wrap(snippet: Snippet) -> str:
    if re.search(r"\bint\s+main\s*\(", snippet.code):
        return snippet.code
    includes, body = [], []
    for line in snippet.code.splitlines():
        (includes if line.lstrip().startswith("#include") else body).append(line)
    head = ["#include <streamattn/streamattn.hpp>", *(f"#include <{h}>" for h in STD_HEADERS), *includes]
    main = [
        "int main() {",
        f"  {snippet.setup}" if snippet.setup else "",
        *("  " + b for b in body),
        "  return 0;",
        "}",
    ]
    return "\n".join(head + [""] + main) + "\n"


def eigen_include(python: str) -> str:
    try:
        prefixes = subprocess.run([python, "-m", "cmeel", "cmake"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        prefixes = ""
    for p in prefixes.strip().split(":"):
        if p and (Path(p) / "include" / "eigen3").is_dir():
            return str(Path(p) / "include" / "eigen3")
    return "/usr/include/eigen3"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", required=True, type=Path, help="install prefix of streamattn (cmake --install)")
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"), help="C++ compiler (default $CXX or g++)")
    ap.add_argument("--python", default=sys.executable, help="Python with cmeel-eigen, to find Eigen")
    ap.add_argument("--run", action="store_true", help="also run every compiled snippet (must exit 0)")
    ap.add_argument("--keep", type=Path, default=None, help="write the sources and binaries here and keep them")
    a = ap.parse_args(argv)

    prefix = a.prefix.resolve()
    libs = sorted(str(p) for p in prefix.glob("lib*/libstreamattn*.a"))
    if not libs:
        print(f"no libstreamattn*.a under {prefix}/lib*: install the C++ library there first", file=sys.stderr)
        return 2
    snippets = [s for f in doc_files() if f.exists() for s in extract(f, CPP_LANGS)]
    if not snippets:
        print("no ```cpp blocks found", file=sys.stderr)
        return 2
    flags = ["-std=c++17", f"-I{prefix / 'include'}", f"-I{eigen_include(a.python)}"]
    link = ["-Wl,--start-group", *libs, "-Wl,--end-group", "-pthread"]

    work = a.keep.resolve() if a.keep else Path(tempfile.mkdtemp(prefix="docs-cpp-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = 0
    try:
        for i, s in enumerate(snippets):
            src, exe = work / f"snippet_{i:02d}.cpp", work / f"snippet_{i:02d}"
            src.write_text(f"// {s.name}\n" + wrap(s), encoding="utf-8")
            r = subprocess.run(
                [a.cxx, *flags, str(src), "-o", str(exe), *link], capture_output=True, text=True, check=False
            )
            if r.returncode != 0:
                failed += 1
                print(f"FAIL {s.name}: does not compile ({src.name})\n{r.stderr.strip()}\n", flush=True)
                continue
            if a.run:
                try:
                    p = subprocess.run([str(exe)], capture_output=True, text=True, cwd=work, timeout=300, check=False)
                except subprocess.TimeoutExpired:
                    failed += 1
                    print(f"FAIL {s.name}: still running after 300 s", flush=True)
                    continue
                if p.returncode != 0:
                    failed += 1
                    print(f"FAIL {s.name}: exit {p.returncode}\n{p.stdout.strip()}\n{p.stderr.strip()}\n", flush=True)
                    continue
            print(f"ok   {s.name}" + (" (compiled and ran)" if a.run else " (compiled)"), flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(snippets) - failed}/{len(snippets)} C++ snippets ok ({len(libs)} libraries from {prefix})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
