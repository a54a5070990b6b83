"""The application: wires the pure core to Kafka and PostgreSQL (the adapters)."""
