"""Delivery: from claimed deliveries to the receiving server's reply."""

from .retry import Decision, RetryPolicy, decide
from .source_ip import pick_source_ip
from .worker import Worker, WorkerStats

__all__ = ["Worker", "WorkerStats", "RetryPolicy", "Decision", "decide", "pick_source_ip"]
