"""``edgepack profile --remote`` against a REAL sshd started on 127.0.0.1 for these tests.

The sshd runs as the current user on a free high port with its own config, throwaway host and user
keys and an AuthorizedKeysFile in a temporary folder; ssh gets ``-F`` with a test ssh_config, so
~/.ssh is never read or written. The "device" is a second virtual environment (.venv-device, made
by scripts/test-deps.sh) with tflite-runtime 2.14 and numpy<2; the main venv is a device with
ai-edge-litert. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error
from edgepack.errors import ConfigError
from edgepack.latency import LatencyConfig, profile

DEVICE_PYTHON = ROOT / ".venv-device" / "bin" / "python"
FAST = ["--runs", "5", "--warmup", "1", "--warmup-seconds", "0", "--min-seconds", "0.05"]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(SSHD) or not shutil.which("ssh"),
                       reason="OpenSSH server/client missing: run scripts/test-deps.sh (make test does)"),
    pytest.mark.skipif(not DEVICE_PYTHON.exists(), reason="no .venv-device: run scripts/test-deps.sh"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgepack-test", "-f", str(path)], check=True)
    return (path.parent / (path.name + ".pub")).read_text().strip()


def write_ssh_config(path: Path, folder: Path, known_hosts: Path) -> Path:
    path.write_text(f"""Host *
  IdentityFile {folder / 'user_key'}
  IdentitiesOnly yes
  UserKnownHostsFile {known_hosts}
  GlobalKnownHostsFile /dev/null
  PasswordAuthentication no
  KbdInteractiveAuthentication no
""")
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A throwaway sshd on 127.0.0.1; yields the target, an ssh config and the folder."""
    folder = tmp_path_factory.mktemp("sshd")
    host_public = keygen(folder / "host_key")
    (folder / "authorized_keys").write_text(keygen(folder / "user_key") + "\n")
    port, user = free_port(), getpass.getuser()
    config = folder / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {folder / 'host_key'}
PidFile {folder / 'sshd.pid'}
AuthorizedKeysFile {folder / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {user}
Subsystem sftp internal-sftp
""")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation folder
    log = open(folder / "sshd.log", "w")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.1)
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    yield {"target": f"{user}@127.0.0.1:{port}", "port": port, "user": user, "folder": folder,
           "ssh_config": write_ssh_config(folder / "ssh_config", folder, known_hosts)}
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def remote_args(sshd, *extra):
    return ["--remote", sshd["target"], "--ssh-config", sshd["ssh_config"], "--connect-timeout", "5", *extra]


def profile_json(run, *args):
    result = run("profile", *map(str, args), "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_remote_with_tflite_runtime_device(run, sshd, tflite_models, tmp_path):
    tmpdir = tmp_path / "remote-tmp"
    tmpdir.mkdir()
    report = profile_json(run, tflite_models["int8"], *FAST, *remote_args(sshd, "--python", DEVICE_PYTHON,
                                                                           "--remote-tmpdir", tmpdir))
    assert report["where"] == "remote" and report["host"] == sshd["target"]
    assert report["runtime"]["name"] == "tflite-runtime" and report["runtime"]["version"] == "2.14.0"
    assert report["latency_ms"]["count"] >= 5 and report["peak_memory_mb"] > 0
    assert list(tmpdir.iterdir()) == []  # the remote temporary folder was removed


def test_remote_with_ai_edge_litert_device(run, sshd, tflite_models):
    report = profile_json(run, tflite_models["float32"], *FAST, "--op-profile",
                          *remote_args(sshd, "--python", sys.executable))
    assert report["runtime"]["name"] == "ai-edge-litert" and report["where"] == "remote"
    assert report["op_profile"]["measured"] is False


def test_remote_from_the_device_profile_connection(run, sshd, tflite_models, tmp_path):
    device = tmp_path / "test-pi.yaml"
    device.write_text(f"""name: test-pi
arch: any
runtime: tflite-runtime
threads: 1
modes: [int8, float32]
memory_mb: 1024
connection: {{ssh: "{sshd['user']}@127.0.0.1", port: {sshd['port']}, python: "{DEVICE_PYTHON}"}}
""")
    report = profile_json(run, tflite_models["int8"], *FAST, "--device", device, "--remote",
                          "--ssh-config", sshd["ssh_config"])
    assert report["device"] == "test-pi" and report["runtime"]["name"] == "tflite-runtime"
    assert report["runtime"]["threads"] == 1


def test_unreachable_host_exit_6_fast_and_no_prompt(run, sshd, tflite_models):
    started = time.monotonic()
    result = run("profile", tflite_models["int8"], "--remote", f"127.0.0.1:{free_port()}",
                 "--ssh-config", sshd["ssh_config"], "--connect-timeout", "3")
    assert_one_line_error(result, 6, "cannot connect", "connection refused")
    assert time.monotonic() - started < 10


def test_host_that_looks_like_an_option_is_refused(run, tflite_models, tmp_path):
    marker = tmp_path / "pwned"
    for form in (["--remote", f"-oProxyCommand=touch {marker}"], [f"--remote=-oProxyCommand=touch {marker}"]):
        assert_one_line_error(run("profile", tflite_models["int8"], *form), 2)  # the command line refuses it
    with pytest.raises(ConfigError, match="refusing remote host '-oProxyCommand") as info:
        profile(LatencyConfig(model=tflite_models["int8"], remote=f"-oProxyCommand=touch {marker}"))
    assert info.value.exit_code == 2
    assert not marker.exists()
    assert_one_line_error(run("profile", tflite_models["int8"], "--remote", "pi@-oProxyCommand=x"), 2)
    assert_one_line_error(run("profile", tflite_models["int8"], "--remote", "pi@host;reboot"), 2)


def test_unknown_host_key_is_refused_unless_accepted(run, sshd, tflite_models, tmp_path):
    config = write_ssh_config(tmp_path / "ssh_config", sshd["folder"], tmp_path / "empty_known_hosts")
    args = [tflite_models["int8"], *FAST, "--remote", sshd["target"], "--ssh-config", config,
            "--python", DEVICE_PYTHON]
    assert_one_line_error(run("profile", *args), 6, "host key", "--accept-new-host-key")
    assert profile_json(run, *args, "--accept-new-host-key")["where"] == "remote"
    assert "127.0.0.1" in (tmp_path / "empty_known_hosts").read_text()


def test_a_changed_host_key_is_named_as_changed_with_advice_that_helps(run, sshd, tflite_models, tmp_path):
    host_type = "ssh-ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = (tmp_path / "other.pub").read_text().split()[1]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd['port']} {host_type} {other}\n")
    config = write_ssh_config(tmp_path / "ssh_config", sshd["folder"], tmp_path / "known_hosts")
    args = [tflite_models["int8"], *FAST, "--remote", sshd["target"], "--ssh-config", config,
            "--python", DEVICE_PYTHON]
    for extra in ([], ["--accept-new-host-key"]):
        message = assert_one_line_error(run("profile", *args, *extra), 6, "has CHANGED", "ssh-keygen -R")
        assert "unknown" not in message


def bare_venv(base: Path, with_numpy: bool) -> Path:
    """A python with no TFLite runtime (and, unless asked, no numpy): a device nobody set up."""
    subprocess.run([str(DEVICE_PYTHON), "-m", "venv", "--without-pip", str(base)], check=True)
    if with_numpy:
        source = Path(subprocess.check_output([str(DEVICE_PYTHON), "-c",
                                               "import numpy, os; print(os.path.dirname(numpy.__path__[0]))"],
                                              text=True).strip())
        extra = base / "numpy-only"
        extra.mkdir()
        for name in ("numpy", "numpy.libs"):
            if (source / name).exists():
                (extra / name).symlink_to(source / name)
        site = next(base.glob("lib/python*/site-packages"))
        (site / "numpy_only.pth").write_text(str(extra) + "\n")
    return base / "bin" / "python"


def test_device_without_numpy_or_runtime_exit_6_says_what_to_install(run, sshd, tflite_models, tmp_path):
    no_numpy = bare_venv(tmp_path / "bare", with_numpy=False)
    assert_one_line_error(run("profile", tflite_models["int8"], *remote_args(sshd, "--python", no_numpy)), 6,
                          "numpy is not importable", "pip install numpy")
    no_runtime = bare_venv(tmp_path / "numpy-only", with_numpy=True)
    assert_one_line_error(run("profile", tflite_models["int8"], *remote_args(sshd, "--python", no_runtime)), 6,
                          "no TFLite runtime", "pip install ai-edge-litert", "tflite-runtime")
    assert_one_line_error(run("profile", tflite_models["int8"], *remote_args(sshd, "--python", "/no/python3")), 6,
                          "cannot start '/no/python3'")


def test_ctrl_c_exits_130_and_removes_the_remote_folder(sshd, tflite_models, tmp_path):
    tmpdir = tmp_path / "remote-tmp"
    tmpdir.mkdir()
    command = [sys.executable, "-m", "edgepack", "profile", str(tflite_models["int8"]), "--min-seconds", "120",
               "--max-seconds", "120", "--threads", "1",
               *map(str, remote_args(sshd, "--python", DEVICE_PYTHON, "--remote-tmpdir", tmpdir))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_files, deadline = [], time.monotonic() + 30
    while not pid_files and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        pid_files = list(tmpdir.glob("edgepack-profile.*/probe.pid"))
    assert pid_files, f"the remote runner never started: {process.communicate(timeout=5)}"
    time.sleep(0.3)
    runner_pid = int(pid_files[0].read_text())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "edgepack: error: interrupted"
    assert list(tmpdir.iterdir()) == []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(runner_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the remote runner still runs after Ctrl-C")
