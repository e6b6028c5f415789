"""Social timeline requests (seed 001)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.models.common import STRICT


class ChirpText(BaseModel):
    model_config = STRICT
    text: str = Field(description="1-280 characters (Unicode code points after NFC).")
