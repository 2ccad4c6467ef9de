"""Input rules of the DICOM read endpoint over HTTP: a file cut short is a 422 naming where it
ends (a skipped entry with that reason inside a zip), and only names ending in .dcm or .zip (any
case), or with no extension, are read. ``api`` (tests/service/conftest.py) is a developer's
client of the ``server`` fixture, on each backend."""

from __future__ import annotations

import httpx

from tests.dicom.builders import element_spans, make_zip
from tests.support import tiny_dicom

ENDPOINT = "/api/dicom/read/file/"
INVALID_FILE_TYPE = "Invalid file type. Only .dcm, .DCM, .zip are allowed."


def post(api: tuple[httpx.Client, dict[str, str]], content: bytes, name: str) -> httpx.Response:
    client, headers = api
    files = {"file": (name, content, "application/octet-stream")}
    return client.post(ENDPOINT, files=files, headers=headers)


def test_a_truncated_file_is_a_422_saying_where_and_a_skipped_zip_entry(api) -> None:
    data = tiny_dicom(16, 16)
    pixels = element_spans(data)[-1]
    cut = data[:-10]
    reason = (
        f"the file ends inside element (7FE0,0010) at byte {pixels.start}; it looks truncated "
        f"(its value is {len(cut) - pixels.value_start} bytes, expected {pixels.length})"
    )
    response = post(api, cut, "cut.dcm")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == reason
    response = post(api, make_zip({"good.dcm": data, "cut.dcm": cut}), "study.zip")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [entry["FileName"] for entry in body["Files"]] == ["good.dcm"]
    assert body["Skipped"] == [f"cut.dcm: {reason}"]
    # Cut cleanly before the Pixel Data, the same file is a metadata-only answer.
    response = post(api, data[: pixels.start], "clean.dcm")
    assert response.status_code == 200, response.text
    assert response.json()["Rows"] == "16" and response.json()["Images"] == []


def test_only_dcm_zip_or_extensionless_names_are_read(api) -> None:
    data = tiny_dicom()
    for name in ("a.txt", "scan.png", "photo.jpg", "report.pdf"):
        response = post(api, data, name)
        assert response.status_code == 400, name
        body = response.json()
        assert body["detail"] == INVALID_FILE_TYPE and body["errors"] == {
            "file": [INVALID_FILE_TYPE]
        }
    for name in ("IM000001", "1.2.840.113619.2.55.3.604688119", "scan.Dcm", "scan.DCM"):
        response = post(api, data, name)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["Modality"] == "CT"
