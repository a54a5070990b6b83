"""Configuration, read once from `HANDOFF_*` environment variables."""

from pathlib import Path

from pydantic import Field
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
    max_record_bytes: int = Field(default=1024 * 1024, ge=1024)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    log_level: str = "INFO"

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
