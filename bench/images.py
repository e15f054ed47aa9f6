"""How big the container images are and how long `make images` takes to build them.

Builds everything afresh on this machine's Docker daemon: the Debian base (debootstrap and
``docker import``, into a throwaway tag so the images' own base stays), then the notebook
and hub images with ``--no-cache`` (the wheel of this checkout, the wheels collected for
the images, every layer). Sizes are the daemon's (uncompressed). Needs root and dockerd.

    .venv/bin/python bench/images.py [--no-readme]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # images/build.py is what `make images` runs
from benchlib import log, machine_facts, publish  # noqa: E402

from images import build  # noqa: E402

RESULTS = BENCH / "results" / "images.json"
MARKS = ("<!-- bench:images:start -->", "<!-- bench:images:end -->")
SECTION = """## images

`bench/images.py`: sizes of the images `make images` builds and how long a build from
nothing takes on this machine (the base from Debian's packages, then both images with
`--no-cache`). The wheels come from this machine's pip cache and indexes (a first build on
a machine without them also downloads about 220 MB of wheels)."""


def measure(science_packages: str) -> dict[str, Any]:
    """Build the base under a throwaway tag, then both images without the layer cache."""
    client = build.docker_client()
    scratch_base = f"{build.BASE_IMAGE.split(':')[0]}:bench"
    if build.has_image(client, scratch_base):
        client.images.remove(scratch_base, force=True)
    log("building a base from Debian's packages")
    base = build.build_base(client, reference=scratch_base)
    assert base is not None
    client.images.remove(scratch_base, force=True)
    log("building both images without the cache")
    started = time.monotonic()
    images = build.build_all(science_packages=science_packages, no_cache=True)
    total = time.monotonic() - started
    return {
        "machine": machine_facts(netns=False, sources=["images", "westtek_core"]),
        "science_packages": science_packages,
        "base": {"seconds": base.seconds, "size_bytes": base.size_bytes},
        "images": [
            {"reference": i.reference, "seconds": i.seconds, "size_bytes": i.size_bytes}
            for i in images
        ],
        # wheel, collected wheels and both builds
        "make_images_seconds": total,
    }


def table(result: dict[str, Any]) -> str:
    """The markdown block written between the README markers."""
    machine = result["machine"]
    rows = [
        "| image | size (MB) | build (s) |",
        "|---|---:|---:|",
        f"| base (`{build.BASE_IMAGE}`, debootstrap + import) "
        f"| {result['base']['size_bytes'] / 1e6:.0f} | {result['base']['seconds']:.0f} |",
    ]
    for image in result["images"]:
        rows.append(
            f"| `{image['reference']}` | {image['size_bytes'] / 1e6:.0f} | {image['seconds']:.0f} |"
        )
    return "\n".join(
        [
            f"Run {result['date']} on {machine.get('nproc')} cores ({machine.get('cpu', '')}), "
            f"scientific set `{result['science_packages']}`.",
            "",
            *rows,
            "",
            f"`make images` with a base already made, no layer cache: "
            f"{result['make_images_seconds']:.0f} s (the suite's wheel, the images' wheels "
            "and both builds).",
        ]
    )


def main() -> int:
    """Build, measure, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--science-packages", default=build.DEFAULT_SCIENCE_PACKAGES)
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    options = parser.parse_args()
    result = measure(options.science_packages)
    publish(RESULTS, result, MARKS, table, SECTION, write=not options.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
