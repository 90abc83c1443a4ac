"""Running a lifecycle job's steps: each step idempotent with an undo; on a failure the
steps already done are undone in reverse order.

Faults can be injected at a named step in tests (`PORTAL_FAULT_STEP`, honoured only when
TESTING), to check that every step's undo leaves nothing behind.
"""
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

from flask import current_app

log = logging.getLogger(__name__)


class InjectedFault(RuntimeError):
    pass


@dataclass
class Step:
    name: str
    do: Callable
    undo: Optional[Callable] = None


def maybe_fail(step_name, slug=""):
    """Tests only: fail at the step named by PORTAL_FAULT_STEP ("step", or "step@prefix"
    for tenants whose slug starts with prefix), or stall at the one named by
    PORTAL_STALL_STEP ("step:seconds", to stop a worker in the middle of a job)."""
    cfg = current_app.config
    if not cfg.get("TESTING"):
        return
    fault, _, prefix = (cfg.get("PORTAL_FAULT_STEP") or "").partition("@")
    if fault == step_name and slug.startswith(prefix):
        raise InjectedFault(f"fault injected at step “{step_name}”")
    stall = cfg.get("PORTAL_STALL_STEP") or ""
    if stall.rpartition(":")[0] == step_name:
        time.sleep(float(stall.rpartition(":")[2]))


class StepFailed(Exception):
    def __init__(self, step, reason, undo_errors):
        super().__init__(f"{step}: {reason}")
        self.step, self.reason, self.undo_errors = step, reason, undo_errors


def run_steps(steps, context, progress):
    """Do each step; on failure undo those done, newest first, and raise StepFailed."""
    done = []
    for step in steps:
        progress.step(step.name, "running")
        try:
            maybe_fail(step.name, getattr(getattr(context, "tenant", None), "slug", ""))
            step.do(context)
        except Exception as exc:
            log.warning("step %s failed: %s", step.name, exc)
            progress.step(step.name, "failed")
            reason = _reason(exc)
            undo_errors = undo_steps(list(reversed(done + [step])), context, progress, failed=step.name)
            raise StepFailed(step.name, reason, undo_errors) from exc
        progress.step(step.name, "done")
        done.append(step)


def undo_steps(steps, context, progress=None, failed=None):
    """Undo `steps` in the order given; keep going past a failing undo, and report it.
    The step that `failed` keeps saying so ("failed, undone")."""
    errors = []
    for step in steps:
        if step.undo is None:
            continue
        try:
            step.undo(context)
            if progress is not None:
                progress.step(step.name, "failed, undone" if step.name == failed else "undone")
        except Exception as exc:  # an undo that fails is reported, the others still run
            log.exception("undo of %s failed", step.name)
            errors.append(f"{step.name}: {_reason(exc)}")
    return errors


def _reason(exc):
    message = str(getattr(exc, "orig", exc)).strip()
    return message.splitlines()[0] if message else type(exc).__name__
