"""The audit commands: verify, explain, state at a time, simulate, export (contract v1.1,
Audit commands).

Each reads the event log (`handoff.adapters.pg_log`) and folds it with the same projections
and core as the service, in a view of its own: none writes to the log, the projections or
Kafka, so each runs beside the service.
"""
