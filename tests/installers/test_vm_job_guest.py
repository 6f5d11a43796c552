"""The job guest's view of the checkout: one under the guest's own /tmp or /run is shared back."""

from __future__ import annotations

from pathlib import Path

import pytest

from installers.vm import job_guest
from vmbackend import qemu


def test_a_checkout_outside_tmp_and_run_needs_no_extra_share() -> None:
    assert job_guest.checkout_share(Path("/work/main")) == ((), "")


@pytest.mark.parametrize("base", job_guest.GUEST_TMPFS)
def test_a_checkout_under_tmp_or_run_gets_its_own_read_only_share(base: str) -> None:
    shares, kernel_args = job_guest.checkout_share(Path(base) / "ci" / "main")
    resolved = (Path(base) / "ci" / "main").resolve()
    assert shares == (qemu.Share(resolved, "checkout", readonly=True),)
    assert kernel_args == f" berth.checkout={resolved}"


def test_a_hidden_checkout_with_white_space_is_refused_by_name() -> None:
    with pytest.raises(qemu.QemuError, match="white space"):
        job_guest.checkout_share(Path("/tmp/my checkout"))


def test_the_guest_init_mounts_the_checkout_share_back_at_its_path() -> None:
    script = (Path(job_guest.__file__).parent / "guest_init.sh").read_text()
    assert "berth.checkout=" in script
    assert 'checkout "/newroot$checkout"' in script
