import os
import socket
import stat
from pathlib import Path

import pytest

from westtek_core.capture import DEFAULT_IGNORES, FileEntry, WorkspaceIgnores, walk_tree


def write(root: Path, rel: str, text: str = "x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def paths(tree) -> list[str]:
    return [e.path for e in tree.entries]


def skipped(tree) -> dict[str, str]:
    return {s.path: s.reason for s in tree.skipped}


def test_entries_are_relative_sorted_and_carry_metadata(tmp_path):
    target = write(tmp_path, "data/b.csv", "1,2\n")
    target.chmod(0o640)
    write(tmp_path, "a.ipynb", "{}")
    (tmp_path / "empty").mkdir()

    tree, findings = walk_tree(tmp_path)

    assert paths(tree) == ["a.ipynb", "data", "data/b.csv", "empty"]
    assert findings == [] and tree.skipped == []
    assert tree.root == tmp_path
    entry = tree.entries[2]
    st = os.lstat(target)
    assert entry == FileEntry("data/b.csv", str(target), "file", 0o640, 4, st.st_mtime_ns)
    assert tree.entries[1].kind == "dir" and tree.entries[1].size == 0
    assert entry.to_json() == {
        "path": "data/b.csv",
        "kind": "file",
        "mode": 0o640,
        "size": 4,
        "mtime_ns": st.st_mtime_ns,
    }
    assert FileEntry.from_json(entry.to_json(), target) == entry


def test_default_ignores(tmp_path):
    for rel in (
        ".ipynb_checkpoints/a-checkpoint.ipynb",
        "pkg/__pycache__/m.cpython-311.pyc",
        "stray.pyc",
        ".git/HEAD",
        ".westtek-cache/blob",
        "pkg/m.py",
        ".venv/pyvenv.cfg",  # not ignored by name: see DEFAULT_IGNORES
    ):
        write(tmp_path, rel)
    tree, _ = walk_tree(tmp_path)
    assert paths(tree) == [".venv", ".venv/pyvenv.cfg", "pkg", "pkg/m.py"]
    assert "*.pyc" in DEFAULT_IGNORES


def test_a_working_jupyter_sessions_churn_is_not_captured(tmp_path):
    # Given a home directory as the workspace, with what merely using JupyterLab writes,
    churn = [
        ".cache/pip/selfcheck/abc.json",
        ".local/share/jupyter/runtime/kernel-1.json",
        ".local/share/jupyter/notebook_secret",
        ".local/share/jupyter/nbsignatures.db",
        ".jupyter/lab/workspaces/default-37a8.jupyterlab-workspace",
        ".ipython/profile_default/history.sqlite",
        ".ipython/profile_default/history.sqlite-journal",
        ".local/share/westtek/events.sqlite-wal",
        ".westtek/singleuser.log",
        ".bash_history",
    ]
    kept = [
        ".jupyter/lab/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings",
        ".ipython/profile_default/startup/00-setup.py",
        ".local/share/notes.txt",
        "analysis.ipynb",
        "sub/.cache-notes.txt",
    ]
    for rel in churn + kept:
        write(tmp_path, rel)
    # when it is walked, none of the churn is captured and everything else is;
    tree, _ = walk_tree(tmp_path)
    files = [e.path for e in tree.entries if e.kind == "file"]
    assert sorted(files) == sorted(kept)
    # and the root .westtekignore can still take a default back.
    write(tmp_path, ".westtekignore", "!.bash_history\n")
    tree, _ = walk_tree(tmp_path)
    assert ".bash_history" in paths(tree)


def test_workspace_ignores_answers_as_the_walk_does(tmp_path):
    write(tmp_path, "sub/.westtekignore", "*.log\n")
    files = ["sub/run.log", "sub/keep.txt", ".cache/pip/x", "top.log", ".jupyter/lab/workspaces/w"]
    for rel in files:
        write(tmp_path, rel)
    ignores = WorkspaceIgnores(tmp_path)
    walked = {e.path for e in walk_tree(tmp_path)[0].entries}
    for rel in files:
        assert ignores.ignored(str(tmp_path / rel)) == (rel not in walked), rel
    # a changed ignore file is read again
    write(tmp_path, "sub/.westtekignore", "*.txt\n")
    ignores.ignored(str(tmp_path / "sub" / ".westtekignore"))
    assert ignores.ignored(str(tmp_path / "sub" / "keep.txt"))


def test_westtekignore_root_negation_and_nested_files(tmp_path):
    write(tmp_path, ".westtekignore", "*.tmp\nbig/\n!.git/\n")
    write(tmp_path, ".git/HEAD")
    write(tmp_path, "keep.txt")
    write(tmp_path, "x.tmp")
    write(tmp_path, "big/huge.bin")
    write(tmp_path, "sub/.westtekignore", "*.log\n!important.tmp\n/local-only/\n")
    write(tmp_path, "sub/a.log")
    write(tmp_path, "sub/important.tmp")
    write(tmp_path, "sub/other.tmp")
    write(tmp_path, "sub/local-only/f")
    write(tmp_path, "sub/deeper/local-only/f")
    write(tmp_path, "other/a.log")

    tree, _ = walk_tree(tmp_path)

    assert paths(tree) == [
        ".git",
        ".git/HEAD",
        ".westtekignore",
        "keep.txt",
        "other",
        "other/a.log",
        "sub",
        "sub/.westtekignore",
        "sub/deeper",
        "sub/deeper/local-only",
        "sub/deeper/local-only/f",
        "sub/important.tmp",
    ]
    no_file, _ = walk_tree(tmp_path, ignore_file=None, default_ignores=())
    assert "x.tmp" in paths(no_file) and "sub/a.log" in paths(no_file)


def test_secret_files_are_excluded_and_reported(tmp_path):
    secrets = {
        ".env": "dotenv",
        ".env.local": "dotenv",
        "home/.aws/credentials": "aws-credentials",
        "home/.netrc": "netrc",
        "home/.pypirc": "pypirc",
        "home/.git-credentials": "git-credentials",
        "keys/id_rsa": "private-key",
        "keys/server.pem": "private-key",
        "keys/store.p12": "keystore",
        "home/.ssh": "ssh-directory",
    }
    write(tmp_path, ".env", "TOKEN=1")
    write(tmp_path, ".env.local", "TOKEN=1")
    write(tmp_path, ".env.example", "TOKEN=")
    write(tmp_path, "home/.aws/credentials", "[default]\naws_secret_access_key=x")
    write(tmp_path, "home/.aws/config", "[default]\nregion=eu-west-1")
    write(tmp_path, "home/.netrc", "machine x password y")
    write(tmp_path, "home/.pypirc", "[pypi]\npassword=y")
    write(tmp_path, "home/.git-credentials", "https://u:p@host")
    write(tmp_path, "home/.ssh/known_hosts", "host key")
    write(tmp_path, "keys/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    write(tmp_path, "keys/id_rsa.pub", "ssh-ed25519 AAAA")
    write(tmp_path, "keys/server.pem", "-----BEGIN RSA PRIVATE KEY-----\nMII\n")
    write(tmp_path, "keys/ca.pem", "-----BEGIN CERTIFICATE-----\nMII\n")
    write(tmp_path, "keys/store.p12", "bin")
    write(tmp_path, ".env-venv/.env/pyvenv.cfg", "home=/usr")  # a venv named .env is no secret

    tree, findings = walk_tree(tmp_path)

    assert {f.path: f.kind for f in findings} == secrets
    assert {f.action for f in findings} == {"excluded"}
    assert {f.area for f in findings} == {"workspace"}
    assert skipped(tree) == dict.fromkeys(secrets, "ignored-secret")
    kept = set(paths(tree))
    assert {".env.example", "home/.aws/config", "keys/id_rsa.pub", "keys/ca.pem"} <= kept
    assert ".env-venv/.env/pyvenv.cfg" in kept
    assert not kept & set(secrets)
    assert not any(p.startswith("home/.ssh/") for p in kept)

    everything, none = walk_tree(tmp_path, detect_secrets=False)
    assert none == [] and set(secrets) <= set(paths(everything))


def test_jupyter_config_with_a_token_in_the_workspace_is_excluded(tmp_path):
    write(tmp_path, "jupyter_server_config.py", "c.ServerApp.token = 'abc'\n")
    write(tmp_path, "cfg/jupyter_lab_config.py", "c.ServerApp.token = ''\n")
    tree, findings = walk_tree(tmp_path)
    assert [(f.path, f.kind) for f in findings] == [
        ("jupyter_server_config.py", "jupyter-config-token")
    ]
    assert "cfg/jupyter_lab_config.py" in paths(tree)


def test_symlinks_are_stored_not_followed(tmp_path):
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    write(outside, "secret-data.csv")
    write(root, "data/real.csv")
    (root / "inside-file").symlink_to("data/real.csv")
    (root / "inside-dir").symlink_to("data", target_is_directory=True)
    (root / "out-abs").symlink_to(outside)
    (root / "data" / "out-rel").symlink_to("../../outside/secret-data.csv")
    (root / "dangling").symlink_to("no/such/file")
    (root / "via-link").symlink_to("out-abs/..")  # lexically inside, resolves outside

    tree, _ = walk_tree(root)

    by_path = {e.path: e for e in tree.entries}
    assert by_path["inside-file"].kind == "symlink"
    assert by_path["inside-file"].link_target == "data/real.csv"
    assert by_path["inside-dir"].link_target == "data"
    assert not any(p.startswith("inside-dir/") or p.startswith("out-abs/") for p in by_path)
    assert by_path["dangling"].link_target == "no/such/file"
    assert by_path["out-abs"].to_json()["link_target"] == str(outside)
    warnings = {s.path: s for s in tree.skipped}
    assert set(warnings) == {"out-abs", "data/out-rel", "via-link"}
    assert all(s.reason == "symlink-outside-root" and s.stored for s in warnings.values())
    assert {"out-abs", "data/out-rel", "via-link"} <= set(by_path)


def test_unreadable_files_and_directories_are_reported(tmp_path, monkeypatch):
    secret = write(tmp_path, "private.csv")
    secret.chmod(0o000)
    write(tmp_path, "locked/inner.txt")
    write(tmp_path, "fine.txt")
    # Tests may run as root, who can read anything: deny through the OS calls instead.
    real_access, real_scandir = os.access, os.scandir

    def access(path, mode, **kwargs):
        return False if os.fspath(path) == str(secret) else real_access(path, mode, **kwargs)

    def scandir(path="."):
        if os.fspath(path) == str(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "scandir", scandir)

    tree, _ = walk_tree(tmp_path)

    assert skipped(tree) == {"private.csv": "unreadable", "locked": "unreadable"}
    assert paths(tree) == ["fine.txt", "locked"]


def test_sockets_fifos_and_bad_names_are_skipped(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(root / "kernel.sock"))
        os.mkfifo(root / "pipe")
        fd = os.open(os.fsencode(root) + b"/bad\xffname.txt", os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
        write(root, "ok.txt")
        tree, _ = walk_tree(root)
    finally:
        sock.close()
    assert paths(tree) == ["ok.txt"]
    assert skipped(tree) == {
        "kernel.sock": "socket",
        "pipe": "fifo",
        "bad\\xffname.txt": "undecodable-name",
    }
    assert stat.S_ISSOCK(os.lstat(root / "kernel.sock").st_mode)


def test_excluded_directories_are_left_out(tmp_path):
    write(tmp_path, "env/bin/python")
    write(tmp_path, "nb.ipynb")
    tree, _ = walk_tree(tmp_path, exclude=[tmp_path / "env"])
    assert paths(tree) == ["nb.ipynb"]


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(NotADirectoryError):
        walk_tree(tmp_path / "missing")


def test_fast_name_rules_agree_with_gitignore_semantics():
    import pathspec

    from westtek_core.capture.walk import _Rules

    patterns = [*DEFAULT_IGNORES, "*.tmp", "data?/", "[Bb]uild/", "exact.txt"]
    fast = _Rules(patterns)
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    names = ["a.pyc", "x.tmp", "data1", "data12", "build", "Build", "exact.txt", "exact.txtx"]
    names += [".git", "__pycache__", ".ipynb_checkpoints", "keep.py", ".westtek-cache"]
    for name in names:
        for is_dir in (False, True):
            expected = spec.match_file(f"sub/{name}/" if is_dir else f"sub/{name}")
            assert bool(fast.decide(f"sub/{name}", name, is_dir)) == expected, (name, is_dir)
