"""Serves the browser UI (frontend/), the API docs page and, from installed packages, plotly.js and Swagger UI —
no internet needed.  Every route here answers HEAD as well as GET."""

from pathlib import Path

import plotly
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from swagger_ui_bundle import swagger_ui_path

FRONTEND = Path(__file__).resolve().parents[3] / "frontend"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SWAGGER_UI = Path(str(swagger_ui_path))  # swagger-ui's dist files, pinned by the swagger-ui-bundle-v2 version

SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-bundle.js.map", "swagger-ui.css.map"})

router = APIRouter(include_in_schema=False)
GET_HEAD = ["GET", "HEAD"]


def _file_under(root: Path, path: str) -> Path:
    root = root.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, "not found")
    return target


@router.api_route("/", methods=GET_HEAD)
def index() -> FileResponse:
    return FileResponse(FRONTEND / "index.html", headers={"Cache-Control": "no-cache"})


@router.api_route("/docs", methods=GET_HEAD)
def docs() -> FileResponse:
    """Swagger UI on /openapi.json, from local files only (FastAPI's own /docs loads it from a CDN)."""
    return FileResponse(FRONTEND / "docs.html", headers={"Cache-Control": "no-cache"})


@router.api_route("/static/vendor/plotly.min.js", methods=GET_HEAD)
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@router.api_route("/static/vendor/swagger-ui/{name}", methods=GET_HEAD)
def swagger_ui(name: str) -> FileResponse:
    # Only what docs.html loads (and the source maps): not the package's demo page, which points at a petstore.
    if name not in SWAGGER_FILES:
        raise HTTPException(404, "not found")
    return FileResponse(SWAGGER_UI / name, headers={"Cache-Control": "max-age=86400"})


@router.api_route("/static/{path:path}", methods=GET_HEAD)
def static(path: str) -> FileResponse:
    return FileResponse(_file_under(FRONTEND, path), headers={"Cache-Control": "no-cache"})
