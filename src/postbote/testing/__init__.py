"""Real servers on loopback for tests and benchmarks: an authoritative DNS server answering
test zones, and scripted SMTP receivers. They speak the real protocols over real sockets."""

from .dns_server import DnsServer, Zone
from .smtp_receiver import Receiver, ReceivedMessage, Script

__all__ = ["DnsServer", "Zone", "Receiver", "ReceivedMessage", "Script"]
