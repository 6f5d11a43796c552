"""Berth's OCI runtime ("Berth's runc"): an OCI bundle in, an isolated process out.

Two ways in:

* ``berth-runtime`` (``cli.py`` + ``commands/``): a runc-compatible command
  line (create, start, run, state, kill, delete, list, ps, exec, pause,
  resume, update, spec, features) with runc's --root/--log/--log-format/--debug.
* The fork server (``forkserver.py``) for berthd: ``spawn_fork_server`` starts
  one single-threaded, subreaping helper; ``ForkServerClient`` asks it to
  create/start/exec/kill/delete/wait.  Container setup needs fork + unshare in
  a single-threaded process, which an asyncio daemon is not.

The library functions behind both (call them only in a single-threaded process):
``create.create_container``, ``lifecycle.start_container / kill_container /
delete_container / pause_container / resume_container / update_container /
container_pids``, ``exec.exec_process``, ``status.container_status / oci_state``,
all over a ``state.StateStore``.

Mechanics, one concern per module: ``spec`` (config.json), ``state`` (the
per-container state directory), ``namespaces``, ``rootfs`` + ``devices`` +
``mount_options`` + ``paths_in_root`` (the filesystem view), ``process``
(user, env, rlimits...), ``hooks``, ``console``, ``sync`` (parent/child
messages), ``launcher`` (parent side of fork) and ``init`` (child side, from
fork to execve), ``cgroups/``, ``capabilities``, ``seccomp``; ``syscalls`` is
the only module that calls libc.
"""
