"""`docker push`, `docker login`, `docker search` and distribution inspect through berthd,
against real local registries (plain and basic-auth); skopeo reads back what was pushed."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon, start_berthd, stop
from tests.api.test_containers import docker_cli
from tests.fixtures.registry import LocalRegistry

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=120)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(self._path))


def raw_request(sock: Path, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = _UnixHTTPConnection(sock)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def skopeo_inspect(registry: LocalRegistry, ref: str, *, raw: bool = False) -> dict[str, object]:
    argv = ["skopeo", "inspect", "--tls-verify=false"]
    if registry.auth is not None:
        argv.append(f"--creds={registry.auth.username}:{registry.auth.password}")
    if raw:
        argv.append("--raw")
    out = subprocess.run([*argv, f"docker://{registry.host}/{ref}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    parsed: dict[str, object] = json.loads(out.stdout)
    return parsed


def start_registry_berthd(root: Path, run_tag: str, config: dict[str, object]) -> RunningDaemon:
    """A berthd for `root` that reaches the test registries on the host's loopback: in the
    host's netns (no bridge, no iptables), with `config` as its daemon.json."""
    (root / "daemon.json").write_text(json.dumps(config))
    return start_berthd(root, "--cgroup-parent", run_tag, "--config-file", str(root / "daemon.json"), host_netns=True)


@contextlib.contextmanager
def registry_berthd(run_tag: str, mirror: LocalRegistry) -> Iterator[RunningDaemon]:
    """start_registry_berthd in a run-tagged temp dir, `mirror` standing in for docker.io."""
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-d-") as tmp:
        running = start_registry_berthd(Path(tmp), run_tag, {"registry-mirrors": [mirror.url]})
        try:
            yield running
        finally:
            stop(running)


@contextlib.contextmanager
def berthd_with_busybox(run_tag: str, seeded_registry: LocalRegistry) -> Iterator[RunningDaemon]:
    with registry_berthd(run_tag, seeded_registry) as running:
        assert docker_cli(running, "pull", "busybox").returncode == 0
        yield running


@pytest.fixture(scope="module")
def daemon(seeded_registry: LocalRegistry, run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_busybox(run_tag, seeded_registry) as running:
        yield running


def test_docker_push_to_a_plain_registry(daemon: RunningDaemon, make_registry: object) -> None:
    target = make_registry()  # type: ignore[operator]
    name = f"{target.host}/berthtest/busybox:v1"
    assert docker_cli(daemon, "tag", "busybox", name).returncode == 0
    out = docker_cli(daemon, "push", name)
    assert out.returncode == 0, out.stderr
    assert f"The push refers to repository [{target.host}/berthtest/busybox]" in out.stdout
    assert "Pushed" in out.stdout
    pushed = skopeo_inspect(target, "berthtest/busybox:v1")
    assert f"v1: digest: {pushed['Digest']} size: " in out.stdout
    image = json.loads(docker_cli(daemon, "image", "inspect", name).stdout)[0]
    assert f"{target.host}/berthtest/busybox@{pushed['Digest']}" in image["RepoDigests"]
    # The registry holds the very config Berth has: same image ID on both sides.
    raw = skopeo_inspect(target, "berthtest/busybox:v1", raw=True)
    assert raw["config"]["digest"] == image["Id"]  # type: ignore[index]
    # Pushing again uploads nothing.
    again = docker_cli(daemon, "push", name)
    assert again.returncode == 0, again.stderr
    assert "Layer already exists" in again.stdout and "Pushed" not in again.stdout


def test_push_all_tags_and_cross_repo_mount(daemon: RunningDaemon, make_registry: object) -> None:
    target = make_registry()  # type: ignore[operator]
    first = f"{target.host}/berthtest/first:a"
    docker_cli(daemon, "tag", "busybox", first)
    assert docker_cli(daemon, "push", first).returncode == 0
    # The image's RepoDigests now name berthtest/first on this registry: a push to
    # another repository mounts the layer from there instead of uploading it.
    for tag in ("x", "y"):
        docker_cli(daemon, "tag", "busybox", f"{target.host}/berthtest/second:{tag}")
    out = docker_cli(daemon, "push", "--all-tags", f"{target.host}/berthtest/second")
    assert out.returncode == 0, out.stderr
    assert "Mounted from berthtest/first" in out.stdout
    assert "x: digest: sha256:" in out.stdout and "y: digest: sha256:" in out.stdout
    tags = subprocess.run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{target.host}/berthtest/second"],
                          capture_output=True, text=True, timeout=60)
    assert sorted(json.loads(tags.stdout)["Tags"]) == ["x", "y"]


def test_push_of_a_loaded_image_gzips_its_layers(daemon: RunningDaemon, make_registry: object) -> None:
    from tests.cli.conftest import seed_archive

    target = make_registry()  # type: ignore[operator]
    loaded = docker_cli(daemon, "load", "-i", str(seed_archive("hello-world")))
    assert loaded.returncode == 0, loaded.stderr
    name = f"{target.host}/berthtest/loaded:v1"
    docker_cli(daemon, "tag", "hello-world", name)
    out = docker_cli(daemon, "push", name)
    assert out.returncode == 0, out.stderr
    raw = skopeo_inspect(target, "berthtest/loaded:v1", raw=True)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [layer["mediaType"] for layer in raw["layers"]] == (  # type: ignore[attr-defined]
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"] * len(raw["layers"]))  # type: ignore[arg-type]
    image = json.loads(docker_cli(daemon, "image", "inspect", name).stdout)[0]
    assert raw["config"]["digest"] == image["Id"]  # type: ignore[index]
    # gzip with mtime 0: the same layer digests again, so a second push uploads nothing.
    again = docker_cli(daemon, "push", name)
    assert "Layer already exists" in again.stdout and "Pushed" not in again.stdout
    # The gzipped copies were for the push only: none is left in the content store.
    blobs = daemon.root / "data" / "content" / "blobs" / "sha256"
    assert (blobs / image["Id"].split(":")[1]).is_file()  # the image's own blobs are there
    assert not [layer for layer in raw["layers"] if (blobs / layer["digest"].split(":")[1]).exists()]  # type: ignore[attr-defined]


def test_push_of_an_unknown_image_is_404(daemon: RunningDaemon) -> None:
    status, body = raw_request(daemon.socket, "POST", "/v1.51/images/localhost:1/nope/push?tag=v1")
    assert status == 404
    assert json.loads(body)["message"] == "An image does not exist locally with the tag: localhost:1/nope"
    out = docker_cli(daemon, "push", "localhost:1/nope:v1")
    assert out.returncode == 1
    assert "An image does not exist locally with the tag: localhost:1/nope" in out.stderr


def test_malformed_registry_auth_header_is_400(daemon: RunningDaemon) -> None:
    status, body = raw_request(daemon.socket, "POST", "/v1.51/images/busybox/push?tag=latest",
                               headers={"X-Registry-Auth": "%%%not-base64"})
    assert status == 400
    assert "invalid X-Registry-Auth header" in json.loads(body)["message"]


def test_login_and_push_with_basic_auth(daemon: RunningDaemon, registry_basic_auth: LocalRegistry) -> None:
    host = registry_basic_auth.host
    assert registry_basic_auth.auth is not None
    wrong = docker_cli(daemon, "login", "-u", registry_basic_auth.auth.username, "--password-stdin", host,
                       input="wrong\n")
    assert wrong.returncode == 1
    assert "401 Unauthorized" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    name = f"{host}/berthtest/private:v1"
    docker_cli(daemon, "tag", "busybox", name)
    denied = docker_cli(daemon, "push", name)
    assert denied.returncode == 1
    assert "authentication required" in denied.stderr or "unauthorized" in denied.stderr.lower()
    ok = docker_cli(daemon, "login", "-u", registry_basic_auth.auth.username, "--password-stdin", host,
                    input=registry_basic_auth.auth.password + "\n")
    assert ok.returncode == 0, ok.stderr
    assert "Login Succeeded" in ok.stdout
    pushed = docker_cli(daemon, "push", name)
    assert pushed.returncode == 0, pushed.stderr
    assert skopeo_inspect(registry_basic_auth, "berthtest/private:v1")["Digest"]
    docker_cli(daemon, "logout", host)


def test_auth_endpoint_answers_like_dockerd(daemon: RunningDaemon, registry_basic_auth: LocalRegistry) -> None:
    assert registry_basic_auth.auth is not None
    good = json.dumps({"username": registry_basic_auth.auth.username, "password": registry_basic_auth.auth.password,
                       "serveraddress": registry_basic_auth.host})
    status, body = raw_request(daemon.socket, "POST", "/v1.51/auth", body=good.encode(),
                               headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["Status"] == "Login Succeeded"
    bad = json.dumps({"username": "nobody", "password": "x", "serveraddress": registry_basic_auth.host})
    status, body = raw_request(daemon.socket, "POST", "/v1.51/auth", body=bad.encode(),
                               headers={"Content-Type": "application/json"})
    assert status == 401
    assert "401 Unauthorized" in json.loads(body)["message"]


def test_search_a_local_registry_and_an_offline_hub(daemon: RunningDaemon, seeded_registry: LocalRegistry) -> None:
    out = docker_cli(daemon, "search", "--format", "{{.Name}}", f"{seeded_registry.host}/busy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"{seeded_registry.host}/library/busybox"]
    # Docker Hub is unreachable here: an empty answer, promptly (no hang).
    status, body = raw_request(daemon.socket, "GET", "/v1.51/images/search?term=busybox")
    assert status == 200 and json.loads(body) == []


def test_distribution_inspect(daemon: RunningDaemon, seeded_registry: LocalRegistry) -> None:
    auth = base64.urlsafe_b64encode(b"{}").decode()
    status, body = raw_request(daemon.socket, "GET",
                               f"/v1.51/distribution/{seeded_registry.host}/library/busybox:latest/json",
                               headers={"X-Registry-Auth": auth})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["Descriptor"]["digest"] == skopeo_inspect(seeded_registry, "library/busybox:latest")["Digest"]
    assert {"architecture": "amd64", "os": "linux"} in answer["Platforms"]


def test_docker_py_login_push_and_pull(daemon: RunningDaemon, registry_basic_auth: LocalRegistry) -> None:
    import docker

    auth = registry_basic_auth.auth
    assert auth is not None
    client = docker.DockerClient(base_url=daemon.docker_host)
    try:
        repo = f"{registry_basic_auth.host}/berthtest/docker-py"
        client.images.get("busybox").tag(repo, "v3")
        with pytest.raises(docker.errors.APIError) as refused:
            client.login(auth.username, "wrong", registry=registry_basic_auth.host, reauth=True)
        assert refused.value.status_code == 401
        assert client.login(auth.username, auth.password, registry=registry_basic_auth.host,
                            reauth=True)["Status"] == "Login Succeeded"
        credentials = {"username": auth.username, "password": auth.password}
        lines = list(client.images.push(repo, tag="v3", auth_config=credentials, stream=True, decode=True))
        assert lines[0] == {"status": f"The push refers to repository [{repo}]"}
        assert lines[-1]["aux"]["Tag"] == "v3"
        assert lines[-1]["aux"]["Digest"] == skopeo_inspect(registry_basic_auth, "berthtest/docker-py:v3")["Digest"]
        client.images.remove(f"{repo}:v3")
        pulled = client.images.pull(repo, tag="v3", auth_config=credentials)
        assert pulled.id == client.images.get("busybox").id
    finally:
        client.close()
