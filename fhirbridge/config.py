"""Settings, read from FHIRBRIDGE_* environment variables (or built directly in tests).

Settings are passed in to whatever needs them, never imported as a global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fhirbridge import PROJECT_ROOT as PROJECT_ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIRBRIDGE_")

    database_url: str = "sqlite:///fhirbridge.db"
    # Connections each process keeps open, and how many more it opens under load. The defaults
    # match the 40 threads the API serves requests on, so none waits for a connection; with
    # `serve --workers N` on PostgreSQL, N x (pool size + overflow) must stay below the
    # server's max_connections (100 by default). An in-memory SQLite database ignores both.
    database_pool_size: int = Field(default=20, ge=1)
    database_max_overflow: int = Field(default=20, ge=0)
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
    # Most entries the server takes in one transaction (None: as many as a batch holds). A
    # server that refuses a transaction for its size teaches the worker a smaller one anyway;
    # this spares the first refusal on servers whose limit is documented.
    fhir_max_transaction_entries: int | None = Field(default=None, ge=1)

    # -- REST API (fhirbridge.api) --
    # Bearer tokens are verified against this JWKS file only: no key is fetched at request time.
    jwt_jwks_path: Path | None = None
    jwt_audience: str = "fhirbridge"
    jwt_issuer: str | None = None
    jwt_algorithms: tuple[Literal["RS256", "ES256"], ...] = ("RS256", "ES256")
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=120)
    # Calendar dates (enrollment period, consent date) are compared in the practice's zone.
    practice_timezone: str = "UTC"

    # -- workflow layer (closed-loop referrals, the care-manager worklist) --
    # A referral the performer has not accepted within this many days is past its service level.
    referral_sla_days: int = Field(default=7, ge=1)
    # The care manager's follow-up task after a referral closes (completed, rejected...) is due
    # this many days later.
    referral_follow_up_days: int = Field(default=7, ge=0)
    # Check-in calls: monthly, more often for patients with a high-risk enrollment.
    checkin_interval_days: int = Field(default=30, ge=1)
    high_risk_checkin_interval_days: int = Field(default=14, ge=1)
    # Near month end (the last ``billing_month_end_days`` days), patients this many minutes or
    # fewer short of the next billing threshold go on the worklist.
    billing_threshold_margin_minutes: int = Field(default=5, ge=1)
    billing_month_end_days: int = Field(default=7, ge=1, le=28)

    # -- subscription notifications (POST /fhir/notifications) --
    # The FHIR server sends this shared secret in a header set on the Subscription; without a
    # configured secret every notification is refused.
    notification_secret: SecretStr | None = None
    notification_secret_header: str = "X-Fhirbridge-Notification-Secret"

    # -- web app sign-in (fhirbridge.web.session, fhirbridge.web.signin) --
    # Signs the session cookie. Unset: a random secret per process (development only: sessions
    # end on restart and are not shared between worker processes).
    web_session_secret: SecretStr | None = None
    web_session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    # The installation's OpenID Connect provider (discovery at
    # <issuer>/.well-known/openid-configuration); sign-in uses the authorization code with PKCE.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile"
    # SMART App Launch: only EHRs whose FHIR base URL (the launch's ``iss``) is listed here may
    # launch the app (a JSON list in the environment); any other ``iss`` is refused.
    smart_launch_issuers: tuple[str, ...] = ()
    smart_launch_client_id: str | None = None
    smart_launch_client_secret: SecretStr | None = None
    smart_launch_scopes: str = "launch openid fhirUser patient/*.read"
    # A sign-in form that trusts whatever user is typed in: `fhirbridge demo --serve` only.
    web_dev_sign_in: bool = False
