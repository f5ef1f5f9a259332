"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` on 127.0.0.1 and a free port.

The fixture ``postgres_url`` (session-scoped) starts one server for the whole
run, with ``fsync=off`` (nothing here needs to survive a power cut), and
stops it at the end.  It runs as the user ``postgres`` when the tests run as
root (``initdb`` refuses root), else as the current user.  It skips only
where the server binaries are missing, saying so, and never when the
environment variable ``CI`` is ``true``: there it fails instead.  Where
``NETLEARN_TEST_POSTGRES`` holds a URL (``.ci/run`` starts a server and sets
it), that server is used instead.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

#: Where Debian and Ubuntu put the server binaries (any version), then PATH.
BIN_GLOB = "/usr/lib/postgresql/*/bin"


def find_bin() -> str | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None."""
    for folder in sorted(glob.glob(BIN_GLOB), reverse=True):
        if all(os.access(os.path.join(folder, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return folder
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    return os.path.dirname(initdb) if initdb and pg_ctl else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg://USER@127.0.0.1:PORT/postgres`` of a server that lives for the test session."""
    if os.environ.get("NETLEARN_TEST_POSTGRES"):
        yield os.environ["NETLEARN_TEST_POSTGRES"]
        return
    folder = find_bin()
    if folder is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the PostgreSQL server binaries (initdb, pg_ctl) are missing.")
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found in {BIN_GLOB} or on PATH")
    import psycopg  # noqa: F401  (the test extra installs it: a missing one is an error, not a skip)
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    root = tempfile.mkdtemp(prefix="netlearn-pg-")
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    run = lambda argv: subprocess.run(_as_server_user(argv), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run([os.path.join(folder, "initdb"), "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c unix_socket_directories={root}"
        run([os.path.join(folder, "pg_ctl"), "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"])
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.strip() or exc.stdout.strip()}")
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([os.path.join(folder, "pg_ctl"), "-D", data, "-m", "immediate", "-w",
                                        "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
