"""A browsable documentation page, rendered on the server from the generated OpenAPI document.

No JavaScript and nothing from a CDN: the page lists every operation of /api/v1/openapi.json
(who may call it, its parameters, its body, its responses) with the site's own stylesheet.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")
METHODS = ("get", "post", "put", "patch", "delete")


def _ref_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "enum" in schema:
        return " | ".join(str(value) for value in schema["enum"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"[{_ref_name(schema.get('items'))}]"
    return str(schema.get("type", ""))


def _resolve(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A component the document refers to (`{"$ref": "#/components/parameters/IF_NONE_MATCH"}`)."""
    ref = item.get("$ref")
    if not ref:
        return item
    found: Any = spec
    for part in str(ref).removeprefix("#/").split("/"):
        found = found.get(part, {})
    return dict(found)


def operations(spec: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Operations grouped by tag, in the document's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [_resolve(spec, p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            responses = []
            for code, response in op.get("responses", {}).items():
                response = _resolve(spec, response)
                content: dict[str, Any] = response.get("content", {})
                kind, media = next(iter(content.items()), ("", dict[str, Any]()))
                responses.append({"code": code, "description": response.get("description", ""),
                                  "media": kind, "schema": _ref_name(media.get("schema"))})
            groups.setdefault((op.get("tags") or ["API"])[0], []).append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                # the access line added by web.api.core.access is shown apart
                "description": op.get("description", "").split("Allowed roles:")[0].strip(),
                "roles": op.get("x-roles", []),
                "scope": op.get("x-scope", ""),
                "parameters": [{"name": p.get("name"), "in": p.get("in"),
                                "required": p.get("required", False),
                                "type": _ref_name(p.get("schema")),
                                "description": p.get("description", "")} for p in params],
                "body": _ref_name(body.get("schema")),
                "responses": sorted(responses, key=lambda r: str(r["code"])),
            })
    order = [tag["name"] for tag in spec.get("tags", [])]
    return sorted(groups.items(), key=lambda group: order.index(group[0]) if group[0] in order else 99)


@bp.get("/docs")
def docs() -> Any:
    api = current_app.extensions["relais_api"]
    spec = api.spec.to_dict()
    schemas = spec.get("components", {}).get("schemas", {})
    return render_template("api/docs.html", spec=spec, groups=operations(spec), schemas=schemas,
                           rate_limit=current_app.config["RELAIS_API_RATE_LIMIT"])
