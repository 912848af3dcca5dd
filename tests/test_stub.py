"""python/streamattn/_core.pyi against the compiled module: every function and method of the stub
has the parameter names, order, keyword-only markers and defaults of its binding.

`python -m mypy.stubtest streamattn._core` checks that names exist and properties match, but it
cannot see the parameters of pybind11 functions (they have no inspectable signature). pybind11 does
record them, as the first line of every docstring: `name(self: T, a: object, b: object = 2) -> R`;
this test reads that line. It also fails if the installed package lacks the stub.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import streamattn
from streamattn import _core

STUB = Path(streamattn.__file__).with_name("_core.pyi")


def split_top_level(text: str) -> list[str]:
    """Splits on commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def runtime_params(obj: object, name: str) -> list[tuple[str, str, object]]:
    """(name, kind, default) from the pybind11 signature line; kind 'pos', 'kw' or 'posonly'."""
    line = (inspect.getdoc(obj) or "").splitlines()[0]
    assert line.startswith(name + "("), f"no signature line in the docstring of {name}: {line!r}"
    inner = line[len(name) + 1 : line.rindex(") -> ")]
    out: list[tuple[str, str, object]] = []
    kind = "pos"
    for part in split_top_level(inner):
        if part == "*":
            kind = "kw"
            continue
        if part == "/":
            continue
        head, _, default = part.partition(" = ")
        pname = head.split(":")[0].strip()
        if pname == "self":
            continue
        value = ast.literal_eval(default) if default else inspect.Parameter.empty
        out.append((pname, "posonly" if pname.startswith("arg") and pname[3:].isdigit() else kind, value))
    return out


def stub_params(fn: ast.FunctionDef) -> list[tuple[str, str, object]]:
    a = fn.args
    positional = [(p, "posonly") for p in a.posonlyargs] + [(p, "pos") for p in a.args]
    defaults = [inspect.Parameter.empty] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = []
    for (p, kind), d in zip(positional, defaults):
        if p.arg in ("self", "cls"):
            continue
        out.append((p.arg, kind, d if d is inspect.Parameter.empty else ast.literal_eval(d)))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((p.arg, "kw", inspect.Parameter.empty if d is None else ast.literal_eval(d)))
    return out


def is_property(fn: ast.FunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "property") or (isinstance(d, ast.Attribute) and d.attr == "setter")
        for d in fn.decorator_list
    )


def stub_functions() -> dict[str, list[ast.FunctionDef]]:
    """'name' or 'Class.name' -> its definitions (several for an overload)."""
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def methods(cls: ast.ClassDef) -> dict[str, list[ast.FunctionDef]]:
        # A stub-only private base (e.g. _Stream) lends its methods to each runtime class.
        own: dict[str, list[ast.FunctionDef]] = {}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                own.update(methods(classes[base.id]))
        inherited = set(own)
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and not is_property(item):
                if item.name in inherited:
                    own[item.name] = []
                    inherited.discard(item.name)
                own.setdefault(item.name, []).append(item)
        return own

    found: dict[str, list[ast.FunctionDef]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for name, defs in methods(node).items():
                found[f"{node.name}.{name}"] = defs
    return found


FUNCTIONS = stub_functions() if STUB.is_file() else {}


def test_the_stub_is_installed_with_the_package():
    assert STUB.is_file(), f"{STUB} is missing: the package must ship its type stub"
    assert (STUB.parent / "py.typed").is_file()
    assert len(FUNCTIONS) > 100


@pytest.mark.parametrize("qualname", sorted(FUNCTIONS))
def test_stub_signature_matches_the_binding(qualname):
    obj: object = _core
    for part in qualname.split("."):
        obj = getattr(obj, part)
    name = qualname.split(".")[-1]
    if not (inspect.getdoc(obj) or "").startswith(name + "("):
        pytest.skip(f"{qualname} has no pybind11 signature line")
    want = runtime_params(obj, name)
    defs = FUNCTIONS[qualname]
    for fn in defs:  # every overload: the same parameters in the same order
        got = stub_params(fn)
        assert [p[0] for p in got if p[1] != "posonly"] == [p[0] for p in want if p[1] != "posonly"], qualname
        assert len(got) == len(want), qualname
    # the last overload (or the only definition) is the general one: kinds and defaults too
    assert [(n, k, d) for n, k, d in stub_params(defs[-1]) if k != "posonly"] == [
        (n, k, d) for n, k, d in want if k != "posonly"
    ], qualname
