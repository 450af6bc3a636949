"""The FHIR side of fhirbridge: an async R4 client, its auth, capabilities and transaction bundles.

This package is the only place that talks HTTP to FHIR servers. Import from here; the submodules
are implementation detail and may move.
"""

from fhirbridge.fhir.auth import (
    AuthSettings,
    BasicAuthSettings,
    BearerAuthSettings,
    NoAuthSettings,
    SigningKey,
    SmartAuthSettings,
    SmartBackendAuth,
    auth_settings_from,
    build_auth,
)
from fhirbridge.fhir.bundle import (
    BundleBuildError,
    EntryResult,
    TransactionBuilder,
    TransactionResult,
    apply_individually,
    apply_transaction,
)
from fhirbridge.fhir.capabilities import Capabilities, ResourceCapabilities, Support
from fhirbridge.fhir.client import Backoff, FhirClient, SearchParams
from fhirbridge.fhir.errors import (
    FhirError,
    Forbidden,
    Gone,
    InvalidResource,
    Issue,
    MalformedResponse,
    NotFound,
    Outcome,
    PartiallyApplied,
    PreconditionFailed,
    RateLimited,
    RequestInfo,
    ServerError,
    StatusError,
    TokenEndpointError,
    TransportError,
    Unauthorized,
    VersionConflict,
)
from fhirbridge.fhir.results import ResourceResult

__all__ = [
    "AuthSettings",
    "Backoff",
    "BasicAuthSettings",
    "BearerAuthSettings",
    "BundleBuildError",
    "Capabilities",
    "EntryResult",
    "FhirClient",
    "FhirError",
    "Forbidden",
    "Gone",
    "InvalidResource",
    "Issue",
    "MalformedResponse",
    "NoAuthSettings",
    "NotFound",
    "Outcome",
    "PartiallyApplied",
    "PreconditionFailed",
    "RateLimited",
    "RequestInfo",
    "ResourceCapabilities",
    "ResourceResult",
    "SearchParams",
    "ServerError",
    "SigningKey",
    "SmartAuthSettings",
    "SmartBackendAuth",
    "StatusError",
    "Support",
    "TokenEndpointError",
    "TransactionBuilder",
    "TransactionResult",
    "TransportError",
    "Unauthorized",
    "VersionConflict",
    "apply_individually",
    "apply_transaction",
    "auth_settings_from",
    "build_auth",
]
