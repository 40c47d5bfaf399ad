"""Profiling on a device over SSH: copy the probe and the model to a temporary folder, run, clean up.

1. ``mktemp -d`` on the device (under ``$TMPDIR`` or /tmp, or ``--remote-tmpdir``);
2. ``scp`` the standalone probe, the model and the inputs (if any) into it;
3. run the probe with the device's python, its stdin held open: if edgepack (or its ssh) goes away,
   the probe sees the channel close and stops;
4. always — after an error, a timeout or Ctrl-C too — kill the probe (by the pid it wrote) and
   ``rm -rf`` the folder, over a fresh connection.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgepack.errors import RemoteError, RuntimeUnavailable
from edgepack.util.child_process import ChildResult
from edgepack.latency.probe import ProbeSpec
from edgepack.remote.ssh import Ssh, SshTarget

MKTEMP = 'mktemp -d "${TMPDIR:-/tmp}/edgepack-profile.XXXXXX"'
CLEANUP = 'if [ -f "$1/probe.pid" ]; then kill "$(cat "$1/probe.pid")" 2>/dev/null; fi; rm -rf -- "$1"'


def make_remote_dir(ssh: Ssh, base: str | None, timeout: float) -> str:
    """Create the temporary folder on the device and return its absolute path."""
    result = ssh.run(["mktemp", "-d", f"{base.rstrip('/')}/edgepack-profile.XXXXXX"] if base else MKTEMP,
                     timeout=timeout)
    if result.timed_out:
        raise RemoteError(f"{ssh.target} did not answer within {timeout:g} s", hint="check the device and network")
    folder = result.stdout.strip()
    if result.returncode != 0 or not re.fullmatch(r"/[A-Za-z0-9._/-]+", folder):
        raise RemoteError(f"cannot create a temporary folder on {ssh.target}: "
                          f"{result.stderr.strip()[:200] or folder or 'no output'}",
                          hint="check that the device has mktemp and free space in its temporary folder")
    return folder


def remove_remote_dir(ssh: Ssh, folder: str, timeout: float) -> bool:
    """Kill the probe if it still runs, and delete ``folder``. True when the device confirmed it."""
    try:
        result = ssh.run(["sh", "-c", CLEANUP, "edgepack-cleanup", folder], timeout=timeout)
    except (RemoteError, OSError):
        return False
    return not result.timed_out and result.returncode == 0


def run_remote(ssh: Ssh, *, spec: ProbeSpec, probe: Path, model: Path, inputs: Path | None, python: str,
               remote_tmpdir: str | None, timeout: float) -> tuple[ChildResult, list[str]]:
    """Run the probe on the device; returns its result and notes (e.g. a cleanup that failed)."""
    step_timeout = ssh.connect_timeout + 30.0
    folder = make_remote_dir(ssh, remote_tmpdir, step_timeout)
    notes: list[str] = []
    try:
        files = [probe, model] + ([inputs] if inputs else [])
        ssh.copy(files, folder, timeout=step_timeout + model.stat().st_size / 1e6)
        argv = [python, f"{folder}/{probe.name}",
                *spec.args(f"{folder}/{model.name}", f"{folder}/{inputs.name}" if inputs else None),
                "--watch-stdin", "--pid-file", f"{folder}/probe.pid"]
        result = ssh.run(argv, timeout=timeout + step_timeout, keep_stdin_open=True)
        if result.timed_out:
            raise RuntimeUnavailable(f"the probe on {ssh.target} did not finish within {timeout:g} s; it was stopped",
                                     hint="raise --timeout, lower --max-seconds, or check the device")
        return result, notes
    finally:
        if not remove_remote_dir(ssh, folder, step_timeout):
            notes.append(f"could not remove {folder} on {ssh.target}; delete it by hand")


def resolve_target(remote: str, device) -> tuple[SshTarget, str | None]:
    """The SSH target for ``--remote`` (``@device``: the profile's ``connection``), and that
    connection's python if the profile gives one."""
    from edgepack.errors import ConfigError
    from edgepack.remote.ssh import parse_target

    connection = device.connection if device is not None else None
    if remote == "@device":
        if connection is None or not connection.ssh:
            name = device.name if device is not None else "no device"
            raise ConfigError(f"--remote without a host needs a device profile with connection.ssh ({name} has none)",
                              hint="give --remote [user@]host[:port]")
        return parse_target(connection.ssh, connection.port), connection.python
    return parse_target(remote), connection.python if connection is not None else None
