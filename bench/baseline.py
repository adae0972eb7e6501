"""The floors the benchmarks pin in bench/baseline.json (STYLE §5), one section per benchmark.

A section holds ``bounds``: figure name → ``{"max": x}`` (a ratio that must not grow: time
against a peer) or ``{"min": x}`` (one that must not shrink: speed against a peer). A run
``check``s its figures against its section; ``pin`` writes a run's figures with a margin,
tightening a bound that the run beats and keeping the rest, unless ``lower`` (the
``--lower-floors`` flag, which takes a changelog line) lets it loosen them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

DEFAULT = Path(__file__).resolve().parent / "baseline.json"
Kind = Literal["max", "min"]


def _load(path: Path) -> dict[str, dict[str, object]]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object")
    return data


def check(section: str, figures: dict[str, float], path: Path = DEFAULT) -> tuple[list[str], int]:
    """Lines "ok|FAILED name value (bound)" for each pinned bound with a figure; and how
    many failed."""
    bounds = _load(path).get(section, {}).get("bounds", {})
    assert isinstance(bounds, dict)
    lines, failed = [], 0
    for name, bound in sorted(bounds.items()):
        if name not in figures:
            continue
        value = figures[name]
        ok = value <= bound["max"] if "max" in bound else value >= bound["min"]
        failed += not ok
        kind = "max" if "max" in bound else "min"
        lines.append(f"{'ok' if ok else 'FAILED'} {name} {value:.3g} ({kind} {bound[kind]})")
    return lines, failed


def pin(
    section: str,
    figures: dict[str, float],
    kinds: dict[str, Kind],
    *,
    margin: float,
    about: str,
    lower: bool = False,
    path: Path = DEFAULT,
) -> list[str]:
    """Pin ``figures`` (those named in ``kinds``) with ``margin``; what was done, a line each.
    Other sections of the file are left as they are."""
    baseline = _load(path)
    old = baseline.get(section, {}).get("bounds", {})
    assert isinstance(old, dict)
    bounds = dict(old)
    lines = []
    for name, kind in sorted(kinds.items()):
        if name not in figures:
            continue
        value = figures[name] * margin if kind == "max" else figures[name] / margin
        new = round(value, 3)
        was = old.get(name, {}).get(kind)
        looser = was is not None and (new > was if kind == "max" else new < was)
        if looser and not lower:
            lines.append(f"kept {name} {kind} {was} (this run: {new}; --lower-floors loosens)")
            continue
        bounds[name] = {kind: new}
        lines.append(f"pinned {name} {kind} {new}" + (f" (was {was})" if was is not None else ""))
    baseline[section] = {"about": about, "bounds": bounds}
    path.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return lines
