"""The ``streamattn`` command: run (synthetic and .npy inputs, causal and keys-first, sketched state,
k-sparse columns, probes), plan, JSON output, and bad input (message on stderr, exit code 2)."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import streamattn as sa
from streamattn.cli import _human, build_parser, main

RUN_FIELDS = {"tokens", "seconds", "tokens_per_second", "state_bytes", "peak_rss_bytes", "plan", "certificate"}


def run_json(capsys, *args: str) -> dict:
    assert main(["run", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints exactly one line"
    return json.loads(out)


def assert_sane(r: dict, n: int) -> None:
    assert set(r) >= RUN_FIELDS
    assert r["tokens"] == n and r["seconds"] > 0
    assert r["tokens_per_second"] == pytest.approx(n / r["seconds"])
    assert r["state_bytes"] > 0 and r["peak_rss_bytes"] >= r["rss_after_import_bytes"] > 0
    assert r["plan"]["degree"] == r["degree"] and r["plan"]["t"] == r["t"] == math.comb(
        r["d"] + r["degree"], r["degree"]
    )
    c = r["certificate"]
    for key in ("max_abs_error", "mean_abs_error", "max_rel_error"):
        assert isinstance(c[key], float) and 0 <= c[key] < 1e3
    json.dumps(r, allow_nan=False)  # strict JSON: no NaN, no numpy scalars or arrays


# --- synthetic input ----------------------------------------------------------------------
def test_run_causal_json(capsys):
    r = run_json(capsys, "--n", "3000", "--d", "4", "--dv", "3", "--probes", "5", "--block", "700")
    assert_sane(r, 3000)
    assert r["mode"] == "causal" and r["input"] == "synthetic" and r["certificate"]["evaluated"] == 5
    # The generator bounds the scores by beta and |V|_max by 1, so the Alman-Song bound must hold.
    assert r["certificate"]["max_abs_error"] <= r["plan"]["attention_bound"]
    assert r["state_bytes"] == sa.CausalStream(4, 3, probes=np.zeros((5, 4)), probe_positions=[0] * 5).nbytes


def test_run_state_does_not_depend_on_n_or_block(capsys, tmp_path):
    a = run_json(capsys, "--n", "600", "--d", "4", "--block", "600", "--save-state", str(tmp_path / "a"))
    b = run_json(capsys, "--n", "600", "--d", "4", "--block", "37", "--save-state", str(tmp_path / "b"))
    c = run_json(capsys, "--n", "2^13", "--d", "4")
    assert a["state_bytes"] == b["state_bytes"] == c["state_bytes"] and c["tokens"] == 8192
    # the synthetic rows do not depend on the block size, so neither does the state (up to rounding)
    sa_, sb = (sa.CausalStream.from_bytes((tmp_path / x).read_bytes()) for x in "ab")
    np.testing.assert_allclose(sa_.numerator_state, sb.numerator_state, rtol=1e-12)
    assert a["certificate"]["positions"] == b["certificate"]["positions"]


def test_run_keys_first_exact_and_sketched(capsys):
    ex = run_json(capsys, "--mode", "keys-first", "--n", "2000", "--d", "4", "--dv", "2")
    assert_sane(ex, 2000)
    assert ex["state"] == "exact" and ex["queries"] == 2000 and ex["queries_per_second"] > 0
    assert set(ex["certificate"]["positions"]) == {-1}
    sk = run_json(
        capsys,
        "--mode",
        "keys-first",
        "--state",
        "sketched",
        "--sketch-size",
        "64",
        "--n",
        "2000",
        "--d",
        "4",
        "--dv",
        "2",
        "--sketch",
        "gaussian",
    )
    assert_sane(sk, 2000)
    assert sk["state"] == "sketched" and sk["plan"]["sketch_size"] == 64
    assert sk["state_bytes"] > ex["state_bytes"]  # s x (t + dv) against t x dv: what the paper's layout costs


def test_run_sparse_columns_and_eps(capsys, tmp_path):
    r = run_json(
        capsys,
        "--n",
        "4000",
        "--d",
        "4",
        "--dv",
        "2",
        "--k",
        "3",
        "--eps1",
        "0.5",
        "--decode",
        "standard",
        "--columns-out",
        str(tmp_path / "cols.npz"),
    )
    sc = r["sparse_columns"]
    assert sc["columns"] == 2 and sc["k"] == 3 and all(0 < z <= 3 for z in sc["nnz"]) and sc["decode_seconds"] >= 0
    assert sc["sketch_bytes"] == r["plan"]["output_sketch"]["nbytes"]
    with np.load(tmp_path / "cols.npz") as z:
        assert int(z["n"]) == 4000 and len(z["indices_0"]) == sc["nnz"][0]
    r = run_json(capsys, "--n", "1000", "--d", "4", "--beta", "0.5", "--eps", "1e-4")
    assert r["degree"] == sa.choose_degree(1e-4, 0.5)


def test_run_text_output(capsys):
    assert main(["run", "--n", "1500", "--d", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan(")
    for word in ("tokens/s", "state bytes", "peak RSS", "certificate", "guaranteed"):
        assert word in out


# --- .npy inputs: the command equals the same stream run in Python ------------------------
def write_inputs(tmp_path: Path, rng, n=1500, d=4, dv=3, nq=None, dtype=np.float64):
    Q = rng.uniform(-0.6, 0.6, size=(nq or n, d)).astype(dtype)
    K = rng.uniform(-0.6, 0.6, size=(n, d)).astype(dtype)
    V = rng.normal(size=(n, dv)).astype(dtype)
    paths = [str(tmp_path / f"{x}.npy") for x in "qkv"]
    for p, a in zip(paths, (Q, K, V)):
        np.save(p, a)
    return (Q, K, V), ["--q-file", paths[0], "--k-file", paths[1], "--v-file", paths[2]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npy_causal_equals_python_stream(capsys, tmp_path, rng, dtype):
    (Q, K, V), files = write_inputs(tmp_path, rng, dtype=dtype)
    r = run_json(
        capsys,
        *files,
        "--block",
        "400",
        "--degree",
        "4",
        "--k",
        "2",
        "--eps1",
        "0.5",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "out.npy"),
        "--save-state",
        str(tmp_path / "state"),
    )
    assert r["input"] == "npy" and r["tokens"] == 1500 and r["degree"] == 4
    pos = np.array(r["certificate"]["positions"])
    cs = sa.CausalStream(
        4, 3, degree=4, probes=Q[pos].astype(np.float64), probe_positions=pos, output_sketch=(2, 0.5), n=1500, seed=3
    )
    rows = np.concatenate([cs.update(Q[a : a + 400], K[a : a + 400], V[a : a + 400]) for a in range(0, 1500, 400)])
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), rows)
    assert (tmp_path / "state").read_bytes() == cs.to_bytes()
    assert r["certificate"]["max_abs_error"] == cs.certificate()["max_abs_error"]
    # beta was measured by the pre-pass over the files
    c = 1 / math.sqrt(4)
    Q64, K64 = Q.astype(np.float64), K.astype(np.float64)
    beta = c * np.linalg.norm(Q64, axis=1).max() * np.linalg.norm(K64, axis=1).max()
    assert r["beta"] == pytest.approx(beta, rel=1e-12) and r["beta_source"].startswith("measured")


def test_npy_keys_first_cross_attention_equals_python(capsys, tmp_path, rng):
    (Q, K, V), files = write_inputs(tmp_path, rng, n=900, nq=250)
    r = run_json(
        capsys, *files, "--mode", "keys-first", "--block", "128", "--probes", "3", "--out", str(tmp_path / "out.npy")
    )
    assert r["tokens"] == 900 and r["queries"] == 250
    kv = sa.KVStream(4, 3)
    for a in range(0, 900, 128):
        kv.add(K[a : a + 128], V[a : a + 128])
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), kv.query(Q), rtol=1e-13, atol=1e-15)
    # the probes are queries read ahead (seeded positions among the 250), each over every key
    assert r["certificate"]["evaluated"] == 3 and set(r["certificate"]["positions"]) == {-1}
    rows = np.random.default_rng([0, 0x9E3779B9]).choice(250, size=3, replace=False)
    err = np.abs(kv.query(Q[np.sort(rows)]) - sa.exact_attention(Q[np.sort(rows)], K, V)).max()
    assert r["certificate"]["max_abs_error"] == pytest.approx(err, rel=1e-9)


def test_npy_n_takes_a_prefix(capsys, tmp_path, rng):
    (Q, K, V), files = write_inputs(tmp_path, rng, n=800)
    r = run_json(capsys, *files, "--n", "300", "--out", str(tmp_path / "o.npy"), "--probes", "0")
    assert r["tokens"] == 300 and r["certificate"] is None
    np.testing.assert_allclose(
        np.load(tmp_path / "o.npy"), sa.CausalStream(4, 3).update(Q[:300], K[:300], V[:300]), rtol=1e-12
    )


# --- plan -------------------------------------------------------------------------------------
def test_plan_subcommand(capsys):
    assert main(["plan", "--n", "2^20", "--d", "16", "--beta", "0.5", "--k", "8", "--eps1", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan(n=1048576, d=16") and "output sketch" in out
    assert main(["plan", "--n", "4096", "--d", "8", "--beta", "3", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = sa.plan(4096, 8, beta=3.0).as_dict()
    assert got["vacuous"] is True and want["vacuous"] is True
    assert got["attention_bound"] is None and got["column_bound"] is None  # inf is not JSON; vacuous says why
    assert got == {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in want.items()}


# --- help: every option explained, its default stated once and truthfully --------------------
def subparsers() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


# How a help text writes a default that is not its str().
SHOWN = {1 << 20: "2^20"}


@pytest.mark.parametrize("command", ["run", "plan"])
def test_help_states_each_default_once(command, capsys):
    for action in subparsers()[command]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0]
        assert action.help, f"{command} {name} has no help text"
        assert action.help.count("default") == 1, f"{command} {name}: {action.help!r}"
        if action.default is False:  # a flag
            assert "(default off" in action.help, f"{command} {name}: {action.help!r}"
        elif action.default is not None:  # argparse's own default, as the help states it
            shown = SHOWN.get(action.default, str(action.default))
            assert f"(default {shown})" in action.help, f"{command} {name}: {action.help!r} vs {action.default!r}"
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: " not in text and "None" not in text  # no second, formatter-written default


def test_defaults_the_help_computes_hold(capsys):
    """The defaults that are None in the parser, as the help texts state them."""
    r = run_json(capsys, "--n", "256", "--mode", "keys-first", "--state", "sketched", "--k", "2", "--probes", "2")
    assert (r["d"], r["dv"], r["degree"], r["beta"]) == (16, 16, 2, 0.5)
    assert r["plan"]["sketch_size"] == 256 and r["sparse_columns"]["eps1"] == 0.25
    assert main(["plan", "--json", "--k", "2", "--state", "sketched"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["n"], got["d"], got["dv"], got["degree"], got["sketch_size"]) == (1 << 20, 16, 16, 2, 256)
    assert got["output_sketch"]["eps1"] == 0.25 and got["output_sketch"]["delta"] == 0.01


# --- state bytes: what the plan calls the state, and what else the stream holds ----------------
def test_state_bytes_breakdown_causal(capsys):
    r = run_json(capsys, "--n", "500", "--d", "4", "--dv", "3", "--probes", "5", "--k", "2")
    parts = r["state_bytes_breakdown"]
    assert sum(parts.values()) == r["state_bytes"]
    assert parts["state"] == r["plan"]["state_bytes"] == sa.CausalStream(4, 3).nbytes
    probed = sa.CausalStream(4, 3, probes=np.zeros((5, 4)), probe_positions=[0] * 5)
    assert parts["probes"] == probed.nbytes - sa.CausalStream(4, 3).nbytes > 0
    assert parts["output_sketch"] == r["plan"]["output_sketch"]["nbytes"] == r["sparse_columns"]["sketch_bytes"]
    assert main(["run", "--n", "500", "--d", "4", "--dv", "3", "--probes", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    s, pr = parts["state"], parts["probes"]
    assert f"state bytes      {s + pr} = {s} state + {pr} probes; independent of n" in out
    assert f"state            exact, {s} bytes" in out  # the plan's figure, under the same name


@pytest.mark.parametrize("state", ["exact", "sketched"])
def test_state_bytes_breakdown_keys_first(capsys, state):
    size = ["--sketch-size", "16"] if state == "sketched" else []
    r = run_json(capsys, "--n", "300", "--d", "4", "--mode", "keys-first", "--state", state, *size)
    parts = r["state_bytes_breakdown"]
    bare = sa.KVStream(4, 4, state=state, sketch_size=16)
    assert parts == {"state": bare.nbytes, "probes": r["state_bytes"] - bare.nbytes, "output_sketch": 0}
    probed = sa.KVStream(4, 4, state=state, sketch_size=16, probes=np.zeros((8, 4)))
    assert parts["probes"] == probed.nbytes - bare.nbytes > 0


# --- suggested_degree: passed through from the core, None when there is no suggestion ----------
def test_suggested_degree_is_the_plans(capsys):
    for beta, want in (("2", 6), ("3", None)):  # vacuous at g = 2: degree 6 fixes it; at beta 3 none does
        assert sa.plan(1000, 4, beta=float(beta)).suggested_degree == want
        assert main(["plan", "--n", "1000", "--d", "4", "--beta", beta, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["suggested_degree"] == want
        r = run_json(capsys, "--n", "200", "--d", "4", "--beta", beta, "--probes", "0")
        assert r["plan"]["suggested_degree"] == want
    assert main(["plan", "--json"]) == 0  # no beta, no suggestion
    assert json.loads(capsys.readouterr().out)["suggested_degree"] is None


def test_no_suggested_degree_when_the_bound_holds(capsys):
    r = run_json(capsys, "--n", "200", "--d", "4", "--probes", "0")  # beta 0.5: the bound holds at g = 2
    assert r["plan"]["vacuous"] is False
    assert r["plan"]["suggested_degree"] is None


# --- floats for humans ------------------------------------------------------------------------
LONG_FLOAT = re.compile(r"\d\.\d{9,}")


def test_human_shortens_the_cores_17_digit_floats():
    assert _human("eps(beta=0.29999999999999999, g) <= 9.9999999999999995e-07") == "eps(beta=0.3, g) <= 1e-06"
    assert _human("got 1.1000000000000001, -2.0000000000000004") == "got 1.1, -2"
    assert _human("x 0.12345678901234568 y") == "x 0.1235 y"  # not short: 4 significant digits
    for keep in ("1.18e+04 728819784 0.03435 1e-30", "/tmp/0.12345678901234567.npy", "v0.1.0"):
        assert _human(keep) == keep


def test_text_output_has_no_long_floats(capsys):
    argv = ["plan", "--n", "2^30", "--d", "32", "--beta", "0.3", "--eps", "1e-6", "--k", "16", "--eps1", "0.1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not LONG_FLOAT.search(out), out
    assert "eps(beta=0.3, g) <= 1e-06" in out and "eps1=0.1:" in out
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["beta"] == 0.3  # JSON keeps full precision
    run = ["run", "--n", "600", "--d", "4", "--beta", "0.3", "--eps", "1e-6", "--k", "2", "--eps1", "0.1"]
    assert main([*run, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert not LONG_FLOAT.search(out), out
    assert "eps1 = 0.1:" in out and "beta             0.3 (" in out
    assert main(["plan", "--k", "2", "--eps1", "1.1"]) == 2
    err = capsys.readouterr().err
    assert "got 1.1" in err and not LONG_FLOAT.search(err), err


# --- bad input --------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path, rng):
    _, f = write_inputs(tmp_path, rng, n=200)
    Q = rng.normal(size=(200, 4))
    Q[150, 1] = np.nan
    np.save(tmp_path / "nan.npy", Q)
    np.save(tmp_path / "int.npy", np.zeros((200, 4), dtype=np.int64))
    np.save(tmp_path / "3d.npy", np.zeros((2, 100, 4)))
    np.save(tmp_path / "d5.npy", np.zeros((200, 5)))
    np.save(tmp_path / "short.npy", np.zeros((100, 3)))
    np.savez(tmp_path / "arch.npz", a=np.zeros(3))
    (tmp_path / "text.npy").write_text("not numpy")
    return {"q": f[1], "k": f[3], "v": f[5], "dir": tmp_path}


BAD = [
    (["run", "--k-file", "{k}", "--v-file", "{v}"], "go together"),
    (["run", "--q", "{dir}/missing.npy", "--k-file", "{k}", "--v", "{v}"], "no such file"),
    (["run", "--q", "{dir}/int.npy", "--k-file", "{k}", "--v", "{v}"], "float32 or float64"),
    (["run", "--q", "{dir}/3d.npy", "--k-file", "{k}", "--v", "{v}"], "2-D"),
    (["run", "--q", "{dir}/text.npy", "--k-file", "{k}", "--v", "{v}"], "not a readable .npy"),
    (["run", "--q", "{dir}/arch.npz", "--k-file", "{k}", "--v", "{v}"], ".npz"),
    (["run", "--q", "{dir}/d5.npy", "--k-file", "{k}", "--v", "{v}"], "same d"),
    (["run", "--q", "{q}", "--k-file", "{k}", "--v", "{dir}/short.npy"], "one value row per key"),
    (["run", "--q", "{dir}/short.npy", "--k-file", "{k}", "--v", "{v}"], "same d"),
    (["run", "--q", "{q}", "--k-file", "{k}", "--v", "{v}", "--n", "5000"], "hold 200 keys"),
    (["run", "--q", "{q}", "--k-file", "{k}", "--v", "{v}", "--d", "7"], "disagrees"),
    (["run", "--q", "{dir}/nan.npy", "--k-file", "{k}", "--v", "{v}", "--block", "64"], "row 150"),
    (["run", "--k", "{k}"], "--k-file"),
    (["run", "--state", "sketched"], "keys-first"),
    (["run", "--eps1", "0.5"], "needs --k"),
    (["run", "--degree", "2", "--eps", "0.01"], "not both"),
    (["run", "--eps", "1e-12", "--beta", "4", "--n", "10"], "out of reach"),
    (["run", "--block", "0"], "--block"),
    (["run", "--mode", "sideways"], "invalid choice"),
    (["run", "--n", "lots"], "not a token count"),
    (["run", "--n", "100", "--degree", "9"], "degree"),
    (["plan", "--n", "0"], "n"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_input_exits_2_with_a_message(argv, message, files, capsys):
    argv = [a.format(**files) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_causal_needs_as_many_queries_as_keys(tmp_path, rng, capsys):
    _, f = write_inputs(tmp_path, rng, n=300, nq=100)
    assert main(["run", *f]) == 2
    assert "--mode keys-first" in capsys.readouterr().err


# --- as a process -----------------------------------------------------------------------------
def command() -> list[str]:
    exe = Path(sys.executable).parent / ("streamattn.exe" if os.name == "nt" else "streamattn")
    found = str(exe) if exe.exists() else shutil.which("streamattn")
    return [found] if found else [sys.executable, "-m", "streamattn.cli"]


def test_console_script_json_and_errors(tmp_path):
    p = subprocess.run(
        [*command(), "run", "--n", "4096", "--d", "4", "--json", "--mode", "keys-first"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert_sane(r, 4096)
    assert p.stderr == ""  # --json: no progress bar
    p = subprocess.run(
        [*command(), "run", "--q", str(tmp_path / "nope.npy"), "--k-file", "x", "--v", "y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "no such file" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "streamattn.cli", "plan", "--n", "2^16", "--d", "8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and p.stdout.startswith("Plan(n=65536, d=8")


def test_progress_bar_goes_to_stderr():
    p = subprocess.run(
        [*command(), "run", "--n", "3000", "--d", "4", "--block", "500"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert "tokens" in p.stderr and "100%" in p.stderr and "tokens/s" in p.stdout


def run_on_a_terminal(argv: list[str], columns: int = 100) -> tuple[subprocess.CompletedProcess[str], str]:
    """Runs the command with stderr on a pseudo-terminal (columns wide) and stdout on a pipe."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer has gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return p, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(os.name == "nt", reason="needs a POSIX pseudo-terminal")
def test_json_shows_progress_on_a_terminal():
    argv = [*command(), "run", "--n", "3000", "--d", "4", "--block", "500", "--mode", "keys-first", "--json"]
    p, err = run_on_a_terminal(argv)
    assert p.returncode == 0, err
    assert_sane(json.loads(p.stdout), 3000)  # stdout: exactly one JSON object
    assert p.stdout.count("\n") == 1
    assert "keys" in err and "queries" in err and "100%" in err
    p, err = run_on_a_terminal(argv, columns=0)  # a terminal that does not know its width still gets a bar
    assert p.returncode == 0 and "100%" in err, err
    p, err = run_on_a_terminal([*argv, "--no-progress"])
    assert p.returncode == 0 and err == ""


def test_json_beta_pre_pass_progress(tmp_path, rng, capsys, monkeypatch):
    _, files = write_inputs(tmp_path, rng, n=700)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr, taken for a terminal
    assert main(["run", "--json", *files, "--block", "100"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["beta_source"].startswith("measured")
    assert "beta pre-pass" in err and "1.40k/1.40k" in err and "tokens" in err
