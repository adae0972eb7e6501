"""press-monitor: tells you when one of your sources publishes on one of your topics."""

__version__ = "0.1.0"
