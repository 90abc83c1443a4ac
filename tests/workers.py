"""Real worker processes (`python -m portal.worker`) for tests that commit for real:
the browser journeys, and the test that kills a worker in the middle of a job."""
import os
import signal
import subprocess
import sys

from portal.devserver import stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_env(app, **extra):
    """The environment that gives the worker the same settings as `app`."""
    cfg = app.config
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": cfg["DATABASE_URL"], "REDIS_URL": cfg["REDIS_URL"],
        "PORTAL_REDIS_CLUSTER": "1" if cfg["REDIS_CLUSTER"] else "0", "PORTAL_RQ_REDIS_URL": cfg["RQ_REDIS_URL"] or "",
        "PORTAL_APP_ROLE": cfg["PORTAL_APP_ROLE"], "PORTAL_REDIS_PREFIX": cfg["PORTAL_REDIS_PREFIX"],
        "PORTAL_NAME_PREFIX": cfg["PORTAL_NAME_PREFIX"], "PORTAL_SECRET_KEY": cfg["SECRET_KEY"],
        "PORTAL_TENANT_ROLE_SECRET": cfg["PORTAL_TENANT_ROLE_SECRET"],
        "PORTAL_EXPORT_DIR": cfg["PORTAL_EXPORT_DIR"], "PORTAL_BASE_DOMAIN": cfg["PORTAL_BASE_DOMAIN"],
        "PORTAL_PUBLIC_URL": cfg["PORTAL_PUBLIC_URL"],
        "PORTAL_ARGON2_TIME_COST": str(cfg["ARGON2_TIME_COST"]),
        "PORTAL_ARGON2_MEMORY_COST": str(cfg["ARGON2_MEMORY_COST"]),
        "PORTAL_JOB_STALE_SECONDS": str(cfg["JOB_STALE_SECONDS"]),
        "PORTAL_JOB_HEARTBEAT_SECONDS": str(cfg["JOB_HEARTBEAT_SECONDS"]),
        "PORTAL_TESTING": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(app, burst=False, **extra):
    """A worker in a process group of its own: RQ's scheduler runs in a child process,
    which a SIGKILL of the worker alone would leave running after the tests."""
    args = [sys.executable, "-m", "portal.worker"] + (["--burst"] if burst else [])
    return subprocess.Popen(args, cwd=ROOT, env=worker_env(app, **extra), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_worker(process):
    """SIGKILL the worker and its scheduler (nothing runs on their way out), as a machine
    that dies would; wait for the worker."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def stop_worker(process):
    """Stop the worker (SIGTERM, then SIGKILL after 10 s), then whatever of its group is left."""
    stop_process(process)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
