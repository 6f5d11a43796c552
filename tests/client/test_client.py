"""engine.client (sync and async) against a real berthd."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import AsyncClient, Client, EngineUnreachable, NotFound, parse_host
from engine.client.errors import BadParameter
from engine.client.protocol import JSONLinesDecoder, encode_query, negotiate
from engine.stdcopy import STDERR, STDOUT, FrameDecoder, encode_frame
from tests.api.conftest import RunningDaemon, running_berthd


@pytest.fixture
def daemon(run_tag: str) -> Iterator[RunningDaemon]:
    with running_berthd(run_tag, config={"debug": False}) as running:
        yield running


def wait_listeners(client: Client, count: int) -> None:
    for _ in range(400):
        if client.get("/info")["NEventsListener"] == count:
            return
        time.sleep(0.025)
    raise AssertionError(f"engine never had {count} events listener(s)")


def test_sync_client_negotiates_and_reads_json(daemon: RunningDaemon) -> None:
    client = Client(parse_host(daemon.docker_host))
    assert client.version == "1.51"
    assert client.get("/version")["Platform"]["Name"] == "Berth Engine"


def test_sync_client_raises_docker_errors(daemon: RunningDaemon) -> None:
    client = Client(parse_host(daemon.docker_host))
    with pytest.raises(NotFound) as exc:
        client.get("/no/such/thing")
    assert str(exc.value) == "Error response from daemon: page not found"
    with pytest.raises(BadParameter):
        client.get("/events", {"filters": {"bogus": ["x"]}})


def test_sync_stream_yields_events_as_they_happen(daemon: RunningDaemon) -> None:
    client = Client(parse_host(daemon.docker_host))
    stream = client.stream("GET", "/events", {"filters": {"type": ["daemon"]}})
    try:
        wait_listeners(client, 1)
        daemon.proc.send_signal(signal.SIGHUP)
        event = next(stream.json_lines())
        assert (event["Type"], event["Action"]) == ("daemon", "reload")
    finally:
        stream.close()


def test_async_client_streams_events(daemon: RunningDaemon) -> None:
    async def scenario() -> dict:
        client = AsyncClient(parse_host(daemon.docker_host))
        assert await client.version() == "1.51"
        stream = await client.stream("GET", "/events", {"filters": {"event": ["reload"]}})
        try:
            for _ in range(400):
                if (await client.get("/info"))["NEventsListener"] == 1:
                    break
                await asyncio.sleep(0.025)
            daemon.proc.send_signal(signal.SIGHUP)
            async for event in stream.json_lines():
                return event
        finally:
            await stream.close()
        raise AssertionError("stream ended without an event")

    event = asyncio.run(scenario())
    assert event["Action"] == "reload"


def test_unreachable_engine_is_one_readable_error(tmp_path: Path) -> None:
    client = Client(parse_host(f"unix://{tmp_path}/absent.sock"))
    with pytest.raises(EngineUnreachable) as exc:
        client.get("/version")
    assert f"Cannot connect to the Berth daemon at unix://{tmp_path}/absent.sock; is it running? " in str(exc.value)

    async def attempt() -> None:
        await AsyncClient(parse_host(f"unix://{tmp_path}/absent.sock")).ping()

    with pytest.raises(EngineUnreachable):
        asyncio.run(attempt())


def test_frame_decoder_handles_split_frames() -> None:
    wire = encode_frame(STDOUT, b"hello\n") + encode_frame(STDERR, b"oops\n") + encode_frame(STDOUT, b"")
    decoder = FrameDecoder()
    frames = []
    for i in range(len(wire)):  # one byte at a time: the worst case of a slow socket
        frames += decoder.feed(wire[i:i + 1])
    assert frames == [(STDOUT, b"hello\n"), (STDERR, b"oops\n"), (STDOUT, b"")]
    assert decoder.pending == 0


def test_json_lines_decoder_and_query_encoding() -> None:
    decoder = JSONLinesDecoder()
    assert decoder.feed(b'{"a":1}\n{"b"') == [{"a": 1}]
    assert decoder.feed(b":2}\n") == [{"b": 2}]
    assert decoder.close() == []
    assert encode_query({"all": True, "limit": 3, "filters": {"label": ["x=y"]}, "skip": None}) == (
        "all=1&limit=3&filters=%7B%22label%22%3A%5B%22x%3Dy%22%5D%7D"
    )
    assert negotiate("1.41") == "1.41"
    assert negotiate("1.99") == "1.51"
