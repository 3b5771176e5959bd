"""``engagement web`` as a separate OS process (demo and tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["WebProcess"]


class WebProcess:
    """The web page's server, started with an environment and stopped by its own pid."""

    def __init__(
        self, env: dict[str, str], log_path: Path, port: int, snapshot_every_s: float = 60
    ) -> None:
        self.env, self.log_path, self.port = env, log_path, port
        self.snapshot_every_s = snapshot_every_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout_s: float = 30.0) -> None:
        command = [sys.executable, "-m", "stream.cli.main", "web", "--host", "127.0.0.1",
                   "--port", str(self.port),
                   "--snapshot-every", str(self.snapshot_every_s)]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engagement web exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"engagement web not up after {timeout_s:.0f}s; see {self.log_path}")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
