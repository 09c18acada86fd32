"""Inbound: bounces and complaints that come back to the return path."""

from .parse import RecipientStatus, Report, parse_report
from .server import InboundHandler, start_inbound

__all__ = ["Report", "RecipientStatus", "parse_report", "InboundHandler", "start_inbound"]
