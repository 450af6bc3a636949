"""fhirbridge: care management mapped to FHIR R4 and synced with the systems around it."""

__version__ = "0.1.0"
