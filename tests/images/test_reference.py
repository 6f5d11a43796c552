"""Reference parsing follows distribution/reference's grammar, normalization and wording."""

from __future__ import annotations

import pytest

from engine.images import reference
from engine.images.errors import InvalidReference

D64 = "sha256:" + "ab" * 32

NORMALIZED = [
    # text, full normalized string, familiar string
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("library/a/b", "docker.io/library/a/b", "library/a/b"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("example.com/x", "example.com/x", "example.com/x"),
    ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
    ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000/x"),
    ("Registry/ns/app", "Registry/ns/app", "Registry/ns/app"),
    (f"busybox@{D64}", f"docker.io/library/busybox@{D64}", f"busybox@{D64}"),
    (f"busybox:1@{D64}", f"docker.io/library/busybox:1@{D64}", f"busybox:1@{D64}"),
    ("ab__c/d-e--f.g_h", "docker.io/ab__c/d-e--f.g_h", "ab__c/d-e--f.g_h"),
]


@pytest.mark.parametrize(("text", "full", "familiar"), NORMALIZED)
def test_normalizes_like_docker(text: str, full: str, familiar: str) -> None:
    ref = reference.parse_normalized_named(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize(
    ("text", "domain", "path"),
    [
        ("busybox", "docker.io", "library/busybox"),
        ("localhost/a", "localhost", "a"),
        ("host.name/a", "host.name", "a"),
        ("host:1234/a", "host:1234", "a"),
        ("ns/a", "docker.io", "ns/a"),
        ("Upper/a", "Upper", "a"),
    ],
)
def test_domain_detection(text: str, domain: str, path: str) -> None:
    ref = reference.parse_normalized_named(text)
    assert (ref.domain, ref.path) == (domain, path)


def test_single_component_that_looks_like_a_host_is_a_hub_name_with_tag() -> None:
    ref = reference.parse_normalized_named("localhost:5000")
    assert (ref.domain, ref.path, ref.tag) == ("docker.io", "library/localhost", "5000")


ERRORS = [
    ("", "invalid reference format"),
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
    ("user/App:1", "invalid reference format: repository name (user/App) must be lowercase"),
    ("busybox:", "invalid reference format"),
    (":tag", "invalid reference format"),
    ("busybox:-bad", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a/b/", "invalid reference format"),
    ("-a", "invalid reference format"),
    ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("busybox@sha256:" + "a" * 40, "invalid checksum digest length"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("busybox:" + "t" * 129, "invalid reference format"),
    ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_rejects_with_dockers_wording(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as err:
        reference.parse_normalized_named(text)
    assert str(err.value) == message


def test_unnormalized_parse_reports_uppercase_and_empty() -> None:
    with pytest.raises(InvalidReference, match=r"^repository name must have at least one component$"):
        reference.parse("")
    with pytest.raises(InvalidReference, match=r"^repository name must be lowercase$"):
        reference.parse("example.com/Foo")


def test_docker_ref_defaults_to_latest_but_not_with_digest() -> None:
    assert str(reference.parse_docker_ref("busybox")) == "docker.io/library/busybox:latest"
    assert reference.parse_docker_ref(f"busybox@{D64}").tag is None


def test_parse_any_recognizes_ids_and_digests() -> None:
    assert reference.parse_any("ab" * 32) == D64
    assert reference.parse_any(D64) == D64
    assert reference.parse_any("busybox:1") == reference.parse_normalized_named("busybox:1")
    # A short sha256: prefix is a valid name:tag, as in Docker; the image store
    # falls back to an id-prefix search for it.
    assert isinstance(reference.parse_any("sha256:abc"), reference.Reference)


def test_with_tag_validates() -> None:
    ref = reference.parse_normalized_named("busybox")
    assert ref.with_tag("v1").familiar() == "busybox:v1"
    with pytest.raises(InvalidReference, match="invalid tag format"):
        ref.with_tag(".bad")
