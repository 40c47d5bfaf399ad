"""The system ``ssh``/``scp``, used safely: never a prompt, host keys checked, every argument quoted.

- ``BatchMode=yes``: no password or passphrase prompt, ever; a missing key is an error.
- ``StrictHostKeyChecking=yes``; ``accept-new`` (trust a host seen for the first time) only when
  asked for; a changed key is always refused.
- ``ConnectTimeout``, and keep-alives so a vanished device is noticed.
- Host and user names are checked (never starting with ``-``) and ``--`` ends the options.
- Remote commands are built from lists with ``shlex.quote`` on every element.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgepack.errors import ConfigError, RemoteError
from edgepack.util.child_process import ChildResult, run_child

_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.%A-Za-z]+\])$")


@dataclass(frozen=True)
class SshTarget:
    """``[user@]host[:port]``, checked."""

    host: str
    user: str | None = None
    port: int = 22

    @property
    def destination(self) -> str:
        host = self.host.strip("[]")
        return f"{self.user}@{host}" if self.user else host

    def __str__(self) -> str:
        text = f"{self.user}@{self.host}" if self.user else self.host
        return text if self.port == 22 else f"{text}:{self.port}"


def parse_target(text: str, default_port: int = 22) -> SshTarget:
    """Parse ``[user@]host[:port]`` (IPv6 in brackets). ConfigError (exit 2) for anything that could
    be read as an ssh option (a leading ``-``) or that holds spaces, quotes or shell characters."""
    raw = text.strip()
    if not raw:
        raise ConfigError("--remote needs a host: [user@]host[:port]")
    if raw.startswith("-") or "@-" in raw:
        raise ConfigError(f"refusing remote host '{raw}': a name starting with '-' would be read as an ssh option",
                          hint="give [user@]host[:port]")
    user, _, rest = raw.rpartition("@")
    port = default_port
    match = re.fullmatch(r"(\[[^\]]+\]|[^:]+)(?::(\d+))?", rest)
    if not match:
        raise ConfigError(f"cannot read remote host '{raw}'", hint="give [user@]host[:port]")
    host, port_text = match.group(1), match.group(2)
    if port_text:
        port = int(port_text)
    if not _HOST.match(host) or (user and not _NAME.match(user)):
        raise ConfigError(f"refusing remote host '{raw}': only letters, digits, '.', '_' and '-' are allowed "
                          f"in user and host names", hint="give [user@]host[:port]")
    if not 1 <= port <= 65535:
        raise ConfigError(f"remote port {port} is out of range (1-65535)")
    return SshTarget(host, user or None, port)


def _which(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RemoteError(f"the '{name}' program is not installed here",
                          hint="install the OpenSSH client (apt-get install openssh-client)")
    return found


# In order: ssh prints "Host key verification failed" after both an unknown and a changed key.
_SSH_FAILURES = [
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "the host key of {t} has CHANGED since it was last seen "
     "(a re-imaged device, or someone in between)", "make sure this is the right device, then remove its old key "
     "with 'ssh-keygen -R HOST' (for a port: '[HOST]:PORT'); --accept-new-host-key never accepts a changed key"),
    ("host key is known for", "the host key of {t} is unknown here (first connection)",
     "check the key and add it to known_hosts (ssh-keyscan), or trust a first-seen host with --accept-new-host-key"),
    ("Host key verification failed", "the host key of {t} could not be verified",
     "connect once with 'ssh' by hand to see why, or trust a first-seen host with --accept-new-host-key"),
    ("Permission denied", "ssh authentication to {t} failed (no usable key; edgepack never asks for a password)",
     "install your public key on the device (ssh-copy-id) or name one in your ssh config"),
    ("Connection refused", "cannot connect to {t}: connection refused", "check the host, the port and that sshd runs"),
    ("Could not resolve hostname", "cannot resolve the host name of {t}", "check the name or use an IP address"),
    ("timed out", "cannot connect to {t}: timed out", "check that the device is on and reachable"),
    ("No route to host", "cannot connect to {t}: no route to host", "check the network"),
]


class Ssh:
    """Run commands on, and copy files to, one target with the system ssh and scp."""

    def __init__(self, target: SshTarget, *, config_file: Path | None = None, accept_new_host_key: bool = False,
                 connect_timeout: int = 10):
        self.target = target
        self.config_file = config_file
        self.accept_new = accept_new_host_key
        self.connect_timeout = int(connect_timeout)

    def options(self) -> list[str]:
        """The options both ssh and scp get."""
        opts = ["-F", str(self.config_file)] if self.config_file else []
        opts += ["-o", "BatchMode=yes",
                 "-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new else 'yes'}",
                 "-o", f"ConnectTimeout={self.connect_timeout}",
                 "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                 "-o", "LogLevel=ERROR"]
        return opts

    def ssh_command(self, remote_argv: list[str]) -> list[str]:
        """The local argv that runs ``remote_argv`` (quoted element by element) on the target."""
        return [_which("ssh"), *self.options(), "-p", str(self.target.port), "--", self.target.destination,
                " ".join(shlex.quote(arg) for arg in remote_argv)]

    def run(self, remote_argv: list[str] | str, *, timeout: float, keep_stdin_open: bool = False) -> ChildResult:
        """Run a command on the target. A list is quoted element by element; a str is sent as is and
        must be a fixed command with no user input in it. ssh's own failures raise RemoteError."""
        argv = self.ssh_command(remote_argv) if isinstance(remote_argv, list) else \
            [*self.ssh_command([])[:-1], remote_argv]
        result = run_child(argv, timeout=timeout, keep_stdin_open=keep_stdin_open)
        if result.timed_out:
            return result
        if result.returncode == 255:
            self.raise_ssh_failure(result.stderr)
        return result

    def copy(self, files: list[Path], remote_dir: str, *, timeout: float) -> None:
        """Copy local ``files`` into the folder ``remote_dir`` on the target (scp)."""
        if not re.fullmatch(r"/[A-Za-z0-9._/-]+", remote_dir):
            raise RemoteError(f"unexpected remote folder name {remote_dir!r}")
        argv = [_which("scp"), "-q", *self.options(), "-P", str(self.target.port), "--",
                *[str(f) for f in files], f"{self.target.destination}:{remote_dir}/"]
        result = run_child(argv, timeout=timeout)
        if result.timed_out:
            raise RemoteError(f"copying to {self.target} did not finish within {timeout:g} s")
        if result.returncode != 0:
            if result.returncode == 255 or "verification" in result.stderr or "denied" in result.stderr:
                self.raise_ssh_failure(result.stderr)
            raise RemoteError(f"copying to {self.target}:{remote_dir} failed: {_first_line(result.stderr)}",
                              hint="check free space on the device and that its sshd offers sftp")

    def raise_ssh_failure(self, stderr: str) -> None:
        for needle, message, hint in _SSH_FAILURES:
            if needle in stderr:
                raise RemoteError(message.format(t=self.target), hint=hint)
        raise RemoteError(f"ssh to {self.target} failed: {_first_line(stderr) or 'no message'}",
                          hint="try 'ssh' by hand with the same host to see why")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
