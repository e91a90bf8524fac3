"""``import nova``: read nova's database, plan, write flatnet's.

Three steps with one seam each: :func:`flatnet.db.nova_source.read_nova`
(one read transaction on nova's database), the pure
:func:`flatnet.migrate.nova_plan.plan_import`, and
:func:`flatnet.db.nova_import.apply_import` (one write transaction on
flatnet's). Any error in any step leaves flatnet's database as it was.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from flatnet.db import nova_import as db_import
from flatnet.db import nova_source
from flatnet.db.engine import Database
from flatnet.migrate import nova_names, nova_plan

#: (rows in the plan) -> a progress callback taking a row count
ProgressFactory = Callable[[int], Callable[[int], None]]


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    """What an import did: per table, rows inserted and already there;
    per table and reason, rows skipped and values adjusted."""

    version: int
    imported: dict[str, int]
    unchanged: dict[str, int]
    skipped: dict[str, dict[str, int]]
    adjusted: dict[str, dict[str, int]]
    seconds: float
    renamed: tuple[nova_names.Rename, ...] = ()

    @property
    def changed(self) -> bool:
        return any(self.imported.values())


def import_nova(
    db: Database, url: str, progress: ProgressFactory | None = None
) -> ImportSummary:
    """Import the nova database at ``url`` into ``db``.

    Raises InvalidInput (bad source), Conflict (data flatnet refuses or
    that clashes with flatnet's), ConfigError (flatnet schema missing).
    """
    started = time.monotonic()
    source = nova_source.read_nova(url)
    plan = nova_plan.plan_import(source.rows, source.counted, source.version)
    total = sum(len(r) for r in plan.rows.values())
    callback = progress(total) if progress is not None else None
    results = db_import.apply_import(db, plan.rows, callback)
    return ImportSummary(
        version=plan.version,
        imported={t: r.inserted for t, r in results.items()},
        unchanged={t: r.unchanged for t, r in results.items()},
        skipped={t: dict(c) for t, c in sorted(plan.skipped.items())},
        adjusted={t: dict(c) for t, c in sorted(plan.adjusted.items())},
        seconds=time.monotonic() - started,
        renamed=tuple(plan.renamed),
    )


def renames(url: str) -> tuple[nova_names.Rename, ...]:
    """The host names an import of the nova database at ``url`` changes
    (read-only; the same as the import's, the rename is deterministic).
    Raises InvalidInput or Conflict as :func:`import_nova`."""
    source = nova_source.read_nova(url)
    plan = nova_plan.plan_import(source.rows, source.counted, source.version)
    return tuple(plan.renamed)


def summary_dict(summary: ImportSummary) -> dict[str, Any]:
    return {
        "nova_schema_version": summary.version,
        "changed": summary.changed,
        "imported": summary.imported,
        "unchanged": summary.unchanged,
        "skipped": summary.skipped,
        "adjusted": summary.adjusted,
        "seconds": round(summary.seconds, 3),
        "renamed": [dataclasses.asdict(r) for r in summary.renamed],
    }


def _reasons(title: str, table: dict[str, dict[str, int]]) -> list[str]:
    lines = []
    for name, reasons in table.items():
        for reason, count in sorted(reasons.items()):
            lines.append(f"  {name:<36} {count:>7}  {reason}")
    return [title, *lines] if lines else []


def _renamed(renames: tuple[nova_names.Rename, ...]) -> list[str]:
    """What each renamed guest sees: nova's DHCP gave it the shared
    name; flatnet's gives it the new one at its next renewal."""
    if not renames:
        return []
    lines = [
        "renamed (live instances sharing a host name; the guest's DHCP "
        "host name changes at its next renewal):"
    ]
    for r in renames:
        where = ", ".join(r.addresses) or "no fixed IP"
        lines.append(
            f"  instance {r.instance_uuid} ({where}): host name "
            f"{r.nova_hostname!r} -> {r.flatnet_hostname!r} "
            f"({r.nova_hostname!r} stays with {r.kept_by})"
        )
    return lines


def summary_text(summary: ImportSummary) -> str:
    """The human summary: counts per table, then skipped and adjusted."""
    head = f"nova database (schema version {summary.version})"
    if summary.changed:
        lines = [f"imported from {head} in {summary.seconds:.2f} s:"]
    else:
        kept = sum(summary.unchanged.values())
        lines = [
            f"nothing to import from {head}: all {kept} rows are already "
            "in flatnet's database (nothing changed)"
        ]
    lines.append(f"  {'table':<36} {'new':>7} {'already':>8}")
    for name, count in summary.imported.items():
        lines.append(f"  {name:<36} {count:>7} {summary.unchanged[name]:>8}")
    lines += _reasons("skipped (rows not imported):", summary.skipped)
    lines += _reasons(
        "adjusted (values changed on the way):", summary.adjusted
    )
    lines += _renamed(summary.renamed)
    return "\n".join(lines) + "\n"
