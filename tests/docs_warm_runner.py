"""A warm interpreter for tests/test_docs.py.

Importing flash-linear-attention takes about 10 s (it defines hundreds of kernels at import), so
running every documentation block that needs it in a fresh interpreter spent most of the docs
tests' time in that import. This program imports the packages named on its command line once, then
runs each block it is sent in a child forked from itself: the child starts from a clean slate as a
fresh interpreter would — its own working directory, `__main__` namespace, argv, stdout and stderr
files — except that those packages are already in `sys.modules`.

Protocol (one JSON object per line): after the imports it prints {"ready": true}; for each request
{"script", "cwd", "stdout", "stderr"} read from stdin it prints {"pid": <child>} and, when the child
has ended, {"exit": <exit code, or -signal>}. It ends when stdin closes.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
import traceback
import warnings


def _run_child(req: dict[str, str]) -> None:
    code = 1
    try:
        os.chdir(req["cwd"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            f = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.argv = [req["script"]]
        sys.path[0] = os.path.dirname(req["script"])
        runpy.run_path(req["script"], run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. fla's "no GPU found"; a block's own import says it again
        for name in sys.argv[1:]:
            importlib.import_module(name)
    reply = sys.stdout

    def say(obj: object) -> None:
        reply.write(json.dumps(obj) + "\n")
        reply.flush()

    say({"ready": True})
    for line in sys.stdin:
        req = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(req)
        say({"pid": pid})
        _, status = os.waitpid(pid, 0)
        say({"exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
