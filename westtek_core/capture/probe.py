"""Interpreter probe: a self-contained script run *in the target interpreter*.

``python -E probe.py`` prints one JSON object describing that interpreter and every
distribution it can import. With ``--reuse``, it first reads from stdin a JSON object
mapping metadata directories to the stamps an earlier probe reported
(``metadata_stamps``); a distribution whose directory still has that stamp is reported
as ``{"reused": <dir>}``, and the caller fills in the description it kept
(:mod:`westtek_core.capture.probe_cache`).

The file is run by path, never imported there, so it must stay standard-library only and
runnable on Python >= 3.8 (no ``match``, no ``X | Y`` at runtime, no 3.9+ APIs such as
``str.removeprefix``). It reads only metadata files
(METADATA header, RECORD, INSTALLER, REQUESTED, direct_url.json, top_level.txt), never
the distributions' own files, so a 200-distribution environment probes in well under a
second.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import platform
import re
import site
import sys
import sysconfig
from importlib import metadata
from typing import Any

PROBE_VERSION = 2  # 2: a distribution's files are its RECORD paths only

_NAME_RE = re.compile(r"[-_.]+")
_PKG_DIR_SUFFIXES = (".dist-info", ".egg-info", ".data")
_EXT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)*\.(so|pyd)$")
_MAPPING_RE = re.compile(r"^MAPPING\s*(?::[^=]*)?=\s*(\{.*?\})\s*$", re.MULTILINE | re.DOTALL)


def canonical_name(name: str) -> str:
    """Normalize a distribution name as PEP 503 does."""
    return _NAME_RE.sub("-", name).lower()


def _read(meta_dir: str | None, dist: metadata.Distribution, name: str) -> str | None:
    """Read a metadata file of ``dist``; None when absent."""
    if meta_dir is not None:
        try:
            with open(os.path.join(meta_dir, name), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None
    try:
        return dist.read_text(name)
    except Exception:  # noqa: BLE001 - a broken finder must not sink the probe
        return None


def _read_header(meta_dir: str | None, dist: metadata.Distribution) -> dict[str, list[str]]:
    """Parse only the RFC 822 header of METADATA/PKG-INFO (the body can be huge)."""
    lines: list[str] = []
    if meta_dir is not None:
        for fname in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(meta_dir, fname), encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if not line.strip():
                            break
                        lines.append(line)
                break
            except OSError:
                continue
    else:
        text = _read(None, dist, "METADATA") or _read(None, dist, "PKG-INFO") or ""
        lines = text.split("\n\n", 1)[0].splitlines(True)
    header: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and last is not None:
            header[last][-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        header.setdefault(last, []).append(value.strip())
    return header


def _first(header: dict[str, list[str]], key: str) -> str | None:
    values = header.get(key)
    return values[0] if values else None


def _record_files(text: str) -> list[str]:
    """The paths a RECORD file lists (its hashes and sizes are of no use to a snapshot)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def _module_name(filename: str) -> str | None:
    """Return the module a file named ``filename`` provides, or None."""
    if filename.endswith(".py"):
        stem = filename[:-3]
        return stem if stem.isidentifier() else None
    match = _EXT_RE.match(filename)
    return match.group(1) if match else None


def _import_names(paths: list[str]) -> list[str]:
    """Derive importable top-level names from paths relative to a site dir.

    A top directory without ``__init__`` is a namespace package: its regular packages and
    modules are reported with dotted names (``google.cloud.storage``), since the bare
    namespace (``google``) is shared by many distributions.
    """
    tree: dict[str, Any] = {}
    for path in paths:
        parts = path.replace("\\", "/").split("/")
        if parts[0] in ("", "..", ".") or parts[0].endswith(_PKG_DIR_SUFFIXES):
            continue
        if "__pycache__" in parts:
            continue
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node.setdefault(parts[-1], None)
    names: list[str] = []

    def visit(node: dict[str, Any], prefix: str, depth: int) -> None:
        for key, child in node.items():
            if child is None:
                if prefix and key.startswith("__init__"):
                    continue
                mod = _module_name(key)
                if mod is not None and not mod.startswith("__editable__"):
                    names.append(prefix + mod)
            elif key.isidentifier():
                if any(k == "__init__.py" or k.startswith("__init__.") for k in child):
                    names.append(prefix + key)
                elif depth < 8:
                    visit(child, prefix + key + ".", depth + 1)

    visit(tree, "", 0)
    return sorted(set(names))


def _editable_names(site_dir: str, files: list[str]) -> list[str]:
    """Importable names of an editable install, from its finder's MAPPING or its .pth dirs."""
    names: list[str] = []
    for path in files:
        if "/" in path:
            continue
        full = os.path.join(site_dir, path)
        if path.startswith("__editable__") and path.endswith("_finder.py"):
            try:
                with open(full, encoding="utf-8") as f:
                    match = _MAPPING_RE.search(f.read())
                if match:
                    mapping = ast.literal_eval(match.group(1))
                    names.extend(str(key) for key in mapping)
            except (OSError, ValueError, SyntaxError):
                pass
        elif path.endswith(".pth"):
            try:
                with open(full, encoding="utf-8") as f:
                    lines = [line.strip() for line in f]
            except OSError:
                continue
            for line in lines:
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                src = line if os.path.isabs(line) else os.path.join(site_dir, line)
                try:
                    with os.scandir(src) as it:
                        for item in it:
                            if item.is_dir():
                                if item.name.isidentifier() and os.path.exists(
                                    os.path.join(item.path, "__init__.py")
                                ):
                                    names.append(item.name)
                            else:
                                mod = _module_name(item.name)
                                if mod is not None and mod != "setup":
                                    names.append(mod)
                except OSError:
                    continue
    return sorted(set(names))


def _direct_url(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def describe_distribution(dist: metadata.Distribution) -> dict[str, Any]:
    """Describe one distribution from its metadata files only."""
    meta_path = getattr(dist, "_path", None)
    meta_dir = str(meta_path) if meta_path is not None else None
    if meta_dir is not None and not os.path.isdir(meta_dir):
        meta_dir = None  # a single PKG-INFO file or a zip: go through the Distribution API
    header = _read_header(meta_dir, dist)
    name = _first(header, "name") or ""
    version = _first(header, "version") or ""
    site_dir = os.path.abspath(str(dist.locate_file("")))
    record = _read(meta_dir, dist, "RECORD")
    files = _record_files(record) if record is not None else []
    direct = _direct_url(_read(meta_dir, dist, "direct_url.json"))
    dir_info = direct.get("dir_info") if direct else None
    editable = bool(isinstance(dir_info, dict) and dir_info.get("editable"))
    vcs_info = direct.get("vcs_info") if direct else None
    vcs = vcs_info.get("vcs") if isinstance(vcs_info, dict) else None
    url = direct.get("url", "") if direct else ""
    top_level = _import_names(files)
    if not top_level and editable:
        top_level = _editable_names(site_dir, files)
    if not top_level:
        text = _read(meta_dir, dist, "top_level.txt") or ""
        top_level = sorted({line.strip() for line in text.splitlines() if line.strip()})
    installer = (_read(meta_dir, dist, "INSTALLER") or "").strip() or None
    if meta_dir is not None:
        requested = os.path.exists(os.path.join(meta_dir, "REQUESTED"))
    else:
        requested = _read(None, dist, "REQUESTED") is not None
    if meta_dir is None:
        fmt = "unknown"
    elif meta_dir.endswith(".dist-info"):
        fmt = "dist-info"
    elif meta_dir.endswith(".egg-info"):
        fmt = "egg-info"
    else:
        fmt = "egg"
    return {
        "name": name,
        "canonical_name": canonical_name(name),
        "version": version,
        "installer": installer,
        "requested": requested,
        "direct_url": direct,
        "editable": editable,
        "vcs": vcs,
        "local": isinstance(url, str) and url.startswith("file:"),
        "top_level": top_level,
        "requires": header.get("requires-dist", []),
        "requires_python": _first(header, "requires-python"),
        "files": files,
        "has_record": record is not None,
        "location": site_dir,
        "metadata_dir": meta_dir,
        "format": fmt,
    }


def _conda_meta(prefix: str) -> list[dict[str, Any]] | None:
    """Summarize ``conda-meta/*.json`` when ``prefix`` is a conda environment."""
    meta = os.path.join(prefix, "conda-meta")
    if not os.path.isdir(meta):
        return None
    records: list[dict[str, Any]] = []
    for fname in sorted(os.listdir(meta)):
        if not fname.endswith(".json"):
            continue
        try:
            with open(os.path.join(meta, fname), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            records.append({"file": fname, "error": "unreadable"})
            continue
        records.append(
            {
                "name": data.get("name"),
                "version": data.get("version"),
                "build": data.get("build"),
                "build_number": data.get("build_number"),
                "channel": data.get("channel") or data.get("schannel"),
                "requested_spec": data.get("requested_spec"),
                "files": len(data.get("files") or []),
            }
        )
    return records


def _pyvenv_cfg(prefix: str) -> dict[str, str] | None:
    try:
        with open(os.path.join(prefix, "pyvenv.cfg"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    cfg: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip()] = value.strip()
    return cfg


def order_distributions(distributions: list[dict[str, Any]], sys_path: list[str]) -> None:
    """Sort by name, then in ``sys.path`` order within a name; mark the others ``shadowed``.

    The first of a name is what ``import`` finds.
    """
    order = {p: i for i, p in enumerate(os.path.abspath(p) for p in sys_path)}
    distributions.sort(
        key=lambda d: (d["canonical_name"], order.get(d["location"], len(order)), d["location"])
    )
    seen: set[str] = set()
    for dist_info in distributions:
        dist_info["shadowed"] = dist_info["canonical_name"] in seen
        seen.add(dist_info["canonical_name"])


def metadata_stamp(meta_dir: str) -> list[int] | None:
    """What changes when a metadata directory is replaced or its files are added or removed.

    pip writes every metadata file through a temporary file and a rename, so the directory's
    mtime moves on each rewrite; a reinstall makes a new directory (a new inode).
    """
    try:
        st = os.stat(meta_dir)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ino]


def probe(known: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """Describe the running interpreter and its distributions.

    A distribution whose metadata directory has the stamp ``known`` gives for it is not
    read again: it is reported as ``{"reused": <metadata dir>}``. The distributions come
    in :func:`order_distributions`'s order unless some were reused (the caller orders
    them once it has filled them in).
    """
    script_dir = os.path.dirname(os.path.abspath(__file__))
    sys_path = [p for p in sys.path if p and os.path.abspath(p) != script_dir]
    distributions: list[dict[str, Any]] = []
    stamps: dict[str, list[int]] = {}
    errors: list[str] = []
    for dist in metadata.distributions():
        meta_path = getattr(dist, "_path", None)
        stamp = metadata_stamp(str(meta_path)) if meta_path is not None else None
        if stamp is not None:
            stamps[str(meta_path)] = stamp
            if known and known.get(str(meta_path)) == stamp:
                distributions.append({"reused": str(meta_path)})
                continue
        try:
            distributions.append(describe_distribution(dist))
        except Exception as exc:  # noqa: BLE001 - report, never crash on one bad dist
            errors.append(f"{getattr(dist, '_path', dist)}: {exc}")
    if not known:
        order_distributions(distributions, sys_path)
    paths = sysconfig.get_paths()
    prefix = sys.prefix
    vi = sys.version_info
    impl = sys.implementation
    return {
        "probe_version": PROBE_VERSION,
        "executable": sys.executable,
        "realpath": os.path.realpath(sys.executable),
        "prefix": prefix,
        "base_prefix": getattr(sys, "base_prefix", prefix),
        "exec_prefix": sys.exec_prefix,
        "base_exec_prefix": getattr(sys, "base_exec_prefix", sys.exec_prefix),
        "is_venv": getattr(sys, "base_prefix", prefix) != prefix,
        "is_conda": os.path.isdir(os.path.join(prefix, "conda-meta")),
        "pyvenv_cfg": _pyvenv_cfg(prefix),
        "version": [vi.major, vi.minor, vi.micro, vi.releaselevel, vi.serial],
        "version_string": sys.version,
        "implementation": {
            "name": impl.name,
            "version": list(impl.version),
            "cache_tag": impl.cache_tag,
        },
        "platform": {
            "platform": platform.platform(),
            "sys_platform": sys.platform,
            "machine": platform.machine(),
        },
        "abi": {
            "soabi": sysconfig.get_config_var("SOABI"),
            "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        },
        "paths": {key: paths.get(key) for key in ("purelib", "platlib", "scripts", "data")},
        # where `pip install --user` writes, when this interpreter reads it (not in a venv)
        "user_site": site.getusersitepackages() if site.ENABLE_USER_SITE else None,
        "sys_path": sys_path,
        "distributions": distributions,
        "conda_meta": _conda_meta(prefix),
        "metadata_stamps": stamps,
        "errors": errors,
    }


def main() -> None:
    """Print the probe's JSON report on stdout."""
    known = json.load(sys.stdin) if "--reuse" in sys.argv[1:] else None
    # json.dumps uses the C encoder; json.dump would stream through the slow Python one.
    sys.stdout.write(json.dumps(probe(known)) + "\n")


if __name__ == "__main__":
    main()
