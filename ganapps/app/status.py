"""The one-line status a job leaves in the page: its summary, `error: ...` for an `InputError` (as the CLI
prints it), or a one-line internal error whose traceback goes to the server's log. Plain HTML strings; no Gradio."""

from __future__ import annotations

import html
import sys
import traceback
from collections.abc import Callable
from typing import Any

from ..engine.errors import InputError
from .work import Result


def status_html(text: str, ok: bool) -> str:
    """One escaped line in a div the page styles (green for a result, red for an error)."""
    return f"<div class='ga-status {'ga-ok' if ok else 'ga-error'}'>{html.escape(text)}</div>"


def guarded(job: Callable[[], Any]) -> tuple[str, Any]:
    """(status HTML, the job's value or None): an InputError shows as `error: ...`, anything else as a one-line
    internal error whose traceback goes to the server's stderr."""
    try:
        value = job()
    except InputError as e:
        return status_html(f"error: {e}", False), None
    except Exception as e:  # noqa: BLE001 - the server keeps serving; the log has the traceback
        traceback.print_exc(file=sys.stderr)
        first = str(e).splitlines()[0][:200] if str(e) else ""
        return status_html(f"internal error: {type(e).__name__}: {first} (the server log has the traceback)",
                           False), None
    summary = value.summary if isinstance(value, Result) else str(value[0] if isinstance(value, tuple) else value)
    return status_html(summary, True), value
