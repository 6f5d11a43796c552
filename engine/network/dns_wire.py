"""The DNS wire format (RFC 1035 section 4), only as much as the embedded resolver needs.

Queries are parsed (one question, no compression in it: what every stub
resolver sends); answers are built for A records; anything else is relayed
to upstream resolvers as raw bytes, never re-encoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3

_HEADER = struct.Struct("!HHHHHH")
_FLAG_QR = 0x8000
_FLAG_AA = 0x0400
_FLAG_TC = 0x0200
_FLAG_RD = 0x0100
_FLAG_RA = 0x0080
_OPCODE_MASK = 0x7800


class MalformedMessage(ValueError):
    """Bytes that are not a DNS message we can answer."""


@dataclass(frozen=True)
class Question:
    id: int
    flags: int
    name: str  # lower case, no trailing dot
    qtype: int
    qclass: int
    raw_question: bytes  # the question section as received, echoed in the answer


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A name at `offset` (compression pointers followed); returns it and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):  # bounds pointer loops
        if offset >= len(data):
            raise MalformedMessage("name runs past the end")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise MalformedMessage("truncated pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), end if end is not None else offset + 1
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise MalformedMessage("too many labels or a pointer loop")


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if len(raw) > 63:
                raise MalformedMessage(f"label too long: {label!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def parse_question(data: bytes) -> Question:
    if len(data) < _HEADER.size:
        raise MalformedMessage("shorter than a header")
    ident, flags, qdcount, _, _, _ = _HEADER.unpack_from(data)
    if flags & _FLAG_QR or qdcount != 1:
        raise MalformedMessage("not a query with exactly one question")
    name, offset = _read_name(data, _HEADER.size)
    if offset + 4 > len(data):
        raise MalformedMessage("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    return Question(ident, flags, name.lower().rstrip("."), qtype, qclass, data[_HEADER.size : offset + 4])


def build_answer(question: Question, addresses: list[IPv4Address], rcode: int = RCODE_NOERROR, ttl: int = 600) -> bytes:
    """A response to `question`: A records for `addresses` (authoritative, recursion available)."""
    flags = _FLAG_QR | _FLAG_AA | _FLAG_RA | (question.flags & (_OPCODE_MASK | _FLAG_RD)) | rcode
    header = _HEADER.pack(question.id, flags, 1, len(addresses), 0, 0)
    records = b"".join(
        struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4) + address.packed for address in addresses
    )
    return header + question.raw_question + records


def error_response(data: bytes, rcode: int) -> bytes:
    """SERVFAIL/FORMERR for a query we cannot serve: its id and question echoed when readable."""
    try:
        return build_answer(parse_question(data), [], rcode)
    except MalformedMessage:
        ident = struct.unpack_from("!H", data)[0] if len(data) >= 2 else 0
        return _HEADER.pack(ident, _FLAG_QR | _FLAG_RA | rcode, 0, 0, 0, 0)


def build_query(name: str, qtype: int = TYPE_A, ident: int = 0x4242) -> bytes:
    return _HEADER.pack(ident, _FLAG_RD, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


@dataclass(frozen=True)
class Answer:
    id: int
    rcode: int
    truncated: bool
    addresses: list[IPv4Address]


def parse_answer(data: bytes) -> Answer:
    """The A records of a response (what a stub resolver takes from it)."""
    if len(data) < _HEADER.size:
        raise MalformedMessage("shorter than a header")
    ident, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    offset = _HEADER.size
    for _ in range(qdcount):
        offset = _read_name(data, offset)[1] + 4
    addresses = []
    for _ in range(ancount):
        offset = _read_name(data, offset)[1]
        rtype, _rclass, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if rtype == TYPE_A and length == 4:
            addresses.append(IPv4Address(data[offset : offset + 4]))
        offset += length
    return Answer(ident, flags & 0x000F, bool(flags & _FLAG_TC), addresses)
