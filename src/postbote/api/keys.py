"""``/v1/keys``: the calling tenant's API keys — list (prefix, created, last used, revoked; never
a key), create, revoke and rotate. A new key is in the answer that makes it, and nowhere else."""

from __future__ import annotations

from typing import Callable

from fastapi import Depends, FastAPI

from ..app import App
from ..tenants import Tenant, create_key, list_key_page, revoke_key, rotate_key
from .paging import DEFAULT_PAGE, check_limit, decode_int_cursor, page_json


def add_key_routes(api: FastAPI, app: App, tenant: Callable[..., Tenant], errors: dict) -> None:
    @api.get("/v1/keys", responses=errors)
    def get_keys(limit: int = DEFAULT_PAGE, cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Your API keys, newest first: ``keys`` (`prefix`, `created_at`, `last_used_at`, `revoked_at`,
        `active`), ``next_cursor``; ``limit`` 1–200, ``cursor`` as given."""
        found = list_key_page(app.engine, who, limit=check_limit(limit) + 1, before=decode_int_cursor(cursor, "keys"))
        return page_json("keys", "keys", found, limit, lambda r: r[0], lambda r: r[1].to_dict())

    @api.post("/v1/keys", status_code=201, responses=errors)
    def post_key(who: Tenant = Depends(tenant)) -> dict:
        """A new API key, shown this once."""
        key = create_key(app.engine, who)
        return {"api_key": key, "prefix": key[:10]}

    @api.delete("/v1/keys/{prefix}", responses=errors)
    def delete_key(prefix: str, who: Tenant = Depends(tenant)) -> dict:
        """Revoke a key at once (the key making this request too, if it is the one named)."""
        return revoke_key(app.engine, who, prefix).to_dict()

    @api.post("/v1/keys/{prefix}/rotate", status_code=201, responses=errors)
    def rotate(prefix: str, who: Tenant = Depends(tenant)) -> dict:
        """A new key, shown this once, and the one named revoked in the same transaction."""
        key = rotate_key(app.engine, who, prefix)
        return {"api_key": key, "prefix": key[:10], "revoked": prefix}
