"""Small HTTP helpers shared by the app's routes: JSON in and out, parameters, errors.

JSON bodies are read by the labeler's reader (size limit, Content-Type check, nesting); JSON
answers go through `clean` first, because the engine's files hold NaN (a missing metric) and
JSON has no NaN. Errors are `{"error": one line}` with a 4xx status, as in the labeler.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from poselab.errors import PoselabError
from poselab.labeler.server import _json_body


def clean(value: object) -> object:
    """A JSON-ready copy: NaN and infinities become None, tuples lists, paths strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def answer(value: object, status: int = 200) -> JSONResponse:
    return JSONResponse(clean(value), status_code=status)


async def threaded(fn: Callable, *args: object) -> JSONResponse:
    """Run blocking work off the event loop and answer its result as JSON."""
    return answer(await run_in_threadpool(fn, *args))


async def body(request: Request) -> dict:
    """The request's JSON object (400 when it is not an object)."""
    payload = await _json_body(request)
    if not isinstance(payload, dict):
        raise HTTPException(400, "expected a JSON object")
    return payload


def integer(value: object, name: str, low: int, high: int, default: int | None = None) -> int:
    """An int in [low, high] from JSON or a path/query string; 400 otherwise."""
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HTTPException(400, f"{name} must be a whole number from {low} to {high}")
    return value


def number(value: object, name: str, low: float, high: float) -> float | None:
    """A float in [low, high] from JSON, or None when absent/empty; 400 otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise HTTPException(400, f"{name} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low <= value <= high):
        raise HTTPException(400, f"{name} must be a number from {low} to {high}")
    return float(value)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def error(status: int) -> Callable:
    async def handler(request: Request, exc: Exception) -> Response:
        message = str(exc) if status != 500 else f"internal error: {type(exc).__name__}: {exc}"
        return JSONResponse({"error": message}, status_code=status)

    return handler


HANDLERS = {HTTPException: http_error, PoselabError: error(400), Exception: error(500)}
