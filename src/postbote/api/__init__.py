"""The REST API (FastAPI)."""

from .app import create_api

__all__ = ["create_api"]
