"""Real servers on loopback for tests and benchmarks: an authoritative DNS server answering
test zones, scripted SMTP receivers and a webhook receiver. They speak the real protocols over real sockets."""

from .dns_server import DnsServer, Zone
from .smtp_receiver import Receiver, ReceivedMessage, Script
from .webhook_receiver import Behaviour, WebhookReceiver

__all__ = ["DnsServer", "Zone", "Receiver", "ReceivedMessage", "Script", "WebhookReceiver", "Behaviour"]
