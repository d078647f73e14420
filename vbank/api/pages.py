"""The browser pages: ``/`` for customers, ``/teller``, ``/supervisor``, ``/auditor``; assets
under /static."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

#: client/web in the source tree; the package is installed in place (pip -e)
WEB_DIR = Path(__file__).resolve().parents[2] / "client" / "web"

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    path = WEB_DIR / name
    if not path.is_file():
        raise HTTPException(404, f"page {name} is not installed")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


@router.get("/")
async def customer_page() -> FileResponse:
    return _page("index.html")


@router.get("/teller")
async def teller_page() -> FileResponse:
    return _page("teller.html")


@router.get("/supervisor")
async def supervisor_page() -> FileResponse:
    return _page("supervisor.html")


@router.get("/auditor")
async def auditor_page() -> FileResponse:
    return _page("auditor.html")
