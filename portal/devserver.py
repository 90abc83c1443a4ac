"""`make run`: servers (embedded unless DATABASE_URL and REDIS_URL are set), migrations,
demo data once, a job worker beside the web process, then the portal on
http://127.0.0.1:5000/ (PORT to change)."""
import argparse
import atexit
import os
import signal
import subprocess
import sys

from portal.embedded import ensure_servers


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()
    # SIGTERM ends the process through sys.exit, so the embedded servers' atexit
    # clean-up stops them too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    instance = os.environ.setdefault("PORTAL_INSTANCE_DIR", os.path.abspath("instance"))
    # Links made outside a request (a new tenant's first invitation, by the worker) point here.
    os.environ.setdefault("PORTAL_PUBLIC_URL", f"http://{args.host}:{args.port}")
    embedded = ensure_servers(instance)  # noqa: F841  (kept alive for the process)

    from portal import create_app
    from portal.dbsetup import setup_database
    from portal.demo import seed
    from portal.lifecycle import upgrade

    app = create_app()
    setup_database(app.config)
    with app.app_context():
        # Tenants made by an earlier run may be behind the tenant history (a production
        # deploy runs `flask tenants upgrade --all` itself; here it is done for you).
        targets, _, head = upgrade.plan(everyone=True)
        if targets:
            record = upgrade.run(targets, "make run")
            print(f"upgraded {record.done} tenant target(s) to {head}, {record.failed} failed", flush=True)
        logins = seed()
    # The worker gets this process's environment, so the same servers (embedded or not).
    worker = subprocess.Popen([sys.executable, "-m", "portal.worker"])
    atexit.register(stop_process, worker)
    where = "embedded PostgreSQL and Redis under " + instance if embedded else "DATABASE_URL and REDIS_URL"
    print(f"\nTenancy Portal on http://{args.host}:{args.port}/  ({where}; job worker pid {worker.pid})",
          flush=True)
    for line in logins:
        print("  " + line, flush=True)
    print(flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


def stop_process(process):
    """Terminate a child process, and kill it if it does not stop within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
