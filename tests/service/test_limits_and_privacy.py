"""Configured limits answer 413 before any decoding, and no patient data reaches the logs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.support import ServerProcess, clean_env, developer_with_key, tiny_dicom

ENDPOINT = "/api/dicom/read/file/"
CANARY_NAME = "Canary^Privacy"
CANARY_ID = "PID-CANARY-77889X"  # 16 characters, the longest DS


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[tuple[ServerProcess, httpx.Client, dict[str, str]]]:
    data_dir: Path = tmp_path_factory.mktemp("limited")
    env = clean_env(
        {
            "DICOM_API_DATA_DIR": str(data_dir),
            "DICOM_API_MAX_UPLOAD_BYTES": "300000",
            "DICOM_API_MAX_PIXEL_BYTES": "100000",
        }
    )
    server = ServerProcess(env).start()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        _, key = developer_with_key(client)
        yield server, client, {"Authorization": f"ApiKey {key}"}
    server.stop()


def post(client: httpx.Client, headers: dict[str, str], content: bytes) -> httpx.Response:
    return client.post(ENDPOINT, files={"file": ("x.dcm", content)}, headers=headers)


def test_upload_over_the_size_limit_is_413(limited) -> None:
    _, client, headers = limited
    response = post(client, headers, b"\0" * 400_000)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/health").status_code == 200


def test_pixel_volume_over_the_limit_is_413_before_decoding(limited) -> None:
    _, client, headers = limited
    # 1 frame of 256 x 256 x 2 bytes = 131072 bytes declared, over the 100000 limit.
    response = post(client, headers, tiny_dicom(rows=256, columns=256))
    assert response.status_code == 413
    assert "100000" in response.json()["detail"]
    assert post(client, headers, tiny_dicom(rows=64, columns=64)).status_code == 200


def canary_files() -> list[bytes]:
    """Uploads carrying identifiable data, each broken in a way that makes the server complain."""

    def build(**attributes: object) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(tiny_dicom()))
        ds.PatientName = CANARY_NAME
        ds.PatientID = CANARY_ID
        ds.PatientBirthDate = "19700101"
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        out = io.BytesIO()
        ds.save_as(out)
        return out.getvalue()

    placeholder = "1234567890123456"
    return [
        build(),
        build(PixelData=b"\0" * 10),  # shorter than declared
        # A Window Center that is not a number, and a character set that does not exist,
        # both quoting the patient id (written as valid values, then overwritten in place).
        build(WindowCenter=placeholder).replace(placeholder.encode(), CANARY_ID.encode()),
        build(SpecificCharacterSet="ISO_IR 100").replace(b"ISO_IR 100", b"PID-CANARY"),
    ]


def test_patient_data_never_reaches_logs_or_errors(limited) -> None:
    server, client, headers = limited
    for content in canary_files():
        response = post(client, headers, content)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert CANARY_NAME not in response.text and CANARY_ID not in response.text
    log = server.log()
    for secret in (CANARY_NAME, "Canary", "CANARY", "19700101"):
        assert secret not in log
