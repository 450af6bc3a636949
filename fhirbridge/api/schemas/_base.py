"""What every body shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Id = Field(min_length=1, max_length=64)


class Incoming(BaseModel):
    """A request body: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Outgoing(BaseModel):
    model_config = ConfigDict(from_attributes=True)
