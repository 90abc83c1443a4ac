"""Real worker processes (`python -m portal.worker`) for tests that commit for real:
the browser journeys, and the test that kills a worker in the middle of a job."""
import os
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
    args = [sys.executable, "-m", "portal.worker"] + (["--burst"] if burst else [])
    return subprocess.Popen(args, cwd=ROOT, env=worker_env(app, **extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


stop_worker = stop_process
