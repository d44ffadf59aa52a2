"""The opening of a report: what ran, on how many photos, at which budget, and which model plays which role.

Read off the run's configuration (the keys of :class:`~nrp.eval.config.EvalConfig`) and its rows, so the
page says what was measured before any table: the models that crafted the attacks (white-box to
themselves), the targets and whether each is black-box, the budget with its unit, and for a purifier the
network it was trained against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nrp.eval.components import ENSEMBLE_JOIN, LABEL_FREE_ATTACKS, NO_DEFENSE, SHIPPED_DEFENSES, SSP_DEFAULTS, Component
from nrp.eval.reports.rows import Row

PURIFIER_DEFENSES = ("nrp", "nrp_dynamic", *SHIPPED_DEFENSES)


def photo_count(rows: Sequence[Row]) -> int | None:
    """Photos each score is taken over (the largest ``images`` of the rows), or None without rows."""
    return max((row.images for row in rows), default=None)


def budget_text(eps: Sequence[float]) -> str:
    """``"16/255 (L-inf; 0-255 pixel units)"`` for the run's budgets.

    Example:
        >>> budget_text([4, 16.0])
        'eps 4/255 and 16/255 (L-inf; the command line speaks 0-255 pixel units)'
    """
    values = " and ".join(f"{value:g}/255" for value in eps)
    return f"eps {values} (L-inf; the command line speaks 0-255 pixel units)"


def _components(values: Sequence[Any], what: str) -> list[Component]:
    return [Component.parse(value, what) for value in values]


def _crafted_attacks(config: Mapping[str, Any]) -> list[Component]:
    """The attacks of the classification protocol and those of the ``cross_task`` section: every attack run."""
    return _components([*config.get("attacks", []), *(config.get("cross_task") or {}).get("attacks", [])], "attack")


def _attack_text(component: Component) -> str:
    shown = {k: v for k, v in component.params.items() if k not in ("backbone", "layer")}
    details = [component.name] + [f"{k} {v}" for k, v in shown.items()]
    if component.name == "ssp":
        backbone = component.params.get("backbone", SSP_DEFAULTS["backbone"])
        layer = component.params.get("layer", SSP_DEFAULTS["layer"])
        details.insert(1, f"label-free, on {backbone}:{layer} features")
    return f"{component.label} ({', '.join(details)})"


def crafting_models(config: Mapping[str, Any]) -> set[str]:
    """Every model an attack of the run computed gradients on: the sources' members and SSP's backbones."""
    models = {member for source in config.get("sources", []) for member in source.split(ENSEMBLE_JOIN)}
    for component in _crafted_attacks(config):
        if component.name == "ssp":
            models.add(component.params.get("backbone", SSP_DEFAULTS["backbone"]))
    return models


def target_roles(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(target, role)``: black-box when no attack was crafted on it, else white-box for the sources that hold it."""
    roles = []
    crafted_on = crafting_models(config)
    for target in config.get("targets", []):
        if target not in crafted_on:
            roles.append((target, "black-box: no attack was crafted on it"))
            continue
        holders = [s for s in config.get("sources", []) if target in s.split(ENSEMBLE_JOIN)]
        ssp = any(c.name == "ssp" and c.params.get("backbone", SSP_DEFAULTS["backbone"]) == target
                  for c in _crafted_attacks(config))
        holders += ["SSP's feature extractor"] if ssp else []
        roles.append((target, f"white-box for {', '.join(holders)}"))
    return roles


def purifier_text(component: Component) -> str:
    """Which purifier a defense loads and what it was trained against."""
    weights = component.params.get("weights")
    if component.name in SHIPPED_DEFENSES:
        from nrp.purifiers.shipped import SHIPPED_FILE, SHIPPED_TRAINING
        return f"{component.label}: the shipped {SHIPPED_FILE.name}, trained with {SHIPPED_TRAINING}"
    return f"{component.label}: {weights} (the file does not record what it was trained against)"


def run_facts(config: Mapping[str, Any], rows: Sequence[Row]) -> list[tuple[str, str]]:
    """The run's set-up as ``(name, value)`` pairs, for the report's opening definition list."""
    facts = []
    count = photo_count(rows)
    if config.get("images") or count:
        labels = config.get("labels")
        size = config.get("image_size")
        text = f"{count} photos" if count else "photos"
        text += f" from {config['images']}" if config.get("images") else ""
        text += f", labels {labels}" if labels else ""
        text += f", resized and centre-cropped to {size}x{size}" if size else ""
        facts.append(("Photos", text))
    if config.get("eps"):
        facts.append(("Budget", budget_text(config["eps"])))
    attacks = _components(config.get("attacks", []), "attack")
    if attacks:
        facts.append(("Attacks", "; ".join(_attack_text(a) for a in attacks)))
    sources = config.get("sources", [])
    if sources:
        facts.append(("Crafted on (white-box)", ", ".join(
            f"{s} (ensemble: averaged logits)" if ENSEMBLE_JOIN in s else s for s in sources)))
    roles = target_roles(config)
    if roles:
        facts.append(("Scored by", "; ".join(f"{target} ({role})" for target, role in roles)))
    defenses = _components(config.get("defenses", []), "defense")
    if defenses:
        facts.append(("Defenses", ", ".join(d.label for d in defenses)))
    purifiers = [d for d in defenses if d.name in PURIFIER_DEFENSES]
    if purifiers:
        facts.append(("Purifier", "; ".join(purifier_text(d) for d in purifiers)))
    return facts


def introduction(config: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """One paragraph: what the tables below measure, on how many photos, and how coarse one photo is."""
    count = photo_count(rows)
    attacks = [a.label for a in _components(config.get("attacks", []), "attack")]
    defenses = [d.label for d in _components(config.get("defenses", []), "defense") if d.name != NO_DEFENSE]
    black_box = [target for target, role in target_roles(config) if role.startswith("black-box")]
    parts = []
    if attacks:
        label_free = [a.label for a in _components(config.get("attacks", []), "attack") if a.name in LABEL_FREE_ATTACKS]
        crafted = f" crafted on {', '.join(config.get('sources', []))}" if config.get("sources") else ""
        parts.append(f"Adversarial images from {len(attacks)} attack(s) ({', '.join(attacks)}){crafted}"
                     + (f" ({', '.join(label_free)} without labels)" if label_free else "")
                     + (f" at {budget_text(config['eps'])}" if config.get("eps") else "")
                     + f" are classified by {', '.join(config.get('targets', [])) or 'the targets'}"
                     + (f" behind {len(defenses)} defense(s) ({', '.join(defenses)}) and undefended" if defenses else "")
                     + ".")
    if black_box:
        columns = "its columns measure transfer to an unseen (black-box) model" if len(black_box) == 1 else \
            "their columns measure transfer to unseen (black-box) models"
        parts.append(f"{', '.join(black_box)} never saw an attack: {columns}.")
    if count:
        parts.append(f"Every number is a percentage of the same {count} photos, so one photo is "
                     f"{100 / count:.3g} points.")
    return " ".join(parts)
