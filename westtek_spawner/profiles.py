"""Server profiles: the sizes and images a researcher picks from on the spawn page.

A profile is plain configuration (``c.WestTekSpawner.profile_list``), checked once when the
hub loads it so a typo fails the hub's start, not alice's spawn. Backends read the fields
they understand: ECS sizes the Fargate task from ``cpu``/``memory_gib``/
``ephemeral_storage_gib``, Docker limits the container, local ignores all but the name.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Fargate's task sizes: vCPU → (lowest, highest, step) of memory in GiB.
FARGATE_MEMORY_GIB: dict[float, tuple[float, float, float]] = {
    0.25: (0.5, 2, 0.5),
    0.5: (1, 4, 1),
    1: (2, 8, 1),
    2: (4, 16, 1),
    4: (8, 30, 1),
    8: (16, 60, 4),
    16: (32, 120, 8),
}
EPHEMERAL_STORAGE_GIB = (21, 200)
_KNOWN_FIELDS = {
    "slug",
    "display_name",
    "description",
    "default",
    "cpu",
    "memory_gib",
    "image",
    "ephemeral_storage_gib",
}


class ProfileError(ValueError):
    """A profile that is not valid, or a choice of profile that does not exist."""


@dataclass(frozen=True)
class Profile:
    """One choice on the spawn page.

    ``cpu`` is in vCPUs and ``memory_gib`` in GiB, as Fargate sizes tasks; ``image`` (when
    set) replaces the backend's default image; ``ephemeral_storage_gib`` is the task's
    scratch disk (Fargate gives 20 GiB when unset).
    """

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    cpu: float = 1.0
    memory_gib: float = 4.0
    image: str | None = None
    ephemeral_storage_gib: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The profile as plain data (what the spawner's state keeps)."""
        return asdict(self)


def fargate_size(cpu: float, memory_gib: float) -> tuple[str, str]:
    """A Fargate task's ``cpu`` and ``memory`` strings (CPU units, MiB) for this size.

    Raises :class:`ProfileError` naming the sizes Fargate accepts when it takes no such task.
    """
    if cpu not in FARGATE_MEMORY_GIB:
        choices = ", ".join(f"{c:g}" for c in FARGATE_MEMORY_GIB)
        raise ProfileError(f"Fargate has no task with {cpu:g} vCPU: choose one of {choices}")
    low, high, step = FARGATE_MEMORY_GIB[cpu]
    steps = (memory_gib - low) / step
    if not (low <= memory_gib <= high) or abs(steps - round(steps)) > 1e-9:
        raise ProfileError(
            f"Fargate takes {cpu:g} vCPU with {low:g} to {high:g} GiB of memory "
            f"in steps of {step:g} GiB, not {memory_gib:g} GiB"
        )
    return str(int(cpu * 1024)), str(int(memory_gib * 1024))


def parse_profile(raw: Mapping[str, Any]) -> Profile:
    """Check one configured profile and make it a :class:`Profile`."""
    slug = raw.get("slug")
    if not isinstance(slug, str) or not slug or not slug.replace("-", "").isalnum():
        raise ProfileError(f"a profile's slug must be letters, digits and dashes: {raw!r}")
    unknown = sorted(set(raw) - _KNOWN_FIELDS)
    if "gpu" in unknown or "gpus" in unknown:
        raise ProfileError(f"profile {slug!r}: Fargate has no GPUs; remove 'gpu'")
    if unknown:
        raise ProfileError(f"profile {slug!r}: unknown field(s) {', '.join(unknown)}")
    try:
        profile = Profile(
            slug=slug,
            display_name=str(raw.get("display_name") or slug),
            description=str(raw.get("description", "")),
            default=bool(raw.get("default", False)),
            cpu=float(raw.get("cpu", 1.0)),
            memory_gib=float(raw.get("memory_gib", 4.0)),
            image=str(raw["image"]) if raw.get("image") else None,
            ephemeral_storage_gib=(
                int(raw["ephemeral_storage_gib"]) if raw.get("ephemeral_storage_gib") else None
            ),
        )
    except (TypeError, ValueError) as e:
        raise ProfileError(f"profile {slug!r}: {e}") from None
    try:
        fargate_size(profile.cpu, profile.memory_gib)
    except ProfileError as e:
        raise ProfileError(f"profile {slug!r}: {e}") from None
    storage = profile.ephemeral_storage_gib
    low, high = EPHEMERAL_STORAGE_GIB
    if storage is not None and not low <= storage <= high:
        raise ProfileError(
            f"profile {slug!r}: ephemeral storage must be {low} to {high} GiB, not {storage}"
        )
    return profile


def parse_profiles(raw: Iterable[Mapping[str, Any]]) -> list[Profile]:
    """Check a whole ``profile_list``: valid profiles, unique slugs, at most one default."""
    profiles = [parse_profile(p) for p in raw]
    slugs = [p.slug for p in profiles]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ProfileError(f"profile slugs must be unique: {', '.join(duplicates)} repeated")
    if sum(p.default for p in profiles) > 1:
        raise ProfileError("at most one profile may be the default")
    return profiles


def choose_profile(profiles: list[Profile], slug: str | None) -> Profile | None:
    """The profile named ``slug``, else the default (the first when none is marked).

    None when no profiles are configured. An unknown slug is a :class:`ProfileError` that
    lists the choices: a stale bookmark or a hand-made API call must not fall back silently.
    """
    if not profiles:
        if slug:
            raise ProfileError(f"no profiles are configured on this hub, so not {slug!r}")
        return None
    if slug:
        for profile in profiles:
            if profile.slug == slug:
                return profile
        choices = ", ".join(p.slug for p in profiles)
        raise ProfileError(f"there is no profile {slug!r} on this hub: choose one of {choices}")
    return next((p for p in profiles if p.default), profiles[0])


def render_options_form(profiles: list[Profile], selected: str | None) -> str:
    """The spawn page's choice of profile: one radio button each, ``selected`` checked."""
    chosen = choose_profile(profiles, selected if selected in {p.slug for p in profiles} else None)
    rows = []
    for profile in profiles:
        checked = " checked" if chosen is not None and profile.slug == chosen.slug else ""
        slug = html.escape(profile.slug, quote=True)
        size = f"{profile.cpu:g} vCPU, {profile.memory_gib:g} GiB"
        description = f" — {html.escape(profile.description)}" if profile.description else ""
        rows.append(
            f'<label class="westtek-profile" for="profile-{slug}">'
            f'<input type="radio" name="profile" id="profile-{slug}" value="{slug}"{checked}> '
            f"<strong>{html.escape(profile.display_name)}</strong> ({size}){description}</label>"
        )
    return '<fieldset class="westtek-profiles"><legend>Server size</legend>\n' + (
        "<br>\n".join(rows) + "\n</fieldset>"
    )


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """The form's choice as user_options: ``{"profile": slug}`` (or nothing chosen)."""
    values = formdata.get("profile") or []
    return {"profile": values[0]} if values and values[0] else {}
