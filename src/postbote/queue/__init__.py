"""The queue: accepting messages, claiming due deliveries under a lease, recording outcomes."""

from .claim import ClaimedDelivery, QueuedMessage, claim_due, load_copies, load_messages, release, renew_leases
from .enqueue import Outgoing, enqueue, enqueue_in
from .group_commit import GroupCommit
from .listing import MAX_PAGE, MessagePage, MessageSummary, list_messages
from .record import AttemptRecord, DeliveryUpdate, record_outcomes
from .report import FeedbackCount, OutcomeCount, feedback_counts, outcome_counts
from .status import MessageView, RecipientView, ReportView, AttemptView, message_status, next_due_at, pending_count

__all__ = [
    "MAX_PAGE",
    "MessagePage",
    "MessageSummary",
    "list_messages",
    "OutcomeCount",
    "FeedbackCount",
    "outcome_counts",
    "feedback_counts",
    "ClaimedDelivery",
    "QueuedMessage",
    "claim_due",
    "load_messages",
    "load_copies",
    "release",
    "renew_leases",
    "Outgoing",
    "enqueue",
    "enqueue_in",
    "GroupCommit",
    "AttemptRecord",
    "DeliveryUpdate",
    "record_outcomes",
    "MessageView",
    "RecipientView",
    "ReportView",
    "AttemptView",
    "message_status",
    "next_due_at",
    "pending_count",
]
