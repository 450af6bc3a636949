"""Reference resolution for records whose server ids are known up front.

Patients and staff point at the EHR's Patient and Practitioner resources; our own records are
``<ResourceType>/<id>`` with ids chosen by the caller, the type being the concept's primary
resource from the mapping files (``primary``, from ``Mappings.plan.primary_resources``). The
sync engine has its own resolver (server ids from its link table, ``urn:uuid:`` inside
transactions); this one serves golden tests, imports of self-contained bundles and the demo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fhirbridge.domain.people import CareTeamMember, PatientLink

__all__ = ["StaticReferences"]


@dataclass
class StaticReferences:
    patients: Mapping[str, str] = field(default_factory=dict)  # local id -> "Patient/..."
    members: Mapping[str, str] = field(default_factory=dict)  # local id -> "Practitioner/..."
    # concept -> local id -> server id, for our own records
    server_ids: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # concept -> the resource type it is referenced by (``SyncPlan.primary_resources``)
    primary: Mapping[str, str] = field(kw_only=True)
    # Concepts whose resource type the EHR's own records share (a health concern is a
    # Condition, as are the EHR's problems that goals address by raw reference): a reference is
    # ours only when ``server_ids`` knows it, never an unknown id taken as the local one.
    closed: frozenset[str] = field(default=frozenset({"health_concern"}), kw_only=True)

    @classmethod
    def of(
        cls,
        patients: list[PatientLink],
        members: list[CareTeamMember],
        *,
        primary: Mapping[str, str],
    ) -> StaticReferences:
        return cls(
            patients={p.id: p.ehr_reference for p in patients},
            members={m.id: m.practitioner_reference or f"Practitioner/{m.id}" for m in members},
            primary=primary,
        )

    def reference(self, concept: str, local_id: str) -> str:
        if concept == "patient":
            return self.patients[local_id]
        if concept == "member":
            return self.members[local_id]
        server_id = self.server_ids.get(concept, {}).get(local_id, local_id)
        return f"{self.primary[concept]}/{server_id}"

    def local_id(self, concept: str, reference: str) -> str | None:
        if concept == "patient":
            return _reverse(self.patients, reference)
        if concept == "member":
            return _reverse(self.members, reference)
        kind, _, server_id = reference.rpartition("/")
        if kind.rsplit("/", 1)[-1] != self.primary[concept] or not server_id:
            return None
        for local, known in self.server_ids.get(concept, {}).items():
            if known == server_id:
                return local
        if concept in self.closed:
            return None
        return server_id


def _reverse(table: Mapping[str, str], reference: str) -> str | None:
    for local, ref in table.items():
        if ref == reference or reference.endswith("/" + ref):
            return local
    return None
