"""lazylog: the CLI keeps only errors, and imports `logging` (and sets up its handlers) at the first one."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from engine.runtime import lazylog

SCRIPT = """
import sys
from engine.runtime import lazylog

calls = []

def configure():
    import logging
    calls.append("configured")
    logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(funcName)s %(message)s")

lazylog.keep_from(lazylog.ERROR, configure)
log = lazylog.getLogger("engine.runtime.probe")
log.debug("no"); log.info("no"); log.warning("no")
assert not log.isEnabledFor(lazylog.WARNING)
print("logging imported:", "logging" in sys.modules, calls)

def report():
    log.error("kept %d", 1)
    log.error("kept %d", 2)

report()
print(calls)
"""


def test_records_below_the_floor_cost_no_import_and_the_first_kept_one_configures() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == [
        "logging imported: False []",
        "ERROR report kept 1",  # the caller's function, not lazylog's
        "ERROR report kept 2",
        "['configured']",  # once
    ], out.stderr


def test_by_default_every_record_goes_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    log = lazylog.getLogger("engine.runtime.probe")
    with caplog.at_level(logging.DEBUG, logger="engine.runtime.probe"):
        log.debug("seen %s", "here")
    assert [r.getMessage() for r in caplog.records] == ["seen here"]
