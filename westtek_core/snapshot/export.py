"""Export a snapshot's packages as requirements.txt, pylock.toml (PEP 751) or environment.yml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w
from packaging.utils import canonicalize_name

EXPORT_FORMATS = ("requirements", "pylock", "conda")


def _interpreter(manifest: Mapping[str, Any], index: int) -> Mapping[str, Any]:
    interpreters = manifest.get("interpreters", [])
    if not interpreters:
        raise ValueError("the snapshot captured no interpreter")
    if not 0 <= index < len(interpreters):
        raise ValueError(f"no interpreter {index}: the snapshot has {len(interpreters)}")
    return interpreters[index]  # type: ignore[no-any-return]


def _archive_hash(package: Mapping[str, Any]) -> str | None:
    archive = (package.get("direct_url") or {}).get("archive_info") or {}
    hashes = archive.get("hashes") or {}
    if "sha256" in hashes:
        return f"sha256:{hashes['sha256']}"
    legacy = archive.get("hash")
    return str(legacy).replace("=", ":", 1) if legacy else None


def _requirement(package: Mapping[str, Any]) -> str:
    direct = package.get("direct_url") or {}
    url = direct.get("url")
    if url and "vcs_info" in direct:
        vcs = direct["vcs_info"]
        return f"{package['name']} @ {vcs['vcs']}+{url}@{vcs.get('commit_id', '')}"
    if url and not direct.get("dir_info", {}).get("editable"):
        return f"{package['name']} @ {url}"
    return f"{package['name']}=={package['version']}"


def export_requirements(manifest: Mapping[str, Any], index: int = 0) -> str:
    """requirements.txt pinning every distribution (``--hash`` where the archive hash is known)."""
    interp = _interpreter(manifest, index)
    lines = [f"# westtek snapshot {manifest.get('id', '')} — Python {interp.get('version')}"]
    for package in sorted(interp.get("packages", []), key=lambda p: str(p["name"]).lower()):
        if (package.get("direct_url") or {}).get("dir_info", {}).get("editable"):
            lines.append(f"# {package['name']}=={package['version']} was an editable install")
            continue
        line = _requirement(package)
        digest = _archive_hash(package)
        lines.append(f"{line} --hash={digest}" if digest else line)
    return "\n".join(lines) + "\n"


def export_pylock(manifest: Mapping[str, Any], index: int = 0) -> str:
    """A PEP 751 ``pylock.toml`` with every distribution at its exact version."""
    interp = _interpreter(manifest, index)
    version = ".".join(str(p) for p in (interp.get("version_info") or [])[:3])
    packages = []
    for package in sorted(interp.get("packages", []), key=lambda p: str(p["name"]).lower()):
        entry: dict[str, Any] = {
            "name": canonicalize_name(str(package["name"])),
            "version": package["version"],
        }
        direct = package.get("direct_url") or {}
        if "vcs_info" in direct:
            vcs = direct["vcs_info"]
            entry["vcs"] = {
                "type": vcs["vcs"],
                "url": direct["url"],
                "commit-id": vcs.get("commit_id", ""),
            }
        elif direct.get("dir_info") is not None:
            entry["directory"] = {
                "path": direct["url"].removeprefix("file://"),
                "editable": bool(direct["dir_info"].get("editable")),
            }
        elif direct.get("url"):
            digest = _archive_hash(package)
            archive: dict[str, Any] = {"url": direct["url"]}
            if digest:
                algorithm, value = digest.split(":", 1)
                archive["hashes"] = {algorithm: value}
            entry["archive"] = archive
        else:
            entry["index"] = "https://pypi.org/simple"
        packages.append(entry)
    document: dict[str, Any] = {
        "lock-version": "1.0",
        "created-by": "westtek",
        "packages": packages,
    }
    if version:
        document["requires-python"] = f"=={version}"
    return tomli_w.dumps(document)


def export_conda(manifest: Mapping[str, Any], index: int = 0) -> str:
    """A conda ``environment.yml``: conda records as conda deps, the rest under ``pip:``."""
    interp = _interpreter(manifest, index)
    conda = {str(r["name"]): str(r["version"]) for r in interp.get("conda_meta") or []}
    version = ".".join(str(p) for p in (interp.get("version_info") or [])[:3])
    lines = ["name: " + str(manifest.get("environment_id", "westtek")).replace("@", "-")]
    lines += ["channels:", "  - conda-forge", "dependencies:"]
    if "python" not in conda and version:
        lines.append(f"  - python={version}")
    lines += [f"  - {name}={v}" for name, v in sorted(conda.items())]
    pip_only = [
        p
        for p in sorted(interp.get("packages", []), key=lambda p: str(p["name"]).lower())
        if p.get("installer") != "conda" and str(p["name"]).lower() not in conda
    ]
    if pip_only:
        lines += ["  - pip", "  - pip:"]
        lines += [f"    - {_requirement(p)}" for p in pip_only]
    return "\n".join(lines) + "\n"


def export_snapshot(manifest: Mapping[str, Any], fmt: str, index: int = 0) -> str:
    """Export in one of ``EXPORT_FORMATS``."""
    exporters = {
        "requirements": export_requirements,
        "pylock": export_pylock,
        "conda": export_conda,
    }
    if fmt not in exporters:
        raise ValueError(
            f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}"
        )
    return exporters[fmt](manifest, index)
