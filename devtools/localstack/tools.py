"""Make sure the programs the local stack needs are present, installing them when possible."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from stream.errors import EngagementError

__all__ = ["KAFKA_VERSION", "StackError", "ensure_kafka_jars", "ensure_program"]


class StackError(EngagementError, RuntimeError):
    """The local stack cannot be prepared or started; the message says what to do."""


def _pom_text() -> str:
    return (resources.files("devtools.localstack") / "kafka-pom.xml").read_text()


def _kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", _pom_text())
    if not match:
        raise StackError("kafka-pom.xml has no <kafka.version>")
    return match.group(1)


KAFKA_VERSION = _kafka_version()

_APT_PACKAGES = {
    "redis-server": "redis-server",
    "java": "default-jre-headless",
    "mvn": "maven",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "openssl": "openssl",
    "chromium": "chromium",  # the browser test (Playwright drives Debian's build)
}


def cache_dir() -> Path:
    """Where downloaded jars are kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "engagement-stream"


def ensure_program(name: str) -> str:
    """Path of ``name``; installs its Debian package when missing and running as root."""
    found = shutil.which(name)
    if found:
        return found
    package = _APT_PACKAGES.get(name, name)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(
            f"'{name}' is not installed. Install the Debian package '{package}' "
            f"(sudo apt-get install {package}) and run again."
        )
    with _install_lock():
        # another test process may have installed it while this one waited for the lock
        found = shutil.which(name) or _apt_install(name, package)
    return found


@contextmanager
def _install_lock() -> Iterator[None]:
    """One install at a time among this project's processes (parallel test processes each
    find the program missing on a fresh machine); apt's own lock would fail the others."""
    path = cache_dir() / "apt-install.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _apt_install(name: str, package: str) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for apt's lock rather than fail while another program (not ours) holds it.
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    commands = (["apt-get", *wait, "update", "-qq"],
                ["apt-get", *wait, "install", "-y", "-qq", package])  # fmt: skip
    for command in commands:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    found = shutil.which(name)
    if not found:
        raise StackError(f"installed '{package}' but '{name}' is still not on PATH")
    return found


def ensure_kafka_jars() -> Path:
    """Folder holding the pinned Apache Kafka release's jars, fetched with Maven once."""
    target = cache_dir() / f"kafka-{KAFKA_VERSION}"
    marker = target / ".complete"
    if marker.exists():
        return target
    ensure_program("java")
    mvn = ensure_program("mvn")
    target.mkdir(parents=True, exist_ok=True)
    pom = target / "pom.xml"
    pom.write_text(_pom_text())
    command = [
        mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={target / 'libs'}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"Maven could not fetch Kafka {KAFKA_VERSION}:\n{result.stdout[-3000:]}")
    marker.write_text(KAFKA_VERSION)
    return target
