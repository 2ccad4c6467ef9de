"""DICOM uploads: option parsing, in-memory .dcm/.zip reading with limits, metadata extraction."""

from service.dicom.archive import UploadLimits
from service.dicom.metadata import extract_metadata, summarise_bulk
from service.dicom.options import (
    FrameSpec,
    ReadOptions,
    ReturnFormat,
    parse_read_options,
    resolve_frames,
)
from service.dicom.upload import (
    Instance,
    Upload,
    check_pixel_volume,
    is_zip_upload,
    parse_dicom,
    pixel_volume_bytes,
    read_upload,
)

__all__ = [
    "FrameSpec",
    "Instance",
    "ReadOptions",
    "ReturnFormat",
    "Upload",
    "UploadLimits",
    "check_pixel_volume",
    "extract_metadata",
    "is_zip_upload",
    "parse_dicom",
    "parse_read_options",
    "pixel_volume_bytes",
    "read_upload",
    "resolve_frames",
    "summarise_bulk",
]
