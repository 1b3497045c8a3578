"""The interactive API docs (``/docs``) served offline, from Swagger UI in an installed package.

FastAPI's default ``/docs`` page loads Swagger UI's JavaScript and CSS from a CDN, so on a
machine without internet access (or behind a strict proxy) the page stays blank. The
``swagger-ui-py`` package ships Swagger UI 5 (which reads OpenAPI 3.1, what FastAPI writes);
its three files the page needs are served from the package under ``/docs/assets/``. Only those
names are served: the route is an allow-list, never a path into the file system.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_URL = "/docs/assets"
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def assets_dir() -> Path:
    """Swagger UI's folder inside the installed ``swagger-ui-py`` package."""
    return Path(str(files("swagger_ui") / "static"))


def mount_docs(api: FastAPI, *, docs_url: str = "/docs") -> None:
    """Add ``docs_url`` (the Swagger UI page) and its assets to ``api``; create ``api`` with
    ``docs_url=None`` so FastAPI does not add its CDN version of the page."""
    folder = assets_dir()
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:  # a broken install: fail at start-up, not with a blank page later
        raise RuntimeError(f"swagger-ui-py has no {', '.join(missing)} in {folder}")
    openapi_url = api.openapi_url or "/openapi.json"

    @api.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{api.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )

    @api.get(ASSETS_URL + "/{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404, detail=f"no docs asset {name!r}")
        return FileResponse(
            folder / name, media_type=media_type, headers={"Cache-Control": "max-age=86400"}
        )
