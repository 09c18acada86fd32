"""``GET /v1/allowlist``: the IT admin's allowlist kit for the calling tenant, in any format."""

from __future__ import annotations

import json
from typing import Callable

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..allowlist import FORMATS, build_kit, render
from ..app import App
from ..tenants import Tenant

_MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def add_allowlist_routes(api: FastAPI, app: App, tenant: Callable[..., Tenant], errors: dict) -> None:
    @api.get("/v1/allowlist", responses={**errors, 200: {"content": {"application/json": {}, "text/plain": {}, "text/csv": {}}}})
    async def get_allowlist(fmt: str = Query("json", alias="format", description=f"One of: {', '.join(FORMATS)}."),
                            lang: str | None = Query(None, description="de, en or es"),
                            who: Tenant = Depends(tenant)) -> Response:
        """What your IT team allowlists: the platform's sending addresses, each partner's hosts
        (resolved now) and addresses, the domains the mail is signed as, and the rule that
        trusts authenticated mail — as JSON, text, CSV, Microsoft 365 PowerShell, Google
        Workspace steps, Postfix or Exim snippets, or SPF mechanisms."""
        kit = await build_kit(app.engine, app.resolver, app.settings, tenant_id=who.id, tenant_name=who.display_name)
        body = render(kit, fmt, lang or app.settings.LANGUAGE)
        if fmt == "json":
            return JSONResponse(json.loads(body))
        return PlainTextResponse(body, media_type=_MEDIA.get(fmt, "text/plain; charset=utf-8"))
