"""``/docs`` works offline: the Swagger UI page and its assets come from the installed package."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve_apps.docs_ui import ASSETS, assets_dir, mount_docs


def _client() -> TestClient:
    api = FastAPI(title="probe", docs_url=None, redoc_url=None)
    mount_docs(api)
    return TestClient(api)


def test_docs_page_references_only_local_assets() -> None:
    """The page loads its script, style and icon from /docs/assets, and nothing from a CDN."""
    page = _client().get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == sorted(f"/docs/assets/{name}" for name in ASSETS)
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
    assert "cdn" not in page.text.lower()


def test_every_asset_answers_with_the_package_file() -> None:
    """Each asset answers 200 with the package's bytes; Swagger UI 5 reads OpenAPI 3.1."""
    client = _client()
    for name, media_type in ASSETS.items():
        answer = client.get(f"/docs/assets/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(media_type)
        assert answer.content == (assets_dir() / name).read_bytes()
    assert b"isOAS31" in client.get("/docs/assets/swagger-ui-bundle.js").content


def test_names_outside_the_allow_list_are_not_served() -> None:
    """Only the listed files: other package files and path tricks are 404."""
    client = _client()
    for name in ("index.html", "swagger-editor.js", "..%2F__init__.py", "LICENSE"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name
