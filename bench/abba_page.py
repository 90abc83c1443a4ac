"""One tenant page in-process, two checkouts of the portal side by side (ABBA): how a code
change moves a page's time on a machine whose speed moves from one minute to the next.

Each checkout serves the page from a process of its own (its own throwaway database with
bench/hot_path.py's three demo tenants, signed in, the Flask test client), and the two
take turns in batches, in the order A B B A, then B A A B, and so on; the p50 of every
request of each side, and B/A.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/abba_page.py /tmp/before . /t/acme/orders
    .venv/bin/python bench/abba_page.py /tmp/before . /t/globex/orders --rounds 8 --batch 100

Paths: `/t/acme/…` (pool), `/t/globex/…` (bridge), `/t/initech/…` (silo); the tenant's
admin is signed in, and an API path (`/t/acme/api/v1/orders`) is asked with its token.
"""
import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time


def serve(checkout, path):
    """The child: the page of `checkout`, timed `run N` times at a time (stdin), JSON out."""
    sys.path[:0] = [os.path.join(checkout, "bench"), checkout]
    import hot_path
    from _common import PASSWORD, Throwaway, csrf_token

    logging.disable(logging.INFO)
    slug = path.split("/")[2]
    with Throwaway() as app:
        tenants = hot_path.seed(app, 60)
        client = app.test_client()
        # An API path is asked with the tenant's token (its admin's session does not reach the API).
        headers = {"Authorization": f"Bearer {tenants[slug]['token']}"} if "/api/" in path else {}
        page = client.get(f"/t/{slug}/login")
        client.post(f"/t/{slug}/login", data={"email": f"admin@{slug}.example", "password": PASSWORD,
                                               "csrf_token": csrf_token(page.get_data(as_text=True))})
        for _ in range(50):  # warm: caches, pools, the silo engine
            assert client.get(path, headers=headers).status_code == 200
        print("ready", flush=True)
        for line in sys.stdin:
            samples = []
            for _ in range(int(line.split()[1])):
                began = time.perf_counter()
                status = client.get(path, headers=headers).status_code
                samples.append((time.perf_counter() - began) * 1000)
                assert status == 200, status  # a refusal or an error would be a fast sample
            print(json.dumps(samples), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="checkout A (the baseline)")
    parser.add_argument("b", help="checkout B")
    parser.add_argument("path", help="the page, e.g. /t/acme/orders")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of four batches (ABBA or BAAB)")
    parser.add_argument("--batch", type=int, default=100, help="requests a batch")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(os.path.abspath(args.a), args.path)
    sides = {}
    for name, checkout in (("A", args.a), ("B", args.b)):
        sides[name] = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", os.path.abspath(checkout), "-", args.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.path.abspath(checkout))
    try:
        for side in sides.values():
            while side.stdout.readline().strip() != "ready":
                if side.poll() is not None:
                    sys.exit("a side failed to start")
        samples = {"A": [], "B": []}
        for round_number in range(args.rounds):
            for name in ("A", "B", "B", "A") if round_number % 2 == 0 else ("B", "A", "A", "B"):
                sides[name].stdin.write(f"run {args.batch}\n")
                sides[name].stdin.flush()
                samples[name] += json.loads(sides[name].stdout.readline())
    finally:
        for side in sides.values():
            side.stdin.close()
            side.wait()
    a, b = statistics.median(samples["A"]), statistics.median(samples["B"])
    print(f"{args.path}: A p50 {a:.3f} ms, B p50 {b:.3f} ms, B/A {b / a:.3f} "
          f"({len(samples['A'])} requests each; load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
