"""References resolved through what storage knows: patient and staff links, FHIR links."""

from __future__ import annotations

from fhirbridge.mapping.references import PRIMARY_RESOURCE
from fhirbridge.persistence import EntityKind, Store, SyncTarget

__all__ = ["LinkReferences", "UnresolvedReference", "split_reference"]


class UnresolvedReference(LookupError):
    """A record points at another that has no server id yet (it has not been pushed)."""

    def __init__(self, concept: str, local_id: str) -> None:
        self.concept = concept
        self.local_id = local_id
        super().__init__(f"{concept} {local_id} has no server id yet")


def split_reference(reference: str) -> tuple[str, str] | None:
    """("Goal", "12") from "Goal/12", "http://x/fhir/Goal/12" or "Goal/12/_history/3"."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-1] or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


class LinkReferences:
    """Implements the mapping layer's ``References`` over a Store (one unit of work)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def reference(self, concept: str, local_id: str) -> str:
        if concept == "patient":
            return self._store.patients.require(local_id).ehr_reference
        if concept == "member":
            member = self._store.care_team.require(local_id)
            if member.practitioner_reference is None:
                raise UnresolvedReference(concept, local_id)
            return member.practitioner_reference
        resource_type = PRIMARY_RESOURCE[concept]
        link = self._store.fhir_links.get(SyncTarget(EntityKind(concept), local_id, resource_type))
        if link is None:
            raise UnresolvedReference(concept, local_id)
        return f"{resource_type}/{link.server_id}"

    def local_id(self, concept: str, reference: str) -> str | None:
        if concept == "patient":
            patient = self._store.patients.find_by_ehr_reference(reference)
            return patient.id if patient else None
        if concept == "member":
            member = self._store.care_team.find_by_practitioner_reference(reference)
            return member.id if member else None
        parts = split_reference(reference)
        if parts is None or parts[0] != PRIMARY_RESOURCE[concept]:
            return None
        link = self._store.fhir_links.find_by_server_id(*parts)
        if link is None or link.entity_kind.value != concept:
            return None
        return link.local_id
