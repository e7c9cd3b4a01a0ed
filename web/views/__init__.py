"""Blueprints, one per audience."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app


def json_download(data: Any, filename: str) -> Response:
    """`data` as a JSON file the browser saves (never cached: it holds personal data)."""
    response = current_app.response_class(json.dumps(data, ensure_ascii=False, indent=2),
                                          mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return never_stored(response)


def never_stored(response: Response) -> Response:
    """`response` kept in no cache nor the browser's history: personal data, one-time secrets."""
    response.headers["Cache-Control"] = "no-store"
    return response
