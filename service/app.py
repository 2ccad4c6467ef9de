"""The application factory: blueprints, listeners and the error handler."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor

from sanic import Sanic

from service.api import accounts, dicom, health, keys, profiles, usage
from service.auth.passwords import Passwords
from service.auth.tokens import TokenIssuer
from service.clock import Clock, make_clock
from service.context import ApiRequest, AppContext
from service.dicom.pipeline import RenderPools
from service.dicom.pipeline import warm_up as warm_up_rendering
from service.http import install_security_headers
from service.problems import ProblemErrorHandler
from service.quota import make_counter
from service.settings import Settings, load_settings
from service.store import StoreUnavailable, make_store
from service.usage import UsageRecorder

log = logging.getLogger("dicom_api")

APP_NAME = "dicom_api"
JSON_BODY_LIMIT = 64 * 1024
START_RETRIES = 30  # seconds to wait for the database at start-up


def keep_patient_data_out_of_logs() -> None:
    """pydicom logs and warns with element values (names, dates) when it meets bad data."""
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")


def create_app(settings: Settings, clock: Clock | None = None) -> Sanic:
    """A Sanic app for these settings; workers open their pools in ``before_server_start``.

    ``clock`` is the one source of the current time for everything the app does (default:
    :func:`make_clock`)."""
    keep_patient_data_out_of_logs()
    clock = clock or make_clock(settings)
    tokens = TokenIssuer(
        settings.secret_key, settings.access_token_ttl, settings.refresh_token_ttl, clock
    )
    app: Sanic = Sanic(
        APP_NAME,
        ctx=AppContext(settings=settings, clock=clock, tokens=tokens),
        error_handler=ProblemErrorHandler(),
        request_class=ApiRequest,
        configure_logging=True,
    )
    # Every route but the DICOM upload takes a small JSON body at most; the upload route
    # streams and sets its own limit (DICOM_API_MAX_UPLOAD_BYTES).
    app.config.REQUEST_MAX_SIZE = JSON_BODY_LIMIT
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.REQUEST_TIMEOUT = 120
    app.config.RESPONSE_TIMEOUT = settings.response_timeout
    app.config.NOISY_EXCEPTIONS = False
    for module in (accounts, profiles, keys, usage, dicom, health):
        app.blueprint(module.bp)
    install_security_headers(app)
    app.before_server_start(_open_resources)
    app.after_server_start(_start_background_tasks)
    app.before_server_stop(_flush_usage)
    app.after_server_stop(_close_resources)
    return app


def create_app_from_env() -> Sanic:
    """Factory for ``sanic``/worker processes: settings read from the environment."""
    return create_app(load_settings())


async def _open_resources(app: Sanic) -> None:
    ctx: AppContext = app.ctx
    settings = ctx.settings
    ctx.store = make_store(settings, ctx.clock)
    for attempt in range(START_RETRIES):
        try:
            await ctx.store.open()
            await ctx.store.migrate()
            break
        except StoreUnavailable:
            if attempt == START_RETRIES - 1:
                raise
            log.warning("database unreachable at start-up; retrying")
            await asyncio.sleep(1)
    ctx.usage = UsageRecorder(ctx.store)
    ctx.quota = make_counter(settings, ctx.store, ctx.usage)
    ctx.pools = RenderPools(
        render=ThreadPoolExecutor(settings.render_threads, thread_name_prefix="render"),
        encode=ThreadPoolExecutor(settings.render_threads, thread_name_prefix="encode"),
    )
    loop = asyncio.get_running_loop()
    ctx.passwords = await loop.run_in_executor(None, Passwords)
    await loop.run_in_executor(ctx.pools.render, warm_up_rendering)
    freeze_startup_objects()


def freeze_startup_objects() -> None:
    """Move everything built at start-up (modules, numba's kernels, pydicom's dictionaries:
    about 150,000 objects) out of the cyclic collector's sight. A full collection over them
    took 60 ms on the development machine and fell inside a request now and then, holding
    the GIL (the event loop included) all that time."""
    gc.collect()
    gc.freeze()


async def _start_background_tasks(app: Sanic) -> None:
    app.ctx.usage_task = asyncio.create_task(app.ctx.usage.run(), name="usage-flush")


async def _flush_usage(app: Sanic) -> None:
    app.ctx.usage_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app.ctx.usage_task
    try:
        await app.ctx.usage.flush()
    except StoreUnavailable:
        log.error("could not flush usage at shutdown: database unreachable")


async def _close_resources(app: Sanic) -> None:
    ctx: AppContext = app.ctx
    await ctx.quota.close()
    await ctx.store.close()
    for pool in (ctx.pools.render, ctx.pools.encode):
        pool.shutdown(wait=False, cancel_futures=True)
