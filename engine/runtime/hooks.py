"""Lifecycle hooks (runtime-spec config.md#posix-platform-hooks, runtime.md#lifecycle).

Each hook gets the container state on stdin; a non-zero exit or a timeout of
prestart/createRuntime/createContainer/startContainer fails the operation,
while poststart/poststop failures are only logged (runtime.md: "the runtime
MUST log a warning").
"""

from __future__ import annotations

import os

from . import fastjson, signals
from .abcs import Mapping, Sequence
from .errors import HookFailed
from .lazylog import getLogger

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def run_hooks(hooks: Sequence[Mapping[str, Any]], kind: str, state: Mapping[str, Any]) -> None:
    if not hooks:
        return
    # Imported only when a hook runs (most containers have none); the container init's hooks
    # run after pivot_root, so init.preload_for_child imports it beforehand.
    import subprocess

    payload = fastjson.dumps(state).encode()
    for hook in hooks:
        path = str(hook["path"])
        args = [str(a) for a in hook.get("args", []) or []] or [path]
        env = dict(e.split("=", 1) for e in hook.get("env", []) or [] if "=" in e)
        timeout = hook.get("timeout")
        try:
            proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise HookFailed(f"{kind} hook {path}: {exc.strerror}") from None
        try:
            stdout, stderr = proc.communicate(payload, timeout=float(timeout) if timeout else None)
        except subprocess.TimeoutExpired:
            # The hook's own session: kill everything it started, or a grandchild holding
            # its stdout would keep us waiting after the timeout.
            try:
                os.killpg(proc.pid, signals.SIGKILL)
            except ProcessLookupError:  # the group has gone already
                pass
            proc.communicate()
            raise HookFailed(f"{kind} hook {path} timed out after {timeout}s") from None
        result = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise HookFailed(f"{kind} hook {path} exited {result.returncode}: {detail}")


def hooks_of(spec: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    return list((spec.get("hooks") or {}).get(kind, []) or [])


# The hooks that need the container's state from the parent before the init goes on (create's "hooks" step).
SETUP_HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer")


def needs_setup_sync(spec: Mapping[str, Any]) -> bool:
    """Whether create's parent and init must meet at the "hooks" step: only when one of these hooks runs
    (the parent runs prestart/createRuntime; the init needs the state, with its pid, for the others)."""
    return any(hooks_of(spec, kind) for kind in SETUP_HOOK_KINDS)


def run_hooks_logged(spec: Mapping[str, Any], kind: str, state: Mapping[str, Any]) -> None:
    """poststart/poststop: failures are warnings, never errors."""
    try:
        run_hooks(hooks_of(spec, kind), kind, state)
    except HookFailed as exc:
        log.warning("%s", exc)
