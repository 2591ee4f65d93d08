"""A throwaway Chroma server on loopback for the server-mode benchmark."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ChromaServer", "chroma_executable", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chroma_executable() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    if beside.is_file():
        return str(beside)
    return shutil.which("chroma")


class ChromaServer:
    """``with ChromaServer(path) as srv: ... srv.port`` — started, waited for, always stopped."""

    def __init__(self, path: str | Path, *, start_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.port = free_port()
        self.start_timeout_s = start_timeout_s
        self.startup_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.path.parent / f"chroma-{self.port}.log"

    def __enter__(self) -> ChromaServer:
        exe = chroma_executable()
        if exe is None:
            raise RuntimeError("the `chroma` command is not installed beside this Python")
        self.path.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
        t0 = time.perf_counter()
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    exe,
                    "run",
                    "--path",
                    str(self.path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            self._wait_ready(t0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        import httpx

        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        while time.perf_counter() - t0 < self.start_timeout_s:
            if self._proc is not None and self._proc.poll() is not None:
                tail = self._log.read_text(errors="replace")[-800:] if self._log.exists() else ""
                raise RuntimeError(f"chroma server exited with {self._proc.returncode}: {tail}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"chroma server did not answer within {self.start_timeout_s:g} s")

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc, timeout_s=10)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Terminate a server process we started, killing it if it does not stop in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
