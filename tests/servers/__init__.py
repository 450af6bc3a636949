"""FHIR server behaviours for the test suite beyond sekmet's own (see ``strict``)."""
