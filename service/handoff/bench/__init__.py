"""`handoff bench`: handoff measured against the bare Kafka pipe, all in one run (see `run`)."""
