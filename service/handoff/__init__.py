"""handoff: event-sourced conversation routing for customer-messaging inboxes."""

__all__ = ["__version__"]

__version__ = "0.1.0"
