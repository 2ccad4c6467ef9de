"""Benchmark inputs: the shared sample file and CT-like files generated in memory (pydicom+numpy).

Nothing here touches the network or writes to disk: generated files are deterministic (fixed
seed), so two runs measure the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CHECKOUT = Path(__file__).resolve().parents[1]
SAMPLE_0002 = CHECKOUT.parent / "shared" / "data" / "0002.DCM"
CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
HU_OFFSET = 1024  # stored value = HU + 1024, undone by RescaleIntercept -1024
SEED = 20240229


@dataclass(frozen=True)
class BenchInput:
    """One file to upload: its name, bytes and number of frames."""

    name: str
    filename: str
    data: bytes
    frames: int

    @property
    def megabytes(self) -> float:
        """Size of the upload in MB (10**6 bytes)."""
        return len(self.data) / 1e6


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float
) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def phantom_slice(size: int, z: float, rng: np.random.Generator) -> np.ndarray:
    """One axial slice of a smooth thorax-like phantom in HU (air, body, lungs, spine) + noise."""
    axis = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    x, y = np.meshgrid(axis, axis)
    swell = 0.9 + 0.1 * np.sin(np.pi * z)
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[_ellipse(x, y, 0.0, 0.0, 0.44 * swell, 0.33 * swell)] = 40.0
    # Soft-tissue texture: a low-frequency pattern that drifts from slice to slice.
    hu += 25.0 * np.sin(9.0 * x + 3.0 * z) * np.cos(7.0 * y - 2.0 * z) * (hu > -500)
    lung_ry = 0.18 * (0.6 + 0.4 * np.sin(np.pi * z))
    for cx in (-0.18, 0.18):
        hu[_ellipse(x, y, cx, -0.03, 0.12, lung_ry)] = -820.0
    hu[_ellipse(x, y, 0.0, 0.2, 0.05, 0.05)] = 700.0  # vertebra
    hu[_ellipse(x, y, 0.04, -0.05, 0.06, 0.06)] = 120.0  # contrast-filled heart/vessel
    hu += rng.normal(0.0, 12.0, size=(size, size)).astype(np.float32)
    return hu


def ct_volume(frames: int, size: int, seed: int = SEED) -> np.ndarray:
    """A (frames, size, size) uint16 volume of stored values (HU + 1024), deterministic."""
    rng = np.random.default_rng(seed)
    volume = np.empty((frames, size, size), dtype=np.uint16)
    for index in range(frames):
        hu = phantom_slice(size, index / max(frames - 1, 1), rng)
        volume[index] = np.clip(hu + HU_OFFSET, 0, 4095).astype(np.uint16)
    return volume


def ct_dataset(volume: np.ndarray) -> Dataset:
    """A 16-bit MONOCHROME2 CT dataset (rescale -1024, window 40/400) holding ``volume``."""
    frames, rows, columns = volume.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.PatientName = "Bench^Phantom"
    ds.PatientID = "BENCH-0001"
    ds.StudyDate = "20240229"
    ds.SliceThickness = "1.0"
    ds.PixelSpacing = ["0.7", "0.7"]
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -HU_OFFSET
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.ascontiguousarray(volume).tobytes()
    return ds


def encode(ds: Dataset) -> bytes:
    """The dataset as a DICOM Part 10 file in memory."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_series(frames: int = 200, size: int = 512, name: str = "ct-series") -> BenchInput:
    """The large input: a multi-frame 16-bit CT volume (200 x 512x512 is about 105 MB)."""
    data = encode(ct_dataset(ct_volume(frames, size)))
    return BenchInput(name, f"{name}.dcm", data, frames)


def small_ct(size: int = 128, name: str = "small-ct") -> BenchInput:
    """The request-rate input: one 16-bit CT slice (128x128 is about 33 KB)."""
    data = encode(ct_dataset(ct_volume(1, size, seed=SEED + 1)))
    return BenchInput(name, f"{name}.dcm", data, 1)


def sample_0002(path: Path = SAMPLE_0002) -> BenchInput | None:
    """The shared 96-frame JPEG-baseline sample, or None when the file is absent."""
    if not path.is_file():
        return None
    from pydicom import dcmread

    frames = int(dcmread(path, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
    return BenchInput("0002", path.name, path.read_bytes(), frames)
