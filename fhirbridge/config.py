"""Settings, read from FHIRBRIDGE_* environment variables (or built directly in tests).

Settings are passed in to whatever needs them, never imported as a global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIRBRIDGE_")

    database_url: str = "sqlite:///fhirbridge.db"
    mappings_dir: Path = PROJECT_ROOT / "mappings"
    # The installation's business-identifier namespace: every resource we own carries
    # identifier.system = <identifier_system>, value = "<kind>/<local id>", so creates can be
    # conditional and retries never duplicate.
    identifier_system: str = "urn:fhirbridge:local"

    fhir_base_url: str = "http://127.0.0.1:8090/fhir"
    fhir_auth: Literal["none", "bearer", "basic", "smart"] = "none"
    fhir_token: SecretStr | None = None
    fhir_username: str | None = None
    fhir_password: SecretStr | None = None
    smart_client_id: str | None = None
    smart_private_key_path: Path | None = None
    smart_key_id: str | None = None
    smart_scopes: str = "system/*.cruds"
    fhir_timeout_seconds: float = 30.0
    fhir_max_retries: int = Field(default=5, ge=0)
