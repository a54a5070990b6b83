"""Configuration, read once from `HANDOFF_*` environment variables."""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Unset `kafka_bootstrap` / `database_url` mean: start the embedded broker / database."""

    model_config = SettingsConfigDict(env_prefix="HANDOFF_", frozen=True)

    kafka_bootstrap: str | None = None
    database_url: str | None = None
    data_dir: Path = Path(".handoff")
    group_id: str = "handoff"
    topic_prefix: str = ""
    topic_conversations: str = "inbox.conversations"
    topic_presence: str = "inbox.presence"
    topic_workflows: str = "routing.workflows"
    topic_assignments: str = "routing.assignments"
    topic_comments: str = "routing.comments"
    topic_messages: str = "routing.messages"
    topic_deadletter: str = "routing.deadletter"
    partitions: int = Field(default=8, ge=1)
    batch_max_records: int = Field(default=2000, ge=1)
    fetch_max_wait_ms: int = Field(default=100, ge=0)
    """How long the broker may hold a fetch that finds nothing new. A record arriving at an
    idle partition waits for the held fetch to end (Tansu answers near its end), so this
    bounds idle latency; aiokafka's 500 ms default put p99 at half a second under light load.
    It was 10 ms: then every idle consumer asked ten times as often, and in a 10-minute soak
    of three instances the embedded broker ran at 120-160 % CPU and stopped serving some
    partitions' backlogs (12,181 inputs unread when the soak ended); at 100 ms the same soak
    applied every input. (A Kafka broker answers a held fetch as soon as data arrives.)"""
    max_record_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_held_workspaces: int = Field(default=20_000, ge=1)
    """Workspaces' views an instance keeps in memory; past it, the least recently used are
    dropped and loaded again from the database when an input comes for them."""
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_port: int = Field(default=8080, ge=0, le=65535)
    """`/healthz`, `/readyz` and `/metrics`; 0 turns the HTTP server off."""
    audit_token: SecretStr | None = None
    """Turns on the audit answers on the HTTP port (`/audit/...`), for requests sending it as a
    bearer token; unset or empty (`HANDOFF_AUDIT_TOKEN=` in a compose file), they are off."""

    @field_validator("audit_token")
    @classmethod
    def _empty_token_is_none(cls, token: SecretStr | None) -> SecretStr | None:
        """An empty token would let an empty `Authorization: Bearer` in."""
        return token if token is not None and token.get_secret_value() else None

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    database_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )
    """TLS to PostgreSQL; unset: as the DSN says (`?sslmode=...`), else asyncpg's default."""

    def on_tool_servers(self, **changes: Any) -> "Settings":
        """These settings for servers a tool (the demo, the benchmark) started itself: plain
        connections (TLS or SASL in the environment are for a real deployment), no HTTP port
        (a `handoff run` beside it may hold it), a consumer group that forms quickly."""
        return self.model_copy(
            update={
                "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000,
                "http_port": 0,
                "kafka_security_protocol": "PLAINTEXT",
                "kafka_sasl_mechanism": None,
                "kafka_ssl_cafile": None,
                "kafka_ssl_certfile": None,
                "kafka_ssl_keyfile": None,
                "database_sslmode": None,
                **changes,
            }
        )

    def kafka_options(self) -> dict[str, Any]:
        """Connection options every aiokafka client of handoff takes."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if "SSL" in self.kafka_security_protocol:
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=self.kafka_ssl_cafile,
                certfile=self.kafka_ssl_certfile,
                keyfile=self.kafka_ssl_keyfile,
            )
        if self.kafka_sasl_mechanism is not None:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return options

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    @property
    def input_topics(self) -> tuple[str, str, str]:
        """In merge tie order: presence, then workflows, then conversations (contract)."""
        return (
            self.topic(self.topic_presence),
            self.topic(self.topic_workflows),
            self.topic(self.topic_conversations),
        )

    @property
    def output_topics(self) -> dict[str, str]:
        """Output topic by role (the roles `handoff.core.events.OUTPUT_TOPIC_OF` names)."""
        return {
            "assignments": self.topic(self.topic_assignments),
            "comments": self.topic(self.topic_comments),
            "messages": self.topic(self.topic_messages),
            "deadletter": self.topic(self.topic_deadletter),
        }
