"""What changed in a package's public API between two versions, and which notebook calls it.

The Drift Analyzer's changelog works offline: instead of fetching release notes, it reads
the two versions' *source* (from snapshots in the store, or from the live environment) and
compares their public APIs with ``ast``: functions, classes, methods and properties that
were removed, moved, deprecated, or whose signature changed (parameters removed, renamed,
made keyword-only, new required ones, defaults changed). It then walks the workspace's
notebooks, resolving ``import pkg as p`` / ``from pkg.mod import f`` / ``x = pkg.C()``
aliases cell by cell, to name the changed items each notebook actually uses, at which cell.

Nothing is imported or executed: a package that no longer imports, or one for another
platform, is analysed the same way.

``source`` reads a version's source, ``api`` its public API, ``diff`` compares two
versions (API, metadata, release notes) and ``uses`` finds what the notebooks use.
"""

from westtek_core.agents.api_diff.api import ApiItem, Param, all_paths, format_params, public_api
from westtek_core.agents.api_diff.diff import (
    ApiChange,
    compare_params,
    diff_api,
    diff_metadata,
    metadata_fields,
    release_notes_between,
)
from westtek_core.agents.api_diff.source import (
    MAX_SOURCE_BYTES,
    MAX_SOURCE_FILES,
    PackageSource,
    collect_source,
    find_package,
    site_packages_relative,
    source_from_directory,
    source_from_snapshot,
)
from westtek_core.agents.api_diff.uses import (
    ApiUse,
    affected_uses,
    find_api_uses,
    notebook_cells,
    notebook_paths,
)

__all__ = [
    "MAX_SOURCE_BYTES",
    "MAX_SOURCE_FILES",
    "ApiChange",
    "ApiItem",
    "ApiUse",
    "PackageSource",
    "Param",
    "affected_uses",
    "all_paths",
    "collect_source",
    "compare_params",
    "diff_api",
    "diff_metadata",
    "find_api_uses",
    "find_package",
    "format_params",
    "metadata_fields",
    "notebook_cells",
    "notebook_paths",
    "public_api",
    "release_notes_between",
    "site_packages_relative",
    "source_from_directory",
    "source_from_snapshot",
]
