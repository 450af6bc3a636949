"""The package's public surface is deliberate: a new export has to be added here on purpose."""

from __future__ import annotations

import fhirbridge.fhir as fhir

EXPECTED = {
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
}


def test_all_lists_exactly_the_public_api() -> None:
    assert set(fhir.__all__) == EXPECTED


def test_all_has_no_duplicates() -> None:
    assert len(fhir.__all__) == len(set(fhir.__all__))


def test_every_name_in_all_is_importable() -> None:
    missing = [name for name in fhir.__all__ if not hasattr(fhir, name)]
    assert missing == []


def test_every_exported_exception_except_the_builders_derives_from_fhir_error() -> None:
    exceptions = [
        obj
        for obj in (getattr(fhir, name) for name in fhir.__all__)
        if isinstance(obj, type) and issubclass(obj, Exception)
    ]

    outside = [e.__name__ for e in exceptions if not issubclass(e, fhir.FhirError)]

    assert len(exceptions) > 10
    assert outside == ["BundleBuildError"]  # a programming error, raised before any request
