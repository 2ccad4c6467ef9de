"""Test helpers: real server processes, real databases, fixture DICOM files built with pydicom."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

# clean_env is re-exported: the service tests take it from here with the other helpers.
from tests.servers import clean_env as clean_env
from tests.servers import free_port, terminate, wait_until_answering

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_0002 = SHARED_DATA / "0002.DCM"
# The spec's example file is read from ../shared/data (never copied into the repo); where it is
# absent, the tests that need it skip with this reason, the one acceptable skip.
needs_sample = pytest.mark.skipif(
    not SAMPLE_0002.exists(), reason="../shared/data/0002.DCM not present"
)
PG_ADMIN_URL = os.environ.get("DICOM_API_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("DICOM_API_TEST_REDIS", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery"
# The instant that tests which need "some ordinary day" put the service's clock at (a store's
# FrozenClock, a server's clock file). Deliberate: the clock under test is always the one the
# service itself reads, never mixed with the real time of Redis or PostgreSQL.
ORDINARY_DAY = datetime(2026, 11, 18, 10, 30, tzinfo=UTC)

# The spec's example response (spec/usage.rst), without ImageFormat and Images (the handler's).
SPEC_EXAMPLE = json.loads(
    r"""{
  "SOPClassUID": "1.2.840.10008.5.1.4.1.1.12.1",
  "SOPInstanceUID": "1.3.12.2.1107.5.4.3.321890.19960124.162922.29",
  "StudyDate": "19941013",
  "StudyTime": "141917",
  "Modality": "XA",
  "LossyImageCompressionRetired": "01",
  "PatientName": "Rubo DEMO",
  "PatientID": "556342B",
  "PatientBirthDate": "19951025",
  "PatientSex": "M",
  "FrameTime": "33",
  "RadiationSetting": "GR",
  "PositionerPrimaryAngle": "-32",
  "PositionerSecondaryAngle": "2",
  "StudyInstanceUID": "1.3.12.2.1107.5.4.3.123456789012345.19950922.121803.6",
  "SeriesInstanceUID": "1.3.12.2.1107.5.4.3.123456789012345.19950922.121803.8",
  "SeriesNumber": "1",
  "SamplesPerPixel": "1",
  "PhotometricInterpretation": "MONOCHROME2",
  "NumberOfFrames": "96",
  "FrameIncrementPointer": "(0018,1063)",
  "Rows": "512",
  "Columns": "512",
  "BitsAllocated": "8",
  "BitsStored": "8",
  "HighBit": "7",
  "PixelIntensityRelationship": "LIN",
  "RecommendedViewingMode": "NAT",
  "RWavePointer": "[20, 53, 77]",
  "PixelData": "b'\\xfe\\xff\\x00\\xe0\\x80\\x01\\x00\\x00\\x00....."
}"""
)


@dataclass
class ServerProcess:
    """``dicom-api serve`` in a subprocess, logging to a file."""

    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log_file: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self.log_path = Path(self.env["DICOM_API_DATA_DIR"]) / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            wait_until_answering(self.process, f"{self.url}/health", timeout, "server", self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        terminate(self.process, timeout=20)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class ClockFile:
    """The instant a server under test takes for now (``DICOM_API_CLOCK_FILE``), set by the
    test; every worker reads it afresh at each use."""

    def __init__(self, path: Path, at: datetime = ORDINARY_DAY) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.set(at)

    def set(self, at: datetime) -> None:
        """Move the server's clock to ``at`` (an aware datetime), atomically."""
        temporary = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}")
        temporary.write_text(at.isoformat())
        os.replace(temporary, self.path)

    def env(self) -> dict[str, str]:
        """The setting that points a server at this file."""
        return {"DICOM_API_CLOCK_FILE": str(self.path)}


def unique_email() -> str:
    return f"dev-{uuid.uuid4().hex[:12]}@example.com"


def register(client: httpx.Client, email: str | None = None) -> tuple[str, dict[str, str]]:
    """Register a fresh account and log in; returns (email, tokens)."""
    email = email or unique_email()
    response = client.post("/api/auth/register/", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    response = client.post("/api/token/", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return email, response.json()


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access']}"}


def developer_with_key(client: httpx.Client) -> tuple[dict[str, str], str]:
    """A registered developer with a profile and one API key: (tokens, key)."""
    _, tokens = register(client)
    response = client.post(
        "/api/developer/profiles/",
        json={"purpose": "testing", "organization": "Test Org"},
        headers=bearer(tokens),
    )
    assert response.status_code == 201, response.text
    response = client.post("/api-keys/", json={"name": "test key"}, headers=bearer(tokens))
    assert response.status_code == 201, response.text
    return tokens, response.json()["key"]


def tiny_dicom(rows: int = 8, columns: int = 8, frames: int = 1, bits: int = 16) -> bytes:
    """A small uncompressed MONOCHROME2 CT-like file (with rescale and a window)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TEST-0001"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -1024
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = (np.arange(rows * columns * frames) * 7 % (2**bits)).astype(dtype)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
