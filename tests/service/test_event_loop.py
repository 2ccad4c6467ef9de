"""CPU-heavy work never blocks the event loop: /health on the same (single) worker keeps
answering while a large multi-frame render runs."""

from __future__ import annotations

import io
import threading
import time

import httpx
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.support import ServerProcess, clean_env, developer_with_key


def ct_series(frames: int, size: int = 512) -> bytes:
    """An uncompressed 16-bit CT series with rescale and a window, as a multi-frame file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality = "CT"
    ds.Rows = ds.Columns = size
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    phantom = np.where((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 2.5) ** 2, 1064, 24)
    volume = phantom[None] + rng.integers(0, 60, (frames, size, size))
    ds.PixelData = volume.astype(np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_health_answers_while_a_large_render_runs(tmp_path) -> None:
    env = clean_env({"DICOM_API_DATA_DIR": str(tmp_path)})
    server = ServerProcess(env, workers=1).start()
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            _, key = developer_with_key(client)
        series = ct_series(frames=200)
        done = threading.Event()
        result: dict[str, object] = {}

        def render() -> None:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                response = client.post(
                    "/api/dicom/read/file/",
                    files={"file": ("series.dcm", series)},
                    data={"return_format": "png"},
                    headers={"Authorization": f"ApiKey {key}"},
                )
            result["status"] = response.status_code
            result["images"] = len(response.json()["Images"])
            done.set()

        worker = threading.Thread(target=render)
        answered_during_render = 0
        with httpx.Client(base_url=server.url, timeout=30) as probe:
            worker.start()
            while not done.is_set():
                if probe.get("/health").status_code == 200 and not done.is_set():
                    answered_during_render += 1
                time.sleep(0.005)
        worker.join()
        assert result == {"status": 200, "images": 200}
        # The loop stayed free: health checks were answered while the render was in flight.
        assert answered_during_render >= 3
    finally:
        server.stop()


def test_startup_objects_are_kept_out_of_the_collector() -> None:
    # A full collection over everything imported and compiled at start-up took 60 ms, holding
    # the GIL; the workers freeze those objects once warm (service.app).
    import gc

    import accel
    from service.app import freeze_startup_objects

    accel.warm_up()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 50_000
        assert gc.get_count()[2] == 0
    finally:
        gc.unfreeze()
