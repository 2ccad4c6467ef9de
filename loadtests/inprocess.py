"""The in-process rows: the naive baseline and this project's pipeline, without HTTP."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

from loadtests import baseline, measure
from loadtests.client import image_bytes
from loadtests.inputs import BenchInput
from loadtests.report import BASELINE, Row

PIPELINE = "pipeline in-process"


def row_from_seconds(
    case: str, mode: str, item: BenchInput, seconds: list[float], out_bytes: int, rss_mb: float
) -> Row:
    """A row from per-request seconds: median ms, frames/s and MB/s at the median."""
    middle = measure.median(seconds)
    return Row(
        case=case,
        mode=mode,
        median_ms=middle * 1e3,
        frames_per_s=item.frames / middle if middle else 0.0,
        mb_per_s=item.megabytes / middle if middle else 0.0,
        out_bytes=out_bytes,
        peak_rss_mb=rss_mb,
        runs=len(seconds),
    )


def _measure(case: str, mode: str, item: BenchInput, repeat: int, call: Callable[[], int]) -> Row:
    """One untimed warm-up call, then ``repeat`` timed calls while sampling this process's RSS."""
    call()
    sampler = measure.RssSampler(measure.self_process)
    with sampler.running():
        seconds, out_bytes = measure.timed(call, repeat)
    return row_from_seconds(case, mode, item, seconds, out_bytes or 0, sampler.peak_mb)


def baseline_row(case: str, item: BenchInput, fmt: str, repeat: int) -> Row:
    """pydicom + ``pixel_array`` + Pillow + stdlib json."""
    return _measure(
        case,
        BASELINE,
        item,
        repeat,
        lambda: baseline.read_baseline(item.filename, item.data, fmt)[1],
    )


def pipeline_row(case: str, item: BenchInput, fmt: str, repeat: int, pool: Executor) -> Row:
    """``service.dicom.pipeline.read_file_answer``, the server's own read path from a multipart
    body (multipart, options, parse, inline-or-pool, render), then base64 and JSON; ``pool``
    is the encode pool, and a render pool of two threads is made here as a worker has."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from service.dicom.pipeline import RenderPools, multipart_body, read_file_answer
    from service.settings import Settings

    settings = Settings(render_threads=2)
    render_pool = ThreadPoolExecutor(2, thread_name_prefix="render")
    pools = RenderPools(render=render_pool, encode=pool)
    loop = asyncio.new_event_loop()
    (body,), boundary = multipart_body(item.filename, item.data, {"return_format": fmt})
    last: list[bytes] = []

    def call() -> int:  # the body is built once, as the server receives it before this path
        answer = loop.run_until_complete(read_file_answer([body], boundary, {}, settings, pools))
        last[:] = [answer.to_bytes()]
        return 0

    try:
        row = _measure(case, PIPELINE, item, repeat, call)
    finally:
        loop.close()
        render_pool.shutdown()
    row.out_bytes = image_bytes(last[0])[1]
    return row
