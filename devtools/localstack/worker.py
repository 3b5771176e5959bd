"""The worker as a separate OS process, as it runs in production (demo and tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """The worker as a separate OS process, as it runs in production."""

    def __init__(self, env: dict[str, str], log_path: Path, web_port: int) -> None:
        self.env, self.log_path, self.web_port = env, log_path, web_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the process and wait until it reports itself ready."""
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Start the process without waiting for it (restart timings, planned crashes)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli.main", "worker"],
                env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until /ready answers (any status: it serves once the app runs); fails if
        the process exits first."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            if self.get("/ready") is not None:
                return
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready after {timeout_s:.0f}s; see {self.log_path}")

    def get(self, path: str) -> bytes | None:
        try:
            url = f"http://127.0.0.1:{self.web_port}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                body: bytes = response.read()
                return body
        except OSError:
            return None

    def status(self, path: str) -> tuple[int, Any] | None:
        """HTTP status and decoded JSON body of an endpoint, None if nothing answers."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")
        except OSError:
            return None

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of one metric family from /metrics, with its labels."""
        text = (self.get("/metrics") or b"").decode()
        return [
            (dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            if family.name == name
            for sample in family.samples
        ]

    def events_done(self) -> float | None:
        """Input messages this process has finished, every outcome (the sum of
        ``engagement_events_total``); None while it does not answer."""
        body = self.get("/metrics")
        if body is None:
            return None
        return sum(float(line.rsplit(b" ", 1)[1]) for line in body.splitlines()
                   if line.startswith(b"engagement_events_total{"))  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def counters(self, name: str, label: str) -> dict[str, float]:
        """Sum a counter from /metrics by one label."""
        text = (self.get("/metrics") or b"").decode()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == name:
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        key = sample.labels.get(label, "")
                        totals[key] = totals.get(key, 0.0) + sample.value
        return dict(totals)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def wait_exit(self, timeout_s: float = 120.0) -> int:
        """Wait for the process to end by itself; its return code (-9: SIGKILL)."""
        assert self.proc is not None, "the worker was never started"
        return self.proc.wait(timeout_s)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything (crash tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
