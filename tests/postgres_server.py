"""A throwaway PostgreSQL server for the ``edgepack tune --storage postgresql://...`` tests.

``postgres_url`` (session scope) starts a real server from Debian's binaries
(``/usr/lib/postgresql/<ver>/bin``, newest version; ``bash scripts/test-deps.sh`` installs them)
with its own data folder in a fresh temporary directory, listening only on 127.0.0.1 on a free
port (its unix socket in that directory too), trust authentication for the ``edgepack`` role and
``fsync=off`` for speed. It yields the SQLAlchemy URL of an empty database ``edgepack_tune``:
``postgresql+psycopg2://edgepack@127.0.0.1:PORT/edgepack_tune``. At the end of the session the
server is stopped (``pg_ctl stop -m fast``, then harder) and the folder removed, whether the
tests passed or not. The system's own PostgreSQL cluster is never touched.

PostgreSQL refuses to run as root, so when the tests run as root (as in CI) the server runs as
the ``postgres`` system user that Debian's package creates (through ``runuser``, or ``setpriv``),
and the temporary folder is handed to that user; otherwise it runs as the current user.

Without the binaries or psycopg2 the fixture skips, naming ``bash scripts/test-deps.sh``; when
the environment variable ``CI`` is set it fails instead, so CI never silently skips.

Use it by importing it into the test module::

    from postgres_server import postgres_url  # noqa: F401  (a pytest fixture)

Each module that imports it gets its own server (pytest keys fixtures by where they are found).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DATABASE = "edgepack_tune"
ROLE = "edgepack"
START_TIMEOUT_S = 60
SERVER_USER_WHEN_ROOT = "postgres"


def _unavailable(reason: str):
    reason = f"{reason}; run `bash scripts/test-deps.sh` to install it"
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL test server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding initdb, pg_ctl and postgres."""
    candidates = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
                  if all(os.access(os.path.join(d, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres"))]
    return Path(max(candidates, key=_version_key)) if candidates else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Runner:
    """Runs the PostgreSQL tools as the user the server runs as."""

    def __init__(self, user: pwd.struct_passwd | None):
        self.user = user  # None: the current (non-root) user

    def prefix(self) -> list[str]:
        if self.user is None:
            return []
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user.pw_name, "--"]
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups", "--"]

    def __call__(self, *args, cwd: Path, timeout: float = START_TIMEOUT_S, check: bool = True):
        # LC_ALL=C: initdb and the server need no locale from the environment.
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        result = subprocess.run([*self.prefix(), *map(str, args)], cwd=cwd, env=env, timeout=timeout,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, args))} exited with {result.returncode}:\n"
                               f"{result.stdout}\n{result.stderr}")
        return result


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
    except KeyError:
        _unavailable(f"running as root and there is no '{SERVER_USER_WHEN_ROOT}' system user to run PostgreSQL as"
                     " (Debian's postgresql package creates it)")
    if not (shutil.which("runuser") or shutil.which("setpriv")):
        _unavailable("running as root and neither runuser nor setpriv is available to drop to the postgres user")
    return user


def _log_tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no server log)"


def _wait_until_accepting(psycopg2, port: int, deadline: float, log: Path) -> None:
    last = None
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user=ROLE, dbname="postgres", connect_timeout=5).close()
            return
        except psycopg2.OperationalError as e:
            last = e
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT_S} s: "
                       f"{last}\n{_log_tail(log)}")


def _kill_leftover(data: Path) -> None:
    """Last resort: SIGKILL the postmaster named in postmaster.pid (its children exit with it), if that
    process is still this server's (a stale file's pid may belong to another process by now)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        if str(data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _stop(run: _Runner, bindir: Path, data: Path, root: Path) -> None:
    """``pg_ctl stop -m fast``; if the server is still there, ``-m immediate``, then SIGKILL."""
    for mode, wait_s in (("fast", 30), ("immediate", 10)):
        if not (data / "postmaster.pid").exists():
            return
        try:
            run(bindir / "pg_ctl", "-D", data, "-m", mode, "-w", "-t", str(wait_s), "stop",
                cwd=root, timeout=wait_s + 10, check=False)
        except subprocess.TimeoutExpired:
            pass
    if (data / "postmaster.pid").exists():
        _kill_leftover(data)


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of an empty database on a throwaway PostgreSQL server (see the module docstring)."""
    try:
        import psycopg2
    except ImportError:
        _unavailable("psycopg2 (the psycopg2-binary package of the dev extra) is not installed")
    bindir = find_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl, postgres) under /usr/lib/postgresql/*/bin")
    user = _server_user()
    run = _Runner(user)

    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="edgepack-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            if run("test", "-w", root, cwd=Path("/"), check=False).returncode != 0:
                raise RuntimeError(f"the {user.pw_name} user cannot write {root}; set TMPDIR to a folder it can reach")
        run(bindir / "initdb", "-D", data, f"--username={ROLE}", "--auth=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync", cwd=root)
        deadline = time.monotonic() + START_TIMEOUT_S
        for attempt in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            settings = {"listen_addresses": "'127.0.0.1'", "port": str(port),
                        "unix_socket_directories": f"'{root}'", "fsync": "off", "synchronous_commit": "off",
                        "full_page_writes": "off", "max_connections": "100"}
            with open(data / "postgresql.conf", "a") as conf:  # the last setting of a name wins
                conf.write("\n# tests/postgres_server.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
            result = run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", str(START_TIMEOUT_S), "start",
                         cwd=root, timeout=START_TIMEOUT_S + 10, check=False)
            if result.returncode == 0:
                break
            if attempt == 2 or "already in use" not in _log_tail(log):
                raise RuntimeError(f"pg_ctl start failed ({result.returncode}):\n{result.stderr}\n{_log_tail(log)}")
        _wait_until_accepting(psycopg2, port, deadline, log)
        connection = psycopg2.connect(host="127.0.0.1", port=port, user=ROLE, dbname="postgres")
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()
        yield f"postgresql+psycopg2://{ROLE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        _stop(run, bindir, data, root)
        shutil.rmtree(root, ignore_errors=True)
