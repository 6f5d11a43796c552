"""`ssh://[user@]host[:port]` engines: the HTTP connection rides an SSH exec channel, as with the docker CLI.

One SSH connection per engine address and process (kept in `_SESSIONS`; one
more whenever sshd refuses another channel on those, its MaxSessions); every
HTTP connection the clients open is a new exec channel on it running
`berth system dial-stdio` on the remote (or `docker system dial-stdio` where
only docker is installed), whose stdin/stdout carry the bytes.  The channel is
handed to the callers as one end of a socketpair fed by two pump threads, so
the sync client's select loop, `shutdown(SHUT_WR)` half-close and asyncio's
`open_connection(sock=...)` all work unchanged.

Authentication follows ssh's own rules where paramiko can: ~/.ssh/config
(HostName, User, Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile,
StrictHostKeyChecking, ProxyCommand, ProxyJump), the agent, ~/.ssh/id_* keys.  A host key
not in known_hosts is refused unless the config says `StrictHostKeyChecking
no` (accepted, not saved) or `accept-new` (saved, as ssh does).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from engine.client.errors import ClientError, EngineUnreachable

if TYPE_CHECKING:
    import paramiko

    from engine.client.hosts import EngineAddress

PUMP_CHUNK = 64 * 1024
CONNECT_TIMEOUT = 30.0  # the docker CLI's `ssh -o ConnectTimeout=30`
# What each channel runs on the remote: berth's dial-stdio where berth is installed, else docker's.  Wrapped in
# `sh -c '...'` so any login shell (bash, zsh, fish) passes it on alike; no probe round trip before it.
DIAL = ("sh -c 'if command -v berth >/dev/null 2>&1; then exec berth system dial-stdio; "
        "else exec docker system dial-stdio; fi'")
NOT_FOUND = 127  # the shell's status when `docker` is not there either


class SSHError(ClientError):
    """The SSH leg failed: authentication, host key, or nothing to run on the remote."""


class SSHUnreachable(EngineUnreachable):
    """The SSH server does not answer: said so, without the hint to start a local berthd."""

    def __init__(self, address: str, reason: str) -> None:
        ClientError.__init__(self, f"Cannot connect to the Berth daemon at {address}: {reason}. "
                                   "Is the host up, and its sshd listening? (`ssh` to it shows the same)")
        self.address = address


class _Session:
    """A logged-in SSH connection to one engine address."""

    def __init__(self, client: paramiko.SSHClient, label: str, via: _Session | None = None) -> None:
        self.client = client
        self.label = label
        self.via = via  # the ProxyJump hop this connection is tunnelled through

    def close(self) -> None:
        self.client.close()
        if self.via is not None:
            self.via.close()

    @property
    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()


# The logged-in connections per address.  Usually one; another when sshd refuses more channels on the
# ones there are (its MaxSessions, 10 by default: a desktop with many streams open).
_SESSIONS: dict[tuple[str, str, int], list[_Session]] = {}
_LOCK = threading.Lock()  # guards _SESSIONS and _LOGINS; never held across network calls
_LOGINS: dict[tuple[str, str, int], threading.Lock] = {}  # one login at a time per address
_IMPORT_LOCK = threading.Lock()
# Why a channel ended before the engine said anything (from its remote stderr), by the caller's socket.
_FAILURES: weakref.WeakKeyDictionary[socket.socket, SSHError] = weakref.WeakKeyDictionary()


def connect(address: EngineAddress, timeout: float | None = None) -> socket.socket:
    """A socket whose peer is `dial-stdio` on the remote engine's host (a fresh exec channel)."""
    session, channel = _open_channel(address, timeout)
    ours, theirs = socket.socketpair()
    ours.settimeout(timeout)
    pump = _Pump(channel, theirs, ours, session)
    threading.Thread(target=pump.to_remote, name="berth-ssh-out", daemon=True).start()
    threading.Thread(target=pump.to_local, name="berth-ssh-in", daemon=True).start()
    return ours


def _open_channel(address: EngineAddress, timeout: float | None) -> tuple[_Session, paramiko.Channel]:
    full: list[_Session] = []  # connections that refused one more channel
    dropped = False
    while True:
        session, fresh = _session(address, timeout, full)
        import paramiko  # imported by the login above, the way _import_paramiko chose

        try:
            channel = session.client.get_transport().open_session(  # type: ignore[union-attr]
                timeout=timeout or CONNECT_TIMEOUT)
            channel.exec_command(DIAL)
            return session, channel
        except paramiko.ChannelException as exc:  # refused: this connection has its MaxSessions' worth
            if fresh:
                raise SSHError(f"ssh: {session.label} refused to open a session channel ({exc})") from None
            full.append(session)
        except Exception as exc:  # SSHException or a socket error
            if session.alive:  # the connection is up (a slow remote timed the open out): its other channels
                # (streams of this process) go on; closing it would cut them for one failed open
                raise EngineUnreachable(str(address), f"ssh: cannot open a channel ({exc or type(exc).__name__})"
                                        ) from exc
            _forget(address, session)  # the connection dropped: once, log in again
            if dropped or fresh:
                raise EngineUnreachable(str(address), f"ssh: cannot open a channel ({exc or type(exc).__name__})"
                                        ) from exc
            dropped = True


def raise_remote_failure(sock: socket.socket) -> None:
    """Raise why the remote's dial-stdio exited without a byte of HTTP, if that is what happened on `sock`."""
    failure = _FAILURES.get(sock)
    if failure is not None:
        raise failure


def close_all() -> None:
    """Log out of every SSH connection this process holds (tests; a long-running desktop switching engines)."""
    with _LOCK:
        sessions = [session for per_address in _SESSIONS.values() for session in per_address]
        _SESSIONS.clear()
    for session in sessions:
        session.close()


class _Pump:
    """Copies between an exec channel and our end of the socketpair, half-close included, both ways."""

    def __init__(self, channel: paramiko.Channel, sock: socket.socket, user_sock: socket.socket,
                 session: _Session) -> None:
        self.channel = channel
        self.sock = sock
        self.user_sock = weakref.ref(user_sock)
        self.session = session
        self._open = 2
        self._lock = threading.Lock()

    def _done(self) -> None:
        with self._lock:
            self._open -= 1
            last = self._open == 0
        if last:
            self._close_channel()
            self.sock.close()

    def _close_channel(self) -> None:
        try:
            self.channel.close()
        except (EOFError, OSError):  # the transport went first (sshd ended the login): nothing left to close
            pass

    def to_remote(self) -> None:
        drop = True
        try:
            while data := self.sock.recv(PUMP_CHUNK):
                self.channel.sendall(data)
            self.channel.shutdown_write()  # the client's half-close (stdin EOF on attach) goes through
            if not hasattr(select, "poll"):  # Windows: the channel ends with the remote's output instead
                drop = False
                return
            # Output may still come; the channel is dropped when the caller closes its end for good
            # (POLLHUP, which a mere half-close does not raise).
            poller = select.poll()
            poller.register(self.sock, 0)
            poller.poll()
        except OSError:
            pass
        finally:
            if drop:
                self._close_channel()
            self._done()

    def to_local(self) -> None:
        sent = False
        try:
            while data := self.channel.recv(PUMP_CHUNK):
                sent = True
                self.sock.sendall(data)
            if not sent:
                self._record_failure()  # before the EOF below, so the caller's error can say why
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close_channel()
        finally:
            self._done()

    def _record_failure(self) -> None:
        status = self.channel.recv_exit_status()
        if status == 0:
            return
        stderr = b""
        while self.channel.recv_stderr_ready():
            stderr += self.channel.recv_stderr(PUMP_CHUNK)
        text = " ".join(stderr.decode(errors="replace").split())[:300]
        user_sock = self.user_sock()
        if user_sock is None:
            return
        if status == NOT_FOUND:
            _FAILURES[user_sock] = SSHError(
                f"ssh: {self.session.label} has neither `berth` nor `docker` on its PATH: nothing there can reach "
                f"its engine (install Berth or Docker on it){f' ({text})' if text else ''}")
        else:
            _FAILURES[user_sock] = SSHError(f"ssh: dial-stdio on {self.session.label} exited with status {status}"
                                            + (f": {text}" if text else ""))


def _forget(address: EngineAddress, session: _Session) -> None:
    with _LOCK:
        sessions = _SESSIONS.get(_key(address), [])
        if session in sessions:
            sessions.remove(session)
    session.close()


def _key(address: EngineAddress) -> tuple[str, str, int]:
    return address.user, address.host, address.port


def _session(address: EngineAddress, timeout: float | None, full: list[_Session]) -> tuple[_Session, bool]:
    """A logged-in connection not in `full` (and whether it was made just now).

    Logins to one address are made one at a time (a second caller then finds the first's connection),
    under that address's lock only: a host that hangs mid-login (up to its ConnectTimeout) does not hold
    up the connections to other engines (a desktop watching several)."""
    key = _key(address)
    with _LOCK:
        login_lock = _LOGINS.setdefault(key, threading.Lock())
    with login_lock:
        with _LOCK:
            sessions = _SESSIONS.setdefault(key, [])
            dead = [session for session in sessions if not session.alive]
            sessions[:] = [session for session in sessions if session not in dead]
            found = next((session for session in sessions if session not in full), None)
        for session in dead:  # its ProxyJump hop or ProxyCommand may still be up
            session.close()
        if found is not None:
            return found, False
        session = _login(address, timeout)
        with _LOCK:
            _SESSIONS.setdefault(key, []).append(session)
        return session, True


def _import_paramiko(config_text: str) -> Any:
    """paramiko, without `invoke` unless the config has a `Match exec` (its only use; ~60 ms of start-up).

    Under a lock: logins to two addresses run at once, and the placeholder must be set and removed once."""
    with _IMPORT_LOCK:
        if "paramiko" in sys.modules or "invoke" in sys.modules or "exec" in config_text.lower():
            import paramiko

            return paramiko
        sys.modules["invoke"] = None  # type: ignore[assignment]  # paramiko.config then imports without it
        try:
            import paramiko
        finally:
            del sys.modules["invoke"]
        return paramiko


def _ssh_config(host: str) -> dict[str, Any]:
    path = os.path.expanduser("~/.ssh/config")
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise SSHError(f"ssh: cannot read {path}: {exc.strerror}") from None
    paramiko = _import_paramiko(text)
    if not text:
        return {"hostname": host}
    try:
        config = paramiko.SSHConfig.from_text(text)
        return dict(config.lookup(host))
    except Exception as exc:  # a config paramiko cannot parse: say which file
        raise SSHError(f"ssh: cannot read {path}: {exc}") from exc


class _AcceptPolicy:
    """`StrictHostKeyChecking no`: connect to an unknown host, say so on stderr, remember nothing."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        sys.stderr.write(f"Warning: accepting the unknown {key.get_name()} host key of {hostname} "
                         f"(StrictHostKeyChecking no): {key.fingerprint}\n")


class _AcceptNewPolicy:
    """`StrictHostKeyChecking accept-new`: an unknown host's key is appended to known_hosts, as ssh does.

    Not paramiko's AutoAddPolicy: it rewrites the whole file from what it parsed, dropping the lines it
    cannot read (comments, `@revoked`/`@cert-authority` markers, key types it does not know).
    """

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        try:
            fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as file:
                if file.tell() and not _ends_with_newline(self.known_hosts):
                    file.write("\n")
                file.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        except OSError as exc:
            raise SSHError(f"ssh: cannot record the host key of {hostname} in {self.known_hosts}: {exc}") from None
        sys.stderr.write(f"Warning: Permanently added '{hostname}' ({key.get_name()}) to the list of known hosts.\n")


class _RefuseRevoked:
    """A key marked `@revoked` in known_hosts is refused before anything else, whatever the policy."""

    def __init__(self, policy: Any, revoked: list[paramiko.PKey]) -> None:
        self.policy = policy
        self.revoked = revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if any(key == bad for bad in self.revoked):
            raise SSHError(f"ssh: the host key of {hostname} ({key.get_name()} {key.fingerprint}) is marked "
                           "@revoked in known_hosts; refusing to connect")
        self.policy.missing_host_key(client, hostname, key)


def _load_known_hosts(client: paramiko.SSHClient, paths: list[str]) -> list[paramiko.PKey]:
    """known_hosts files read as ssh reads them: their keys into the client's, the `@revoked` keys returned
    (never added).  paramiko's own loader fails on the first marker line (InvalidHostKey: every ssh://
    connection failed with an unexpected error); `@cert-authority` lines and lines it cannot read are
    skipped (those hosts are then unknown to us)."""
    from paramiko.hostkeys import HostKeyEntry

    known: list[tuple[str, paramiko.PKey]] = []
    revoked: list[paramiko.PKey] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SSHError(f"ssh: cannot read the known hosts file {path}: {exc.strerror}") from None
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            marker = ""
            if line.startswith("@"):
                marker, _, line = line.partition(" ")
            try:
                entry = HostKeyEntry.from_line(line.strip(), number)
            except Exception as exc:  # paramiko's InvalidHostKey and the decoders' errors under it
                logging.getLogger(__name__).debug("%s:%d: skipped (%s)", path, number, exc)
                continue
            if entry is None or entry.key is None or marker == "@cert-authority":
                continue
            if marker == "@revoked":
                revoked.append(entry.key)
            elif not marker:
                known += [(name, entry.key) for name in entry.hostnames]
    keys = client.get_host_keys()
    for name, key in known:
        if not any(key == bad for bad in revoked):  # a revoked key does not count as known for any host
            keys.add(name, key.get_name(), key)
    return revoked


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _login(address: EngineAddress, timeout: float | None, jump: str | None = None) -> _Session:
    """Connect and authenticate; `jump` overrides the config's ProxyJump ("none": direct)."""
    config = _ssh_config(address.host)  # imports paramiko (the config decides how)
    import paramiko

    logging.getLogger("paramiko").addHandler(logging.NullHandler())  # its tracebacks are not our error line
    hostname = str(config.get("hostname") or address.host)
    port = address.port or int(config.get("port") or 22)
    user = address.user or str(config.get("user") or "") or _local_user()
    label = f"{user}@{hostname}" + (f":{port}" if port != 22 else "")
    client = paramiko.SSHClient()
    known_hosts = os.path.expanduser("~/.ssh/known_hosts")
    files = [known_hosts]
    for named in str(config.get("userknownhostsfile") or "").split():
        extra = os.path.expanduser(named)
        if os.path.isfile(extra):
            files.append(extra)
            known_hosts = extra
    revoked = _load_known_hosts(client, files)
    strict = str(config.get("stricthostkeychecking") or "yes").lower()
    policy: Any
    if strict in ("no", "off"):
        policy = _AcceptPolicy()
    elif strict == "accept-new":
        os.makedirs(os.path.dirname(known_hosts), mode=0o700, exist_ok=True)  # ssh makes it for the first key
        policy = _AcceptNewPolicy(known_hosts)
    else:
        policy = paramiko.RejectPolicy()
    client.set_missing_host_key_policy(_RefuseRevoked(policy, revoked))  # type: ignore[arg-type]
    jump = str(config.get("proxyjump") or "none") if jump is None else jump
    proxy: Any = None
    via: _Session | None = None
    if config.get("proxycommand"):
        proxy = paramiko.ProxyCommand(str(config["proxycommand"]))
    elif jump.lower() != "none":
        via, proxy = _jump(jump, hostname, port, timeout)
    try:
        return _Session(_connect_client(client, address, config, hostname, port, user, known_hosts, timeout, proxy),
                        label, via)
    except BaseException:
        if via is not None:
            via.close()
        raise


def _jump(spec: str, hostname: str, port: int, timeout: float | None) -> tuple[_Session, paramiko.Channel]:
    """ProxyJump: log into the last hop (itself reached through the hops before it), tunnel to host:port."""
    from engine.client.hosts import parse_host

    *before, last = [hop.strip() for hop in spec.split(",")]
    hop = _login(parse_host(f"ssh://{last}"), timeout, jump=",".join(before) or "none")
    try:
        channel = hop.client.get_transport().open_channel(  # type: ignore[union-attr]
            "direct-tcpip", (hostname, port), ("127.0.0.1", 0), timeout=timeout or CONNECT_TIMEOUT)
    except Exception as exc:  # refused by the hop (AllowTcpForwarding no) or nothing listening there
        hop.close()
        raise SSHError(f"ssh: jump host {hop.label} cannot reach {hostname}:{port} ({exc})") from None
    return hop, channel


def _connect_client(client: paramiko.SSHClient, address: EngineAddress, config: dict[str, Any], hostname: str,
                    port: int, user: str, known_hosts: str, timeout: float | None, proxy: Any) -> paramiko.SSHClient:
    import paramiko

    label = f"{user}@{hostname}" + (f":{port}" if port != 22 else "")
    identities = [os.path.expanduser(p) for p in config.get("identityfile") or [] if os.path.isfile(
        os.path.expanduser(p))]
    only = str(config.get("identitiesonly") or "no").lower() == "yes"
    wait = timeout or float(config.get("connecttimeout") or CONNECT_TIMEOUT)
    try:
        client.connect(hostname, port=port, username=user, key_filename=identities or None,
                       allow_agent=not only, look_for_keys=not only or not identities, timeout=wait,
                       banner_timeout=wait, auth_timeout=wait, sock=proxy)  # type: ignore[arg-type]
    except SSHError:  # from our host key policies
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SSHError(f"ssh: the host key of {_known_name(hostname, port)} has CHANGED since it was recorded in "
                       f"{known_hosts} (now {exc.key.get_name()} {exc.key.fingerprint}); refusing to connect"
                       ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise SSHError(f"ssh: permission denied for {label}: no key or agent identity the server accepts "
                       f"({exc})") from None
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise SSHError(f"ssh: host key of {_known_name(hostname, port)} is unknown (not in {known_hosts}); "
                           f"connect once with `ssh -p {port} {user}@{hostname}` to check and record it, "
                           "or set StrictHostKeyChecking in ~/.ssh/config") from None
        raise SSHError(f"ssh: cannot connect to {label}: {exc}") from None
    except socket.gaierror as exc:
        client.close()
        raise SSHUnreachable(str(address), f"ssh: unknown host {hostname} ({exc.strerror})") from None
    except TimeoutError as exc:
        client.close()
        raise SSHUnreachable(str(address), f"ssh: timed out connecting to {hostname}:{port}") from exc
    except OSError as exc:
        client.close()
        # paramiko's NoValidConnectionsError holds one socket error per address it tried.
        first = next(iter(getattr(exc, "errors", {}).values()), exc)
        reason = (first.strerror or str(first)).lower() if isinstance(first, OSError) else str(first)
        raise SSHUnreachable(str(address), f"ssh: {reason} ({hostname}:{port})") from None
    alive = int(config.get("serveraliveinterval") or 0)
    if alive > 0:  # ServerAliveInterval: a long-lived client (the desktop) notices a dead link, keeps NATs open
        client.get_transport().set_keepalive(alive)  # type: ignore[union-attr]
    return client


def _known_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


def _local_user() -> str:
    import getpass

    return getpass.getuser()
