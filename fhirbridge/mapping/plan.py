"""Which FHIR resources each domain concept syncs as, and in which order they are pushed.

Both come from the mapping files (``primary:`` and ``after:``), so adding a concept or a second
resource for one is a data change: services save records, and the sync engine asks this plan
what to push and in which order, instead of tables written in code.

- ``primary: true`` marks the resource other records reference a concept by (a referral is the
  ServiceRequest; its Task is a second, non-primary resource of the same record). Every mapped
  concept has exactly one.
- ``after: [concept, ...]`` names concepts whose resources are pushed before this one's, so a
  reference can point at a resource that already exists. The graph must be acyclic; the push
  rank is its topological order (ties broken by concept name, so the order is stable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SyncPlan"]


@dataclass(frozen=True)
class SyncPlan:
    targets_by_concept: Mapping[str, tuple[str, ...]]  # concept -> resource types, primary first
    ranks: Mapping[str, int]  # concept -> push rank (0 first)

    def targets(self, concept: str) -> tuple[str, ...]:
        """The resource types a record of ``concept`` syncs as; () when it does not sync."""
        return self.targets_by_concept.get(concept, ())

    def primary(self, concept: str) -> str:
        """The resource type other records reference ``concept`` by (KeyError if unmapped)."""
        targets = self.targets_by_concept.get(concept)
        if not targets:
            raise KeyError(f"concept '{concept}' is not mapped to a FHIR resource")
        return targets[0]

    def primary_or_none(self, concept: str) -> str | None:
        targets = self.targets_by_concept.get(concept)
        return targets[0] if targets else None

    def is_primary(self, concept: str, resource_type: str) -> bool:
        return self.primary_or_none(concept) == resource_type

    def rank(self, concept: str) -> int:
        """Push rank: lower goes first; concepts without a mapping go last."""
        return self.ranks.get(concept, len(self.ranks))

    @property
    def primary_resources(self) -> dict[str, str]:
        return {concept: targets[0] for concept, targets in self.targets_by_concept.items()}

    @property
    def concepts(self) -> tuple[str, ...]:
        """Mapped concepts in push order."""
        return tuple(sorted(self.ranks, key=self.ranks.__getitem__))
