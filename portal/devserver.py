"""`make run`: servers (embedded unless DATABASE_URL and REDIS_URL are set), migrations,
demo data once, a job worker beside the web process, then the portal on
http://127.0.0.1:5000/ (PORT to change); the sign-in lines are printed once /readyz says
the portal is ready."""
import argparse
import atexit
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

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
    banner = [f"\nTenancy Portal on http://{args.host}:{args.port}/  ({where}; job worker pid {worker.pid})",
              *("  " + line for line in logins), ""]
    # The logins are printed once the portal says it is ready (/readyz), not before.
    threading.Thread(target=announce_when_ready, args=(args.host, args.port, banner), daemon=True).start()
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


def announce_when_ready(host, port, lines, seconds=120):
    """Print `lines` once http://host:port/readyz answers 200; what is wrong if it does not
    within `seconds`."""
    asked = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{'[' + asked + ']' if ':' in asked else asked}:{port}/readyz"
    deadline, last = time.monotonic() + seconds, "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    print("\n".join(lines), flush=True)
                    return True
        except urllib.error.HTTPError as refused:  # 503: what is wrong, in its body
            last = refused.read().decode(errors="replace")[:500]
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    print(f"The portal is not ready after {seconds} s ({url}): {last}", file=sys.stderr, flush=True)
    return False


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
