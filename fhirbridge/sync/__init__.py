"""Moving records between fhirbridge and a FHIR server: push (idempotent), pull, conflicts."""
