"""Named engine endpoints (`berth context`), kept in the docker CLI's own store so both tools share them.

Layout (docker's cli/context/store): `$DOCKER_CONFIG/contexts/meta/<sha256(name)>/meta.json`
holds {"Name", "Metadata": {"Description"}, "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}},
TLS files live in `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`, and the current context
is `currentContext` in `$DOCKER_CONFIG/config.json` (other keys there are preserved).  Sharing the
store means `docker context use x` and `berth context use x` mean the same engine.

Which engine a command talks to, highest first, like docker's resolveContextName:
-H, then --context, then BERTH_HOST/DOCKER_HOST, then BERTH_CONTEXT/DOCKER_CONTEXT, then currentContext.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT = "default"
TLS_KINDS = ("ca", "cert", "key")
IMPORT_LIMIT = 10 << 20  # docker's maxAllowedFileSizeToImport: an archive bigger than this is refused
NAME_RULE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$")  # docker's validateContextName


class ContextError(Exception):
    """A context that does not exist, already exists, or cannot be removed."""


def check_name(name: str) -> None:
    if not NAME_RULE.match(name):
        raise ContextError(f'context name "{name}" is invalid, names are validated against regexp '
                           f'"{NAME_RULE.pattern}"')


def config_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker"))


def _digest(name: str) -> str:
    import hashlib  # lazily, like shutil below: every command resolves its context at start-up

    return hashlib.sha256(name.encode()).hexdigest()


class ContextStore:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.root = config_dir(environ)
        self.meta_root = self.root / "contexts" / "meta"
        self.tls_root = self.root / "contexts" / "tls"

    # ------------------------------------------------------------ the current context
    def _config(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / "config.json").read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ContextError(f"cannot read {self.root / 'config.json'}: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def current(self) -> str:
        return str(self._config().get("currentContext") or DEFAULT)

    def set_current(self, name: str) -> None:
        config = self._config()
        if name == DEFAULT:
            config.pop("currentContext", None)
        else:
            config["currentContext"] = name
        from engine.cli.docker_config import save_config

        save_config(self.root / "config.json", config)  # 0600: config.json also holds registry credentials

    def selected(self, flag: str | None) -> str:
        """The context in force when no -H is given: --context, else the host variables mean `default`."""
        if flag:
            return flag
        if self.environ.get("BERTH_HOST") or self.environ.get("DOCKER_HOST"):
            return DEFAULT
        return self.environ.get("BERTH_CONTEXT") or self.environ.get("DOCKER_CONTEXT") or self.current()

    # ------------------------------------------------------------ named contexts
    def meta_path(self, name: str) -> Path:
        return self.meta_root / _digest(name) / "meta.json"

    def tls_dir(self, name: str) -> Path:
        return self.tls_root / _digest(name) / "docker"

    def get(self, name: str) -> dict[str, Any]:
        check_name(name)
        try:
            meta = json.loads(self.meta_path(name).read_text())
        except FileNotFoundError:
            # docker's words, path included (its store's error), so either CLI says the same.
            raise ContextError(f'context "{name}": context not found: open {self.meta_path(name)}: '
                               "no such file or directory") from None
        except (OSError, ValueError) as exc:
            raise ContextError(f"cannot read context {name!r}: {exc}") from exc
        if not isinstance(meta, dict):
            raise ContextError(f"context {name!r}: malformed metadata")
        return meta

    def names(self) -> list[str]:
        found = []
        if self.meta_root.is_dir():
            for entry in self.meta_root.iterdir():
                try:
                    found.append(str(json.loads((entry / "meta.json").read_text())["Name"]))
                except (OSError, ValueError, KeyError):
                    continue  # a half-written or foreign entry: docker skips it as well
        return sorted(found)

    def _check_new(self, name: str) -> None:
        if name == DEFAULT:
            raise ContextError('"default" is a reserved context name')
        check_name(name)
        if self.meta_path(name).exists():
            raise ContextError(f'context "{name}" already exists')

    def create(self, name: str, description: str, host: str, skip_tls_verify: bool,
               tls_files: Mapping[str, str]) -> None:
        self._check_new(name)
        meta = {"Name": name, "Metadata": {"Description": description} if description else {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}}}
        self._write(name, meta, {kind: Path(source).read_bytes() for kind, source in tls_files.items()})

    def _write(self, name: str, meta: Mapping[str, Any], tls: Mapping[str, bytes] | None) -> None:
        """Store a context's metadata and, unless `tls` is None (keep them), replace its TLS files."""
        if tls is not None:
            import shutil

            shutil.rmtree(self.tls_dir(name).parent, ignore_errors=True)
            if tls:
                tls_dir = self.tls_dir(name)
                tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                for kind, data in tls.items():
                    target = tls_dir / f"{kind}.pem"  # a private key among them: 0600 from its creation on
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                    os.fchmod(fd, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        out.write(data)
        path = self.meta_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".meta.json.{os.getpid()}")
        partial.write_text(json.dumps(meta, separators=(",", ":")))
        os.replace(partial, path)  # a reader (the other CLI) never sees half a file

    def update(self, name: str, description: str | None, endpoint: Mapping[str, Any] | None,
               tls: Mapping[str, bytes] | None) -> None:
        """docker context update: a new description and/or a new docker endpoint (its TLS files replaced)."""
        if name == DEFAULT:
            raise ContextError('"default" is a reserved context name')
        meta = self.get(name)
        if description is not None:
            meta["Metadata"] = dict(meta.get("Metadata") or {}, Description=description)
            if not description:
                meta["Metadata"].pop("Description")
        if endpoint is not None:
            meta["Endpoints"] = dict(meta.get("Endpoints") or {}, docker=dict(endpoint))
        self._write(name, meta, tls if endpoint is not None else None)

    def export(self, name: str, default_meta: Mapping[str, Any]) -> bytes:
        """docker context export: a tar of meta.json and tls/docker/*.pem (docker's layout, modes, zero times)."""
        import io
        import tarfile

        meta = dict(default_meta) if name == DEFAULT else self.get(name)
        files = {} if name == DEFAULT else self.tls_material(name)
        tls = {kind: Path(path).read_bytes() for kind, path in files.items()}
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            def add(entry: str, mode: int, data: bytes | None = None) -> None:
                info = tarfile.TarInfo(entry)
                info.mode, info.mtime = mode, 0
                if data is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))

            add("meta.json", 0o644, json.dumps(meta, separators=(",", ":")).encode())
            if tls:
                add("tls", 0o700)
                add("tls/docker", 0o700)
                for kind in sorted(tls):
                    add(f"tls/docker/{kind}.pem", 0o600, tls[kind])
        return buffer.getvalue()

    def import_(self, name: str, data: bytes) -> None:
        """docker context import: a tar (or zip) of meta.json and tls/docker/{ca,cert,key}.pem."""
        self._check_new(name)
        if len(data) > IMPORT_LIMIT:
            raise ContextError(f"the archive is bigger than {IMPORT_LIMIT} bytes")
        files = _archive_files(data)
        if "meta.json" not in files:
            raise ContextError("invalid context archive: no meta.json")
        try:
            meta = json.loads(files.pop("meta.json"))
        except ValueError as exc:
            raise ContextError(f"invalid context archive: meta.json: {exc}") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("Endpoints") or {}, dict):
            raise ContextError("invalid context archive: meta.json is not a context's metadata")
        tls: dict[str, bytes] = {}
        for entry, content in files.items():
            endpoint, _, file_name = entry.removeprefix("tls/").partition("/")
            kind = file_name.removesuffix(".pem")
            if not entry.startswith("tls/") or endpoint != "docker" or kind not in TLS_KINDS or \
                    file_name != f"{kind}.pem":
                raise ContextError(f"invalid context archive: unexpected entry {entry!r}")
            tls[kind] = content
        meta["Name"] = name
        self._write(name, meta, tls)

    def remove(self, name: str) -> None:
        if name == DEFAULT:
            raise ContextError("default context cannot be removed")
        if not self.meta_path(name).exists():
            raise ContextError(f'context "{name}" does not exist')
        import shutil

        shutil.rmtree(self.meta_path(name).parent)
        shutil.rmtree(self.tls_dir(name).parent, ignore_errors=True)

    def tls_material(self, name: str) -> dict[str, str]:
        """kind (ca/cert/key) → file path, for the files this context has."""
        tls = self.tls_dir(name)
        return {kind: str(tls / f"{kind}.pem") for kind in ("ca", "cert", "key") if (tls / f"{kind}.pem").exists()}

    def host(self, name: str) -> str:
        return str(((self.get(name).get("Endpoints") or {}).get("docker") or {}).get("Host") or "")


def _archive_files(data: bytes) -> dict[str, bytes]:
    """The regular files of a tar or zip archive (directories skipped), name -> content."""
    import io

    files: dict[str, bytes] = {}
    if data[:4] == b"PK\x03\x04":
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        if info.file_size > IMPORT_LIMIT:
                            raise ContextError(f"invalid context archive: {info.filename} is too big")
                        files[info.filename] = archive.read(info)
        except zipfile.BadZipFile as exc:
            raise ContextError(f"invalid context archive: {exc}") from exc
        return files
    import tarfile

    # docker's own export ends after the last file's bytes (no padding, no end blocks): complete it.
    data += b"\0" * (-len(data) % 512 + 1024)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ContextError(f"invalid context archive: {member.name} is not a regular file")
                extracted = tar.extractfile(member)
                files[member.name] = extracted.read() if extracted else b""
    except tarfile.TarError as exc:
        raise ContextError(f"invalid context archive: {exc}") from exc
    return files


def default_host(environ: Mapping[str, str]) -> str:
    """What the `default` context points at: BERTH_HOST, DOCKER_HOST, else Berth's own socket."""
    host = environ.get("BERTH_HOST") or environ.get("DOCKER_HOST")
    if host:
        return host
    from engine import paths

    return f"unix://{paths.default_socket()}"


def address_for(store: ContextStore, name: str) -> Any:
    """The EngineAddress of a context (TLS settings from its stored files)."""
    from engine.client.hosts import TLSConfig, parse_host, tls_from_env

    if name == DEFAULT:
        host = default_host(store.environ)
        return parse_host(host, tls_from_env(store.environ))
    meta = store.get(name)
    endpoint = (meta.get("Endpoints") or {}).get("docker") or {}
    files = store.tls_material(name)
    skip = bool(endpoint.get("SkipTLSVerify"))
    tls = TLSConfig(files.get("ca"), files.get("cert"), files.get("key"), verify=not skip) if files or skip else None
    return parse_host(str(endpoint.get("Host") or ""), tls)
