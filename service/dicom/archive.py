"""Read a ``.zip`` upload in memory with limits on entry count, size and compression ratio."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import NamedTuple

from service.errors import PayloadTooLarge, ValidationFailed

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 1 << 20
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Limits on what one upload may expand to; every one is configurable by the application."""

    max_zip_entries: int = 1000
    max_zip_total_bytes: int = 1 << 30
    max_zip_ratio: float = 100.0
    # Entries smaller than this are exempt from the ratio check: a small blank image compresses
    # extremely well and cannot hurt; the total-size limit still applies to them.
    ratio_min_bytes: int = 1 << 20


class ArchiveMember(NamedTuple):
    """One zip entry: either its bytes, or why it was not read (``data`` is then None)."""

    name: str
    data: bytes | None
    reason: str | None


def looks_like_zip(data: bytes | bytearray | memoryview) -> bool:
    """True when the bytes start with a zip local header or an (empty) end-of-archive record."""
    return bytes(data[:4]) in ZIP_MAGICS


def _bad_zip(name: str, why: str) -> ValidationFailed:
    return ValidationFailed({"file": [f"{name!r} is not a readable .zip archive: {why}"]})


def declared_entry_count(data: bytes) -> int | None:
    """The entry count from the end-of-central-directory record (zip64 aware), None if absent;
    read before zipfile parses the directory so that a huge directory is refused cheaply."""
    pos = data.rfind(_EOCD, max(0, len(data) - (22 + 0xFFFF)))
    if pos < 0 or pos + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, pos + 10)
    if count != 0xFFFF:
        return int(count)
    loc = pos - 20
    if loc < 0 or data[loc : loc + 4] != _ZIP64_LOCATOR:
        return int(count)
    (offset,) = struct.unpack_from("<Q", data, loc + 8)
    if offset + 56 > len(data) or data[offset : offset + 4] != _ZIP64_EOCD:
        return None
    (count64,) = struct.unpack_from("<Q", data, offset + 32)
    return int(count64)


def _too_many(name: str, count: int, limits: UploadLimits) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{name!r} has {count} entries; at most {limits.max_zip_entries} are allowed."
    )


def _is_nested_archive_name(entry: str) -> bool:
    lowered = entry.lower()
    return lowered.endswith((".zip", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz"))


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Inflate one entry in chunks, stopping as soon as it passes its declared size or the budget
    (declared sizes can lie; zipfile also truncates at the declared size and checks the CRC)."""
    limit = min(info.file_size, budget)
    chunks: list[bytes] = []
    total = 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                if total > info.file_size:
                    raise ValidationFailed(
                        {"file": [f"zip entry {info.filename!r} is larger than its declared size"]}
                    )
                raise PayloadTooLarge("The .zip expands past the allowed total size.")
            chunks.append(chunk)
    return b"".join(chunks)


def iter_zip(name: str, data: bytes, limits: UploadLimits) -> Iterator[ArchiveMember]:
    """Yield each file entry of an in-memory zip; entry names are labels, never filesystem paths."""
    declared = declared_entry_count(data)
    if declared is not None and declared > limits.max_zip_entries:
        raise _too_many(name, declared, limits)
    try:
        zf = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise _bad_zip(name, "the archive is corrupt or truncated") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_entries:
            raise _too_many(name, len(infos), limits)
        files = [i for i in infos if not i.is_dir()]
        declared_total = sum(i.file_size for i in files)
        if declared_total > limits.max_zip_total_bytes:
            raise PayloadTooLarge(
                f"{name!r} expands to {declared_total} bytes; at most "
                f"{limits.max_zip_total_bytes} bytes are allowed."
            )
        for info in files:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_zip_ratio:
                raise PayloadTooLarge(
                    f"zip entry {info.filename!r} has a compression ratio of {ratio:.0f}:1; "
                    f"at most {limits.max_zip_ratio:g}:1 is allowed."
                )
        budget = limits.max_zip_total_bytes
        for info in files:
            entry = info.filename
            if info.flag_bits & 0x1:
                yield ArchiveMember(entry, None, "encrypted")
                continue
            if _is_nested_archive_name(entry):
                yield ArchiveMember(entry, None, "nested archive")
                continue
            try:
                content = _read_entry(zf, info, budget)
            except NotImplementedError:
                yield ArchiveMember(entry, None, "unsupported compression method")
                continue
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                raise _bad_zip(name, f"entry {entry!r} is corrupt") from exc
            budget -= len(content)
            if looks_like_zip(content):
                yield ArchiveMember(entry, None, "nested archive")
                continue
            yield ArchiveMember(entry, content, None)
