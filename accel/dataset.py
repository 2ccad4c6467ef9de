"""What accel reads a DICOM dataset through: pydicom's Dataset, or anything offering its
``get``/``in``/``[keyword]`` interface (``service.dicom.flat.FlatDataset``)."""

from __future__ import annotations

from typing import Any, Protocol


class DatasetLike(Protocol):
    """The part of pydicom's Dataset API the adapter and the native decoder use."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value of the element ``key`` (a keyword), or ``default`` when absent."""

    def __contains__(self, key: str, /) -> bool: ...

    def __getitem__(self, key: str, /) -> Any: ...
