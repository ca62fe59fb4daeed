"""The Dockerfile agrees with the package and the Deployment (no Docker engine here: static)."""

from __future__ import annotations

import fnmatch
import json
import tomllib

from nats_tower_operator.cli import build_parser

from .manifests import KUSTOMIZE_DIR, REPO, kustomize, one, operator_container


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    pairs = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    start = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[start:]


def _ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (REPO / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_image_runs_the_operator_entry_point_as_the_deployments_non_root_user() -> None:
    final = dict(_final_stage())
    assert final["FROM"] == "python:3.11-slim"
    entrypoint = json.loads(final["ENTRYPOINT"])
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert entrypoint[0] in scripts and entrypoint[1:] == ["run"]
    assert build_parser().parse_args(entrypoint[1:]).command == "run"

    uid, _, gid = final["USER"].partition(":")
    docs = kustomize(KUSTOMIZE_DIR)
    pod_security = one(docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (int(uid), int(gid)) == (pod_security["runAsUser"], pod_security["runAsGroup"]) != (0, 0)
    port = operator_container(docs)["ports"][0]["containerPort"]
    assert final["EXPOSE"] == str(port)
    assert "PYTHONDONTWRITEBYTECODE=1" in final["ENV"]


def test_build_context_holds_what_the_package_build_needs_and_nothing_local() -> None:
    copied = []
    for keyword, args in _instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            copied.extend(args.split()[:-1])
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"], "src"}
    assert set(copied) == needed
    for path in copied:
        assert (REPO / path).exists(), path
        assert not _ignored(path), f".dockerignore drops {path}, which the Dockerfile copies"
    for local in (".venv", ".git", "tests", ".sandbox", "bench", "src/x/__pycache__"):
        assert _ignored(local), f"{local} would be sent to the Docker daemon"
    install = [args for keyword, args in _instructions() if keyword == "RUN" and "pip" in args]
    assert any("install --no-cache-dir ." in args for args in install), install
