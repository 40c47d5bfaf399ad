"""Screenshot of Model Explorer showing a .tflite with an edgepack overlay (docs/model-explorer-precision.png).

Starts the real Model Explorer (`pip install 'edgepack[explore]'`) on a free loopback port with the model
and the node-data file, opens the page in headless Chromium with every layer flattened (each operator
a node, coloured by the overlay) and writes the PNG. Builds the digits CNN's int8 model when no
model is given: the digits CNN in int8 with one Dense layer kept in float (--float-ops).

    .venv/bin/python scripts/explorer_screenshot.py [MODEL.tflite NODE_DATA.json] [-o docs/model-explorer-precision.png]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _digits_int8(folder: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "examples" / "digits"))
    import build

    from edgepack.api import explore
    from edgepack.loading.data import DataSpec
    from edgepack.steps.quantize import QuantizeConfig, quantize

    made = build.build(folder, flavor="keras3", epochs=4)
    model = quantize(QuantizeConfig(model=made["model"], output=folder / "digits-int8.tflite", mode="int8",
                                    io="int8", static_batch=True, float_ops=["^dense$"],
                                    calibration=DataSpec(source=str(made["train"])))).path
    return model, Path(explore(model, output=folder / "explorer").files["precision"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _page_url(port: int, model: Path, node_data: Path) -> str:
    """Model Explorer's URL for the model and the overlay, every layer flattened into its operators."""
    pane = {"deepestExpandedGroupNodeIds": [], "selectedNodeId": "", "selectedGraphId": "", "selectedCollectionLabel": "",
            "widthFraction": 1, "selected": True, "flattenLayers": True}
    data = {"models": [{"url": str(model)}], "nodeData": [str(node_data)], "nodeDataTargets": [""],
            **({"uiState": {"paneStates": [pane]}} if os.environ.get("UI_STATE", "1") == "1" else {})}
    return f"http://127.0.0.1:{port}/?data={urllib.parse.quote(json.dumps(data))}"


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON):
    the standard library is enough, no websocket client or browser driver."""

    def __init__(self, url: str, profile: str):
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()

        def fds() -> None:  # move both out of the way first: either may already be fd 3 or 4
            high_in, high_out = fcntl.fcntl(to_chrome, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                         "--window-size=1400,1000", "--remote-debugging-pipe", "about:blank"],
                                        pass_fds=(to_chrome, from_chrome, 3, 4), preexec_fn=fds,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._id = b"", 0
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def page(self, method: str, params: dict | None = None) -> dict:
        return self.call(method, params, self.session)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the wrapper script and every chromium process
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        os.close(self._write)
        os.close(self._read)


def screenshot(model: Path, node_data: Path, output: Path, wait: float = 25.0) -> None:
    program = shutil.which("model-explorer") or str(Path(sys.executable).with_name("model-explorer"))
    port = _free_port()
    server = subprocess.Popen([program, "--no_open_in_browser", f"--port={port}", "--host=127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        for line in server.stdout:
            if re.search(r"http://\S+", line):
                break
        threading.Thread(target=server.stdout.read, daemon=True).start()  # keep its pipe drained
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
            browser = DevTools(_page_url(port, model, node_data), profile)
            try:
                time.sleep(wait)  # the page loads the graph, lays it out and applies the node data
                shot = browser.page("Page.captureScreenshot", {"format": "png"})["data"]
            finally:
                browser.close()
        output.write_bytes(base64.b64decode(shot))
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("node_data", nargs="?", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "model-explorer-precision.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, node_data = (args.model, args.node_data) if args.model else _digits_int8(Path(tmp))
        screenshot(model.resolve(), node_data.resolve(), args.output.resolve())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
