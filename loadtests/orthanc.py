"""Orthanc as a peer: upload (``POST /instances``) + rendered fetch of every frame, on loopback.

The benchmark starts Debian's ``Orthanc`` binary with a temporary configuration: HTTP on a free
loopback port, no DICOM listener, no remote access, no authentication, storage in a temporary
directory. Frames are fetched with ``GET /instances/{id}/frames/{i}/rendered`` and an ``Accept``
header (``image/png`` or ``image/jpeg``, JPEG at ``?quality=90`` like dicom-api's default),
over as many parallel connections as dicom-api has workers, so both servers may use every core.

For the request-rate comparison, :class:`RateRequest` makes one "request" of the shared async
load generator (``client.drive``) an upload plus the PNG of frame 0. Orthanc keeps what it
receives: re-posting the same SOP instance answers 200 with ``"Status": "AlreadyStored"`` (the
file is still parsed and looked up, but not written again), and that is measured as is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from loadtests.client import Connection
from loadtests.inputs import BenchInput
from tests.servers import free_port, terminate, wait_until_answering

ORTHANC_BINARIES = ("Orthanc", "/usr/sbin/Orthanc")
MIME = {"png": "image/png", "jpeg": "image/jpeg"}


def find_binary() -> str | None:
    """Path of the Orthanc executable, or None when it is not installed."""
    for name in ORTHANC_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def configuration(root: Path, http_port: int) -> dict[str, object]:
    """A loopback-only, no-auth, temporary-storage Orthanc configuration."""
    return {
        "Name": "dicom-api-bench",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": http_port,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": False,
        "KeepAlive": True,
        "StorageCompression": False,
        "SaveJobs": False,
        "Plugins": [],
    }


@dataclass
class OrthancPeer:
    """A running Orthanc process serving on 127.0.0.1 only."""

    binary: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    last_image_bytes: int = 0
    _tempdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """Base URL of Orthanc's REST API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> OrthancPeer:
        """Write the configuration, start Orthanc and wait until ``/system`` answers."""
        self._tempdir = tempfile.TemporaryDirectory(prefix="dicom-api-bench-orthanc-")
        root = Path(self._tempdir.name)
        config = root / "orthanc.json"
        config.write_text(json.dumps(configuration(root, self.port), indent=2))
        with (root / "orthanc.log").open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=root
            )
        try:
            wait_until_answering(self.process, f"{self.url}/system", timeout, "Orthanc", self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        """The tail of Orthanc's log."""
        if self._tempdir is None:
            return ""
        path = Path(self._tempdir.name) / "orthanc.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def processes(self) -> list[psutil.Process]:
        """The Orthanc process, for RSS and CPU sampling."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            return [psutil.Process(self.process.pid)]
        except psutil.Error:
            return []

    def stop(self) -> None:
        """Stop Orthanc and delete its storage."""
        terminate(self.process)
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> OrthancPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _fetch_frames(base_url: str, instance: str, frames: range, fmt: str) -> int:
    """Fetch the rendered frames on one keep-alive connection; returns the bytes received."""
    total = 0
    query = "?quality=90" if fmt == "jpeg" else ""
    with Connection(base_url) as conn:
        for index in frames:
            path = f"/instances/{instance}/frames/{index}/rendered{query}"
            status, body = conn.request("GET", path, headers={"Accept": MIME[fmt]})
            if status != 200:
                raise RuntimeError(f"Orthanc rendered frame {index}: {status}")
            total += len(body)
    return total


def upload_and_render(peer: OrthancPeer, item: BenchInput, fmt: str, connections: int) -> str:
    """Upload the file and fetch every frame rendered; returns the Orthanc instance id."""
    with Connection(peer.url) as conn:
        status, body = conn.post("/instances", item.data, {"Content-Type": "application/dicom"})
    if status != 200:
        raise RuntimeError(f"Orthanc upload: {status} {body[:300]!r}")
    instance = str(json.loads(body)["ID"])
    shares = [range(i, item.frames, connections) for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        peer.last_image_bytes = sum(
            pool.map(lambda share: _fetch_frames(peer.url, instance, share, fmt), shares)
        )
    return instance


def delete_instance(peer: OrthancPeer, instance: str) -> None:
    """Remove an uploaded instance so that every repetition starts from an empty store."""
    with Connection(peer.url) as conn:
        conn.request("DELETE", f"/instances/{instance}")


@dataclass
class RateRequest:
    """``POST /instances`` then ``GET /instances/{id}/frames/0/rendered`` (``Accept`` PNG).

    A callable for ``client.drive``; ``statuses`` counts Orthanc's store answers (``Success``,
    ``AlreadyStored``) so the report can say how many uploads were duplicates.
    """

    item: BenchInput
    statuses: Counter[str] = field(default_factory=Counter)

    async def __call__(self, http: httpx.AsyncClient) -> dict[str, float] | None:
        """One upload + rendered fetch; ``{}`` (no Server-Timing) on success, None on failure."""
        stored = await http.post(
            "/instances", content=self.item.data, headers={"Content-Type": "application/dicom"}
        )
        if stored.status_code != 200:
            return None
        answer = stored.json()
        self.statuses[str(answer.get("Status", "?"))] += 1
        path = f"/instances/{answer['ID']}/frames/0/rendered"
        frame = await http.get(path, headers={"Accept": MIME["png"]})
        if frame.status_code != 200 or not frame.content:
            return None
        return {}
