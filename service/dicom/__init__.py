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
from service.dicom.truncation import Truncation, find_truncation
from service.dicom.upload import (
    INVALID_FILE_TYPE,
    Instance,
    Upload,
    check_file_name,
    check_pixel_volume,
    file_extension,
    is_zip_upload,
    parse_dicom,
    pixel_volume_bytes,
    read_upload,
)

__all__ = [
    "INVALID_FILE_TYPE",
    "FrameSpec",
    "Instance",
    "ReadOptions",
    "ReturnFormat",
    "Truncation",
    "Upload",
    "UploadLimits",
    "check_file_name",
    "check_pixel_volume",
    "extract_metadata",
    "file_extension",
    "find_truncation",
    "is_zip_upload",
    "parse_dicom",
    "parse_read_options",
    "pixel_volume_bytes",
    "read_upload",
    "resolve_frames",
    "summarise_bulk",
]
