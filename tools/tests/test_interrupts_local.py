"""Signals and stale locks during real deploys against the emulator.

A stack whose apply takes a few seconds (a `terraform_data` with a `sleep` provisioner) is
interrupted while terraform applies it. After each interrupted run: the run reports what
finished, what was interrupted and what never started; no lock and no guard is left; a rerun
converges and a final `plan --detailed-exitcode` finds nothing to do.

terraform stops a provisioner at once on SIGINT. To play a provider that takes its time to stop
(an AWS call that is not cancelled), some tests run terraform behind SLOW_TERRAFORM, which holds
the SIGINT back for a few seconds before passing it on.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.terraform

SLEEPER = """
variable "revision" {
  type        = string
  description = "Changing it replaces the resource (and sleeps again)."
}

variable "seconds" {
  type        = number
  description = "How long the apply takes."
  default     = 6
}

resource "terraform_data" "slow" {
  input = var.revision

  provisioner "local-exec" {
    command = "sleep ${var.seconds}"
  }
}

output "revision" {
  description = "The applied revision."
  value       = terraform_data.slow.output
}
"""


def _write_stacks(repo, env: str, revision: str, seconds: int = 6) -> None:
    for folder, extra in (("010_slow", f"seconds = {seconds}"), ("020_after", "")):
        repo.write(
            f"live/{env}/{folder}/stack.toml",
            f"""
            module = "sleeper"
            [inputs]
            revision = "{revision}-{folder}"
            {extra}
            """,
        )


class Watched:
    """A running stackrun command whose output is collected while it runs."""

    def __init__(self, process):
        self.process = process
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._read, args=(process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(process.stderr, self.errors), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def wait_for(self, text: str, timeout: float = 300, stderr: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in (self.errors if stderr else self.lines)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"never saw {text!r}:\n{''.join(self.lines)}{''.join(self.errors)}")
            time.sleep(0.1)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        code = self.process.wait(timeout=timeout)
        for thread in self.threads:
            thread.join(timeout=10)
        return code, "".join(self.lines), "".join(self.errors)


def _converges(repo, env: str) -> None:
    rerun = repo.run("deploy", env, "--local")
    assert rerun.returncode == 0, rerun.text
    assert "took over the expired guard" not in rerun.stderr
    plan = repo.run("plan", env, "--local", "--detailed-exitcode")
    assert plan.returncode == 0, plan.text
    assert repo.held_locks(env) == []


SLOW_TERRAFORM = """#!{python}
import ctypes, signal, subprocess, sys, threading

PR_SET_PDEATHSIG = 1
def die_with_parent():
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

# terraform in a session of its own, so stackrun's signals reach only this process, and killed
# with it (SIGKILL of this process group kills terraform as well)
child = subprocess.Popen([{terraform!r}, *sys.argv[1:]], start_new_session=True,
                         preexec_fn=die_with_parent)
def later(signum, frame):
    threading.Timer({delay}, child.send_signal, (signal.SIGINT,)).start()
signal.signal(signal.SIGINT, later)
sys.exit(child.wait())
"""


def _slow_terraform(tmp_path: Path, delay: float) -> dict[str, str]:
    """Environment variables that make stackrun run terraform behind SLOW_TERRAFORM."""
    wrapper = tmp_path / "slow-terraform"
    wrapper.write_text(
        SLOW_TERRAFORM.format(
            python=sys.executable, terraform=shutil.which("terraform"), delay=delay
        )
    )
    wrapper.chmod(0o755)
    return {"STACKRUN_TERRAFORM": str(wrapper)}


def _applying_behind_slow_terraform(
    repo, env: str, account: str, tmp_path: Path, delay: float
) -> Watched:
    """A deploy of `env` whose terraform applies 010_slow (15 s) and, signalled, starts to
    stop only `delay` seconds later; returned once the apply is under way."""
    repo.env(env, account)
    repo.write("modules/sleeper/main.tf", SLEEPER)
    _write_stacks(repo, env, "r1", seconds=15)
    assert repo.run("bootstrap", env, "--local").returncode == 0
    run = Watched(repo.start("deploy", env, "--local", env=_slow_terraform(tmp_path, delay)))
    run.wait_for("terraform_data.slow: Provisioning with 'local-exec'")
    return run


def _guard_held(repo, env: str) -> bool:
    return any(item["LockID"]["S"].startswith("stackrun-guard/") for item in repo.held_locks(env))


def _state_locked(repo, env: str) -> bool:
    return any(
        not item["LockID"]["S"].startswith("stackrun-guard/") for item in repo.held_locks(env)
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_apply_lets_terraform_finish_and_the_rerun_converges(local_repo, signum):
    repo = local_repo
    env, account = {
        signal.SIGINT: ("india", "210000000009"),
        signal.SIGTERM: ("juliet", "210000000010"),
    }[signum]
    repo.env(env, account)
    repo.write("modules/sleeper/main.tf", SLEEPER)
    _write_stacks(repo, env, "r1")
    assert repo.run("bootstrap", env, "--local").returncode == 0

    run = Watched(repo.start("deploy", env, "--local"))
    run.wait_for("terraform_data.slow: Provisioning with 'local-exec'")
    run.process.send_signal(signum)
    code, out, err = run.finish()

    assert code == 128 + signum, out + err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert "state locks and the environment guard released" in err
    summary = out[out.rindex("deploy " + env + ": summary") :]
    assert "000_bootstrap            skipped" in summary
    assert "010_slow                 interrupted" in summary
    assert "020_after                not started" in summary
    assert repo.held_locks(env) == []
    _converges(repo, env)


def test_ci_cancellation_sigint_then_sigterm_lets_terraform_finish(local_repo, tmp_path):
    """GitHub Actions cancels with SIGINT, then SIGTERM 7.5 s later: the SIGTERM must not kill
    a terraform that is still stopping (here it starts to stop 9 s after the SIGINT)."""
    repo, env = local_repo, "lima"
    run = _applying_behind_slow_terraform(repo, env, "210000000012", tmp_path, delay=9)
    run.process.send_signal(signal.SIGINT)
    time.sleep(7.5)
    assert run.process.poll() is None, "stackrun stopped before the SIGTERM: nothing was tested"
    assert _state_locked(repo, env), "terraform was not holding its state lock any more"
    run.process.send_signal(signal.SIGTERM)
    code, out, err = run.finish()

    assert code == 128 + signal.SIGINT, out + err
    assert re.search(r"SIGTERM received \d+\.\ds after the first signal: still stopping", err)
    assert "killing terraform" not in err
    assert "terraform finished cleanly; state locks and the environment guard released" in err
    assert "010_slow                 interrupted" in out
    assert repo.held_locks(env) == []
    _converges(repo, env)


def test_a_third_signal_kills_terraform_and_stackrun_still_releases_lock_and_guard(
    local_repo, tmp_path
):
    repo, env = local_repo, "mike"
    run = _applying_behind_slow_terraform(repo, env, "210000000013", tmp_path, delay=60)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        assert _state_locked(repo, env), "terraform stopped already: nothing was tested"
        run.process.send_signal(signum)
        time.sleep(1)
    code, out, err = run.finish()

    assert code == 128 + signal.SIGINT, out + err
    assert "SIGINT: killing terraform" in err
    assert "010_slow: released the state lock of the killed terraform" in out
    assert "stackrun released its state lock and the environment guard" in err
    assert repo.held_locks(env) == []
    assert not _guard_held(repo, env)
    _converges(repo, env)


def _terraform_children(pid: int) -> list[int]:
    """Process ids of the terraform processes started by `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        name = fields[0].split("(", 1)[1]
        if name == "terraform" and int(fields[1].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_killed_terraform_leaves_a_lock_that_is_named_and_released_by_unlock(local_repo):
    repo = local_repo
    env = "kilo"
    repo.env(env, "210000000011")
    repo.write("modules/sleeper/main.tf", SLEEPER)
    _write_stacks(repo, env, "r1")
    assert repo.run("bootstrap", env, "--local").returncode == 0

    # as when a CI runner is killed: terraform dies holding the state lock of 010_slow
    run = Watched(repo.start("deploy", env, "--local"))
    run.wait_for("terraform_data.slow: Provisioning with 'local-exec'")
    for pid in _terraform_children(run.process.pid):
        os.kill(pid, signal.SIGKILL)
    code, out, err = run.finish()
    assert code == 1, out + err
    assert "stack 010_slow failed at `terraform apply`" in err
    assert "020_after                not started" in out

    # the next run does not wait forever: it names the lock and the command that releases it
    blocked = repo.run("deploy", env, "--local", "--lock-timeout", "2s")
    assert blocked.returncode == 1, blocked.text
    assert "Error acquiring the state lock" in blocked.stderr
    hint = f"nox -s unlock -- {env} 010_slow "
    assert hint in blocked.stderr
    lock_id = blocked.stderr.split(hint)[1].split()[0]
    assert blocked.stderr.split(hint)[1].split()[1] == "--local"

    # plan reads the states without locking them: the held lock neither stops nor delays it
    planned = repo.run("plan", env, "--local", "--lock-timeout", "2s")
    assert planned.returncode == 0, planned.text
    assert "Error acquiring the state lock" not in planned.text

    wrong = repo.run("unlock", env, "010_slow", "not-the-id", "--local", "--yes")
    assert wrong.returncode == 1
    assert "nothing released" in wrong.stderr
    released = repo.run("unlock", env, "010_slow", lock_id, "--local", "--yes")
    assert released.returncode == 0, released.text
    assert f"state lock {lock_id} released" in released.stdout
    _converges(repo, env)


# A stand-in for terraform that takes its time to stop after SIGINT, so that the second
# interrupt deterministically finds it still running.
SLOW_TO_STOP = """
import signal, sys, time
def on_interrupt(signum, frame):
    print("child: interrupted, cleaning up slowly", flush=True)
    time.sleep(30)
signal.signal(signal.SIGINT, on_interrupt)
print("child: running", flush=True)
time.sleep(60)
"""

DRIVER = """
import subprocess, sys
from stackrun.deploy import interrupts
interrupts.GRACE_SECONDS = float(sys.argv[2])
interrupts.install()
child = interrupts.start(lambda: subprocess.Popen([sys.executable, "-c", sys.argv[1]], text=True,
                         start_new_session=interrupts.new_session()))
child.wait()
interrupts.untrack(child)
print(f"driver: child exit {child.returncode}", flush=True)
interrupts.check("while the child ran")
"""


def _driven(grace: float) -> Watched:
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, SLOW_TO_STOP, str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = Watched(process)
    run.wait_for("child: running", timeout=30)
    process.send_signal(signal.SIGINT)
    run.wait_for("child: interrupted, cleaning up slowly", timeout=30)
    return run


def test_the_first_interrupt_is_forwarded_once_the_second_waits_and_the_third_kills():
    run = _driven(grace=60)
    run.process.send_signal(signal.SIGTERM)
    run.wait_for("still stopping cleanly", timeout=30, stderr=True)
    time.sleep(1)
    assert run.process.poll() is None  # the second signal within the grace kills nothing
    run.process.send_signal(signal.SIGINT)
    code, out, err = run.finish(timeout=30)
    assert out.count("child: interrupted") == 1  # forwarded once, not once per signal
    assert f"driver: child exit -{signal.SIGKILL.value}" in out
    assert "SIGINT: killing terraform" in err
    assert "Interrupted: interrupted by SIGINT" in err
    assert code == 1  # the uncaught Interrupted of the driver


def test_a_second_interrupt_after_the_grace_period_kills():
    run = _driven(grace=0.5)
    time.sleep(1)
    run.process.send_signal(signal.SIGTERM)
    code, out, err = run.finish(timeout=30)
    assert out.count("child: interrupted") == 1
    assert f"driver: child exit -{signal.SIGKILL.value}" in out
    assert "SIGTERM: killing terraform" in err
    assert code == 1
