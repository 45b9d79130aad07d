"""A real Chroma server for tests: ``chroma run`` on 127.0.0.1 and a free port.

Usage::

    with ChromaServer(tmp_path) as server:
        client = chromadb.HttpClient(host=server.host, port=server.port)

The ``chroma`` command comes from the chromadb package installed for the
running interpreter (next to ``sys.executable``, or next to the interpreter
a virtualenv was made from).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

HOST = "127.0.0.1"
START_TIMEOUT = 45.0
STOP_TIMEOUT = 10.0


def chroma_executable() -> str:
    """The path of the ``chroma`` CLI for this interpreter."""
    here = Path(sys.executable)
    candidates = [
        here.parent / "chroma",
        here.resolve().parent / "chroma",
        Path(sys.base_prefix) / "bin" / "chroma",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("chroma")
    if found:
        return found
    raise FileNotFoundError(f"no `chroma` command next to {sys.executable}; is chromadb installed?")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """One ``chroma run`` subprocess persisting into ``path``."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = Path(path)
        self.host = HOST
        self.port = port or free_port()
        self.log_path = self.path.parent / f"chroma-server-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait (at most ``timeout`` seconds) for its heartbeat."""
        if self.running:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        command = [
            chroma_executable(),
            "run",
            "--path",
            str(self.path),
            "--port",
            str(self.port),
            "--host",
            self.host,
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"chroma run exited with {self._process.returncode}:\n{self._log_tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"chroma run did not answer within {timeout}s:\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (terminate, then kill if it does not exit in time)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ChromaServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
