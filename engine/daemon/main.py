"""`berthd`: the engine daemon's entry point."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from engine.api import archive, build, containers, events, execs, images, networks, system, volumes
from engine.api.router import API_VERSION, Router
from engine.api.server import APIServer, ListenerError, TLSFiles, check_tcp_safety, parse_listen_address
from engine.daemon.config import ConfigError, DaemonConfig, apply_file, load_config, read_config_file
from engine.daemon.daemon import Daemon
from engine.version import BERTH_VERSION

log = logging.getLogger("berthd")


def _tls(config: DaemonConfig) -> TLSFiles | None:
    if not (config.tlsverify or config.tlscert):
        return None
    missing = [n for n in ("tlscacert", "tlscert", "tlskey") if not getattr(config, n)]
    if missing:
        raise ConfigError("TLS needs " + ", ".join(f"--{m}" for m in missing))
    assert config.tlscacert and config.tlscert and config.tlskey
    return TLSFiles(config.tlscacert, config.tlscert, config.tlskey, verify=config.tlsverify)


def _write_pidfile(path: Path) -> None:
    if path.exists():
        try:
            other = int(path.read_text().strip())
            os.kill(other, 0)
        except (ValueError, ProcessLookupError):
            pass  # stale: the daemon that wrote it is gone
        else:
            raise ConfigError(f"pid file {path} names a running process ({other}); is berthd already running?")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


async def serve(config: DaemonConfig) -> None:
    # Listen addresses are checked before anything is touched: a refused -H leaves no state,
    # no zygote and no network set-up behind.
    tls = _tls(config)
    addresses = [parse_listen_address(spec, tls=tls is not None) for spec in config.listen_hosts]
    for address in addresses:
        check_tcp_safety(address, tls)
    daemon = Daemon(config)
    router = Router()
    system.register(router, daemon)
    events.register(router, daemon.events)
    images.register(router, daemon.images, daemon.events.publish, daemon.registry_config)
    containers.register(router, daemon.containers)
    archive.register(router, daemon.containers)
    execs.register(router, daemon.execs)
    volumes.register(router, daemon.volumes, daemon.events.publish)
    build.register(router, daemon.builds, daemon.containers)
    networks.register(router, daemon.networks, daemon.containers)
    await daemon.restore()
    server = APIServer(router, socket_group=config.group)
    try:
        # Unix sockets last: their appearance is how clients (make run, tests) see that berthd is ready.
        for address in sorted(addresses, key=lambda a: a.scheme == "unix"):
            await server.listen(address, tls if address.scheme == "tcp" else None)
    except BaseException:
        await server.close()
        raise

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(daemon))
    log.info("berthd %s ready (data root %s)", BERTH_VERSION, config.data_root)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.close()
        if not config.live_restore:
            await daemon.containers.stop_all_for_shutdown()
        # Containers keep running under their shims; the next berthd reconnects to them
        # (their veths and rules stay; proxies and DNS servers stop until then).
        await daemon.networks.close()
        daemon.close()


def _reload(daemon: Daemon) -> None:
    # SIGHUP re-reads daemon.json for the options that can change live (dockerd's reload set).
    config = daemon.config
    if config.config_file is None:
        log.info("SIGHUP: no --config-file to reload")
        return
    try:
        raw = read_config_file(config.config_file)
    except ConfigError as exc:
        log.error("SIGHUP: keeping the old configuration: %s", exc)
        return
    from engine.containers.runtimes import RuntimeConfigError, Runtimes

    try:  # runtimes and default-runtime, like dockerd: containers created from now on choose among them
        runtimes = Runtimes.from_config(str(raw.get("default-runtime") or config.default_runtime),
                                        raw.get("runtimes") or {})
    except RuntimeConfigError as exc:
        log.error("SIGHUP: keeping the old configuration: %s", exc)
        return
    live = {k: v for k, v in raw.items() if k in ("registry-mirrors", "insecure-registries", "debug", "log-opts",
                                                  "default-runtime", "runtimes")}
    apply_file(config, live)
    config.runtimes = dict(raw.get("runtimes") or {})
    daemon.containers.runtimes = runtimes
    logging.getLogger().setLevel(logging.DEBUG if config.debug else logging.INFO)
    daemon.containers.log_opts = dict(config.log_opts)  # containers created from now on (the service's copy)
    log.info("SIGHUP: reloaded %s", ", ".join(sorted(live)) or "nothing")
    # dockerd announces a reload with the new values as attributes; `docker events` shows it.
    daemon.events.publish(
        "daemon",
        "reload",
        daemon.engine_id(),
        {
            "name": os.uname().nodename,
            "registry-mirrors": json.dumps(config.registry_mirrors),
            "insecure-registries": json.dumps(config.insecure_registries),
            "debug": str(config.debug).lower(),
            "default-runtime": runtimes.default,
            "runtimes": ", ".join(runtimes.names()),
        },
    )


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = load_config(argv)
    except ConfigError as exc:
        print(f"berthd: {exc}", file=sys.stderr)
        return 1
    if args.version:
        print(f"Berth version {BERTH_VERSION}, API {API_VERSION}")
        return 0
    logging.basicConfig(
        level=logging.DEBUG if config.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if config.pidfile:
            _write_pidfile(config.pidfile)
        asyncio.run(serve(config))
    except (ConfigError, ListenerError, OSError) as exc:
        print(f"berthd: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # start-up failed (e.g. the data root is in use): one line, logged in full
        log.exception("berthd failed to start")
        print(f"berthd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if config.pidfile and config.pidfile.exists() and config.pidfile.read_text().strip() == str(os.getpid()):
            config.pidfile.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
