"""Build the West Tek container images (`make images`): a Debian base, the notebook and hub images.

No image registry is needed: the base is made from Debian's own packages (debootstrap, then
``docker import``), and both images start ``FROM`` it. The suite goes in as the wheel built
from this checkout, its dependencies pinned to the versions this checkout's environment
tested (``pip freeze``), so an image holds what ``make test`` ran. Names and the tag come
from images/images.json, which infra/ reads too.

    python images/build.py [--only notebook|hub] [--science-packages "numpy scipy"] [--no-cache]
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
from packaging.specifiers import SpecifierSet

IMAGES_DIR = Path(__file__).resolve().parent
REPO = IMAGES_DIR.parent
MANIFEST = json.loads((IMAGES_DIR / "images.json").read_text())
TAG: str = MANIFEST["tag"]
BASE_IMAGE: str = MANIFEST["base"]
IMAGE_NAMES: dict[str, str] = MANIFEST["images"]
DEFAULT_SCIENCE_PACKAGES = "numpy scipy pandas matplotlib"
# what the base holds besides Debian's minimal system: the images' Python, tini as PID 1
BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates", "tini", "curl"]
DEBIAN_SUITE = "bookworm"


class BuildError(RuntimeError):
    """An image could not be built; the message says which step and why."""


@dataclass
class Built:
    """One image built: its reference, id, size and how long it took."""

    reference: str
    image_id: str
    size_bytes: int
    seconds: float


def image_reference(name: str) -> str:
    """The reference `make images` tags an image with, e.g. ``westtek/notebook:latest``."""
    return f"{IMAGE_NAMES[name]}:{TAG}"


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (containers and debootstrap use it too)."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]
    for source in sources:
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 1 and "security" not in line:
                return words[1] if not words[1].startswith("[") else words[2]
    return "http://deb.debian.org/debian"


def ca_bundle() -> Path:
    """The CA bundle this machine trusts (pip and npm in the build need it behind a proxy)."""
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return Path("/etc/ssl/certs/ca-certificates.crt")


def docker_client() -> docker.DockerClient:
    """A client of the Docker daemon (DOCKER_HOST or the default socket), or a clear error."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as error:
        raise BuildError(
            f"no Docker daemon answers ({error}): start one (`make images` starts Debian's "
            "dockerd where it can) or set DOCKER_HOST"
        ) from error
    return client


def has_image(client: docker.DockerClient, reference: str) -> bool:
    """Whether the daemon has the image."""
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_base(client: docker.DockerClient, reference: str = BASE_IMAGE) -> Built | None:
    """Make the base image from Debian's packages, unless the daemon has it already."""
    if has_image(client, reference):
        return None
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is missing: install it (apt-get install debootstrap)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="westtek-rootfs-") as rootfs:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                DEBIAN_SUITE,
                rootfs,
                debian_mirror(),
            ],
            "debootstrap of the base image",
        )
        # apt lists and docs are not needed in an image: leave them out of the layer
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc"):
            shutil.rmtree(Path(rootfs, leftover), ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        repository, _, tag = reference.partition(":")
        client.api.import_image_from_stream(tar.stdout, repository=repository, tag=tag)
        if tar.wait() != 0:
            raise BuildError(f"tar of the base's root file system failed (exit {tar.returncode})")
    return describe(client, reference, time.monotonic() - started)


def run(command: list[str], step: str) -> None:
    """Run a build step; its output's last lines in the error if it fails."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise BuildError(f"{step} failed (exit {result.returncode}):\n{tail}")


def prepare_context(
    context: Path, wheelhouse: Path, science_packages: str, python_version: str
) -> None:
    """The build context (Dockerfiles; build/ with the CA bundle and hub_config) and the wheels.

    Every Python package goes into the wheelhouse here, resolved by this machine's pip for
    the image's Python with this environment's versions as pins, and the images install from
    it alone: the builds need no package index and an image holds the versions ``make test``
    ran (plus the scientific set).
    """
    for name in IMAGE_NAMES:
        shutil.copytree(IMAGES_DIR / name, context / name)
    build = context / "build"
    build.mkdir()
    shutil.copy(ca_bundle(), build / "ca-certificates.crt")
    shutil.copytree(
        REPO / "hub_config", build / "hub_config", ignore=shutil.ignore_patterns("__pycache__")
    )
    run(
        [*(sys.executable, "-m", "build", "--wheel", "--no-isolation"), "--outdir", str(wheelhouse)]
        + [str(REPO)],
        "building the suite's wheel",
    )
    constraints = wheelhouse / "constraints.txt"
    constraints.write_text("\n".join(tested_pins(python_version)) + "\n")
    (suite,) = wheelhouse.glob("westtek-*.whl")
    run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheelhouse)),
            # wheels for the image's Python, whatever this machine's is
            *("--python-version", python_version, "--only-binary=:all:"),
            *("--constraint", str(constraints), f"{suite}[postgres]", "ipykernel"),
            *science_packages.split(),
        ],
        "collecting the images' wheels",
    )


def tested_pins(python_version: str) -> list[str]:
    """``name==version`` of every package in this environment that the image's Python can run.

    A release that needs a newer Python than Debian's (``Requires-Python``) is left unpinned
    and pip picks the newest that runs there.
    """
    pins = []
    for dist in importlib.metadata.distributions():
        name, requires_python = dist.metadata["Name"], dist.metadata["Requires-Python"]
        if name.lower() == "westtek" or dist.read_text("direct_url.json"):
            continue  # the suite itself, or something installed from a path or URL
        if requires_python and python_version not in SpecifierSet(requires_python):
            continue
        pins.append(f"{name}=={dist.version}")
    return sorted(pins)


def image_python_version(client: docker.DockerClient) -> str:
    """The base image's Python version (Debian's), for which the wheels are chosen."""
    output = client.containers.run(
        BASE_IMAGE,
        ["python3", "-c", "import platform; print(platform.python_version())"],
        network_mode="none",
        remove=True,
    )
    return bytes(output).decode().strip()


@contextmanager
def served(directory: Path) -> Iterator[str]:
    """Serve a directory on loopback for the builds' pip (``--find-links``); its URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    """A file server that keeps the build's output free of its request log."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


def build_image(
    client: docker.DockerClient,
    context: Path,
    name: str,
    buildargs: dict[str, str],
    no_cache: bool,
) -> Built:
    """Build one image from images/<name>/Dockerfile; the build's last lines if it fails."""
    reference = image_reference(name)
    started = time.monotonic()
    log: list[str] = []
    stream: Any = client.api.build(
        path=str(context),
        dockerfile=f"{name}/Dockerfile",
        tag=reference,
        buildargs={"BASE_IMAGE": BASE_IMAGE, **buildargs},
        network_mode="host",  # the build's pip and apt reach the registries as the host does
        rm=True,
        forcerm=True,
        nocache=no_cache,
        decode=True,
    )
    for chunk in stream:
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            tail = "".join(log[-30:])
            raise BuildError(f"building {reference} failed: {chunk['error'].strip()}\n{tail}")
    return describe(client, reference, time.monotonic() - started)


def describe(client: docker.DockerClient, reference: str, seconds: float) -> Built:
    """What the daemon says of an image just built."""
    image = client.images.get(reference)
    return Built(reference, str(image.id), int(image.attrs["Size"]), seconds)


def build_all(
    only: list[str] | None = None,
    science_packages: str = DEFAULT_SCIENCE_PACKAGES,
    chp_version: str = "5.3.0",
    no_cache: bool = False,
) -> list[Built]:
    """Build the base (if missing) and the images named (all by default); what was built."""
    client = docker_client()
    built: list[Built] = []
    base = build_base(client)
    if base is not None:
        built.append(base)
    args = {
        "notebook": {"SCIENCE_PACKAGES": science_packages},
        "hub": {"CHP_VERSION": chp_version},
    }
    with tempfile.TemporaryDirectory(prefix="westtek-images-") as scratch:
        context, wheelhouse = Path(scratch, "context"), Path(scratch, "wheels")
        context.mkdir()
        prepare_context(context, wheelhouse, science_packages, image_python_version(client))
        with served(wheelhouse) as wheels_url:
            for name in only or list(IMAGE_NAMES):
                image_args = {"WHEELS": wheels_url, **args[name]}
                built.append(build_image(client, context, name, image_args, no_cache))
    return built


def main(argv: list[str] | None = None) -> int:
    """`make images`: build, then one line per image built."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(IMAGE_NAMES), action="append")
    parser.add_argument("--science-packages", default=DEFAULT_SCIENCE_PACKAGES)
    parser.add_argument("--chp-version", default="5.3.0")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    options = parser.parse_args(argv)
    try:
        built = build_all(
            options.only, options.science_packages, options.chp_version, options.no_cache
        )
    except BuildError as error:
        print(f"make images: {error}", file=sys.stderr)
        return 1
    for image in built:
        print(
            f"{image.reference:28} {image.image_id[7:19]}  "
            f"{image.size_bytes / 1e6:7.0f} MB  built in {image.seconds:5.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
