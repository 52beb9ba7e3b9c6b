"""Kling Studio's server: `streamlit run streamlit_app.py` serves the pages (home.py and pages/) and, once per
server process, starts the follower that follows every unfinished task with no tab open, plus the KIE callback
receiver at POST /kie/callback/<token>."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lib.tasks.callbacks import MAX_BODY_BYTES, ROUTE
from lib.tasks.service import current, start_services, stop_services
from lib.ui.context import read_secrets

log = logging.getLogger("kling_studio")


async def kie_callback(request: Request) -> JSONResponse:
    """KIE's task callback: verified, handed to the follower (which confirms it with recordInfo), answered at once."""
    services = current()
    if services is None:
        return JSONResponse({"error": "not ready"}, status_code=503)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"error": "callback body too large"}, status_code=413)
    answer = await run_in_threadpool(services.receiver.handle, request.path_params["token"],
                                     dict(request.headers), body)
    return JSONResponse(answer.body, status_code=answer.status)


@contextlib.asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[dict[str, object]]:
    """Start the server's services once; stop following at shutdown."""
    await run_in_threadpool(start_services, read_secrets())
    try:
        yield {}
    finally:
        stop_services()


app = st.App("home.py", lifespan=lifespan, routes=[Route(ROUTE, kie_callback, methods=["POST"])])
