"""The pure decision core: no I/O, no clock, no randomness.

Everything here is a plain function of its arguments, so a replay of the event log decides
exactly what the live service decided, and the core is testable without Kafka or PostgreSQL.
"""
