"""Delivery: from claimed deliveries to the receiving server's reply."""

from .helo import check_helo_name, helo_problem
from .retry import Decision, RetryPolicy, decide
from .source_ip import pick_source_ip
from .worker import Worker, WorkerStats, store_unreachable

__all__ = ["store_unreachable", "check_helo_name", "helo_problem", "Worker", "WorkerStats", "RetryPolicy", "Decision", "decide", "pick_source_ip"]
