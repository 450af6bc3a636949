"""Typer sub-apps and commands that ``fhirbridge.cli`` registers."""
