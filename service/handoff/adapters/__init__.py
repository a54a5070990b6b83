"""Adapters: where handoff meets the broker, the database and the servers it can embed."""
