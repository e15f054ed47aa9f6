"""Every byte a snapshot store keeps, readable: for tests that look for what must not be there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from westtek_core.store import Repository
from westtek_core.store.repository import canonical_json


def stored_bytes(store: str, cache_dir: Path) -> Iterator[tuple[str, bytes]]:
    """``(where, bytes)`` of every chunk the index knows (committed or not), decompressed
    and decrypted through the Repository API, every manifest, and every raw store file."""
    with Repository.open(store, create=False, cache_dir=cache_dir) as repo:
        chunks = [e.blob_id.hex() for _, entries in repo._index.iter_packs() for e in entries]
        assert len(chunks) > 10, "the store holds nearly nothing: was the snapshot taken?"
        for chunk in chunks:
            yield f"chunk {chunk[:12]}", repo.read_chunk(chunk)
        for sid in repo.list_manifests():
            yield f"manifest {sid[:12]}", canonical_json(repo.load_manifest(sid))
    for path in Path(store).rglob("*"):
        if path.is_file():
            yield str(path), path.read_bytes()


def store_snapshot(
    store: Path, environment_id: str, files: dict[str, bytes], key_file: Path | None = None
) -> str:
    """A small real snapshot (workspace files only) in the store at ``store``; its id.

    ``key_file``: an encrypted store, with that key (made when missing).
    """
    repo = Repository.open(
        str(store), cache_dir=store.parent / "cache", key_file=key_file, encrypt=bool(key_file)
    )
    try:
        with repo.writer() as writer:
            entries = [
                {"path": path, "kind": "file", "size": len(data),
                 "content": list(writer.add_bytes(data).chunks)}
                for path, data in sorted(files.items())
            ]  # fmt: skip
        manifest = {"environment_id": environment_id, "workspace": {"files": entries}}
        return repo.save_manifest(manifest)
    finally:
        repo.close()
