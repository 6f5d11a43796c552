"""The test CA issues server and client certificates that real TLS stacks accept."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.fixtures.tls import TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("tls-ca"))


def _serve_once(server_context: ssl.SSLContext, listener: socket.socket, outcome: list[str]) -> None:
    conn, _ = listener.accept()
    try:
        with server_context.wrap_socket(conn, server_side=True) as tls:
            der = tls.getpeercert(binary_form=True)
            subject = x509.load_der_x509_certificate(der).subject if der else x509.Name([])
            names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            outcome.append(str(names[0].value) if names else "anonymous")
            tls.sendall(b"ok")
    except (ssl.SSLError, OSError) as exc:
        outcome.append(f"rejected: {exc}")


def _handshake(ca: TestCA, client_cert: tuple[str, str] | None) -> tuple[bytes | None, list[str]]:
    """One mutual-TLS exchange on 127.0.0.1; returns what the client read and what the server saw."""
    server_pair = ca.issue_server("mtls-server")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert_path))
    server_context.load_cert_chain(server_pair.cert_path, server_pair.key_path)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    if client_cert:
        client_context.load_cert_chain(*client_cert)
    outcome: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=_serve_once, args=(server_context, listener, outcome))
        server.start()
        received: bytes | None = None
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=30) as raw,
                client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                received = tls.recv(2)
        except (ssl.SSLError, OSError):
            received = None
        server.join(timeout=30)
    return received, outcome


def test_ca_certificate_is_a_ca(ca):
    cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_certificate_covers_loopback_names(ca):
    pair = ca.issue_server("names")
    cert = x509.load_pem_x509_certificate(pair.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert oct(pair.key_path.stat().st_mode & 0o777) == "0o600"


def test_client_certificate_passes_mutual_tls(ca):
    client = ca.issue_client("berth-client")
    received, outcome = _handshake(ca, (str(client.cert_path), str(client.key_path)))
    assert received == b"ok"
    assert outcome == ["berth-client"]


def test_mutual_tls_rejects_a_client_without_certificate(ca):
    received, outcome = _handshake(ca, None)
    assert received in (None, b"")
    assert outcome and outcome[0].startswith("rejected")


def test_mutual_tls_rejects_a_certificate_from_another_ca(ca, tmp_path):
    stranger = TestCA(tmp_path / "other-ca").issue_client("stranger")
    received, outcome = _handshake(ca, (str(stranger.cert_path), str(stranger.key_path)))
    assert received in (None, b"")
    assert outcome and outcome[0].startswith("rejected")
