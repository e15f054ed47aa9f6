"""Real notebooks for tests and benchmarks: the examples in the statsmodels sdist.

Wheels carry no example notebooks; the statsmodels 0.15.0 sdist has 81 under
``examples/notebooks/``. pip can only download an sdist after building its metadata, and
statsmodels builds with meson: a stand-in ``mesonpy`` backend that copies ``PKG-INFO`` is
enough for pip to keep the download. Run as ``python -m tests.example_notebooks DIR`` (the
Makefile does, before the tests, which never touch the network themselves).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

NOTEBOOK_SDIST = "statsmodels==0.15.0"
DEFAULT_CACHE = Path(__file__).parent / ".cache" / "example-notebooks"

# A stand-in for the ``mesonpy`` build backend: pip only needs metadata to keep the sdist.
MESONPY_SHIM = '''"""Stand-in for mesonpy: metadata from PKG-INFO, so pip can download an sdist."""

import os
from email.parser import Parser


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    with open("PKG-INFO", encoding="utf-8") as f:
        text = f.read()
    msg = Parser().parsestr(text, headersonly=True)
    name = msg["Name"].replace("-", "_")
    out = os.path.join(metadata_directory, f"{name}-{msg['Version']}.dist-info")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "METADATA"), "w", encoding="utf-8") as f:
        f.write(text)
    return os.path.basename(out)
'''


def download_sdist(cache: Path) -> Path:
    """The statsmodels sdist, downloaded into ``cache/sdists`` once."""
    name, version = NOTEBOOK_SDIST.split("==")
    sdist = cache / "sdists" / f"{name}-{version}.tar.gz"
    if sdist.exists():
        return sdist
    shim = cache / "shim"
    (shim / "mesonpy").mkdir(parents=True, exist_ok=True)
    (shim / "mesonpy" / "__init__.py").write_text(MESONPY_SHIM)
    sdist.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--quiet",
           "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "-d",
           str(sdist.parent), NOTEBOOK_SDIST]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(shim))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"sdist download failed:\n{out.stderr[-3000:]}")
    return sdist


def extract_notebooks(sdist: Path, dest: Path) -> int:
    """Write the sdist's example notebooks (and their data files) under ``dest``."""
    name_version = sdist.name.removesuffix(".tar.gz")
    prefix = f"{name_version}/examples/notebooks/"
    count = 0
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                target = dest / member.name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
                os.utime(target, (member.mtime, member.mtime))
                count += target.suffix == ".ipynb"
    return count


def example_notebooks(cache: Path = DEFAULT_CACHE) -> Path:
    """A directory of the real example notebooks (fetched on first use)."""
    dest = cache / "statsmodels"
    done = dest / ".complete"
    if not done.exists():
        count = extract_notebooks(download_sdist(cache), dest)
        done.write_text(f"{count}\n")
    return dest


if __name__ == "__main__":
    print(example_notebooks(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CACHE))
