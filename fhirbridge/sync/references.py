"""References resolved through what storage knows: patient and staff links, FHIR links.

Our records are referenced by their primary resource (``Mappings.plan.primary``): the plan
given, or else the one the store's session carries.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError

from fhirbridge.mapping.context import MissingReference
from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.persistence import EntityKind, FhirLink, Store, SyncTarget, sync_plan_of

__all__ = ["LinkReferences", "UnresolvedReference", "split_reference"]


class UnresolvedReference(MissingReference):
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

    def __init__(
        self, store: Store, *, known: Iterable[FhirLink] = (), plan: SyncPlan | None = None
    ) -> None:
        self._store = store
        plan = plan or sync_plan_of(store.session)
        if plan is None:
            raise ValueError("LinkReferences needs a sync plan (plan=, or a planned session)")
        self._primary = plan.primary_resources
        self._people: dict[tuple[str, str], str] = {}  # a batch names the same few people
        # Server ids already looked up (or handed in by the caller), to spare repeat queries.
        self._servers: dict[tuple[str, str], str] = {
            (link.entity_kind.value, link.local_id): f"{link.resource_type}/{link.server_id}"
            for link in known
            if self._primary.get(link.entity_kind.value) == link.resource_type
        }

    def know_patients(self, local_ids: Iterable[str]) -> None:
        """Look these patients up in one query: a batch names each of them several times, and
        one query per patient cost more than mapping their records. Unknown ids are left to
        ``reference``, which reports them."""
        wanted = {i for i in local_ids if ("patient", i) not in self._people}
        if not wanted:
            return
        try:
            found = self._store.patients.get_many(wanted)
        except DBAPIError:
            raise  # storage trouble fails the batch, as any query would
        except Exception:  # a row that cannot be read is reported by the record naming it
            return
        for patient in found.values():
            self._people[("patient", patient.id)] = patient.ehr_reference

    def reference(self, concept: str, local_id: str) -> str:
        if concept in ("patient", "member"):
            key = (concept, local_id)
            if key not in self._people:
                self._people[key] = self._person(concept, local_id)
            return self._people[key]
        cached = self._servers.get((concept, local_id))
        if cached is not None:
            return cached
        resource_type = self._primary[concept]
        link = self._store.fhir_links.get(SyncTarget(EntityKind(concept), local_id, resource_type))
        if link is None:
            raise UnresolvedReference(concept, local_id)
        self._servers[(concept, local_id)] = f"{resource_type}/{link.server_id}"
        return self._servers[(concept, local_id)]

    def _person(self, concept: str, local_id: str) -> str:
        if concept == "patient":
            return self._store.patients.require(local_id).ehr_reference
        member = self._store.care_team.require(local_id)
        if member.practitioner_reference is None:
            raise UnresolvedReference(concept, local_id)
        return member.practitioner_reference

    def local_id(self, concept: str, reference: str) -> str | None:
        if concept == "patient":
            patient = self._store.patients.find_by_ehr_reference(reference)
            return patient.id if patient else None
        if concept == "member":
            member = self._store.care_team.find_by_practitioner_reference(reference)
            return member.id if member else None
        parts = split_reference(reference)
        if parts is None or parts[0] != self._primary.get(concept):
            return None
        link = self._store.fhir_links.find_by_server_id(*parts)
        if link is None or link.entity_kind.value != concept:
            return None
        return link.local_id
