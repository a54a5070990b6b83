"""The CloudEvents 1.0 envelope every record carries, in and out (contract: Envelope)."""

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["Envelope", "OutputEnvelope"]


class Envelope(BaseModel):
    """Attributes common to every event; subclasses pin `type` and `data`.

    Unknown attributes are ignored rather than refused: CloudEvents allows extensions, and an
    upstream that adds one must not send every record to the dead-letter topic.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: str = Field(default="1.0", pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1)
    type: str
    time: AwareDatetime
    workspaceid: str = Field(min_length=1, max_length=256)
    subject: str | None = Field(default=None, exclude_if=lambda subject: subject is None)
    """Left out of the JSON when absent, as CloudEvents has it (inside `data`, nulls stay)."""
    datacontenttype: str = "application/json"


class OutputEnvelope(Envelope):
    """What handoff itself emits: always says which input (or timer) caused it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = "/handoff"
    causationid: str = Field(min_length=1)
