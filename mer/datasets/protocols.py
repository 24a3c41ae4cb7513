"""Label protocols: data (from params.yaml) mapping a table's emotion strings to class names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """`classes` fixes the class indices; `mapping` sends raw labels (case-insensitive) to classes.

    Raw labels absent from `mapping` are dropped by ingest and counted, never guessed. A composite's
    protocol may name a published sample list (`samples`, a list of mer/datasets/samples.py): ingest then
    keeps exactly the listed clips.
    """

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]
    samples: str = ""

    @classmethod
    def from_params(cls, name: str, protocols: dict) -> Protocol:
        if name not in protocols:
            raise ValueError(f"unknown protocol {name!r}; params.yaml defines: {', '.join(sorted(protocols))}")
        spec = protocols[name]
        classes = tuple(spec["classes"])
        mapping = {str(raw).strip().lower(): target for raw, target in spec["map"].items()}
        unknown = sorted(set(mapping.values()) - set(classes))
        if unknown:
            raise ValueError(f"protocol {name!r} maps to classes not in its class list: {unknown}")
        return cls(name, classes, mapping, spec.get("samples") or "")

    def label(self, emotion: str) -> str | None:
        return self.mapping.get(emotion.strip().lower())

    def index(self, label: str) -> int:
        return self.classes.index(label)
