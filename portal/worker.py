"""An RQ worker for the portal's jobs: `python -m portal.worker` (`make run` starts one).

Jobs run in this process, one at a time (RQ's SimpleWorker: no fork, so the app and its
connection pools are made once). The scheduler runs too: purges after the retention
period are scheduled jobs. On start, jobs left `running` by a worker that died are marked
`interrupted`, so staff can retry them, and moves it left before their switch are rolled
back (their tenants work on their sources again).
"""
import logging
import signal
import sys

from rq import SimpleWorker

from portal import create_app
from portal.analytics import retention
from portal.extensions import db
from portal.lifecycle import moves
from portal.services import jobqueue


def main(burst=False):
    app = create_app()
    with app.app_context():
        interrupted = jobqueue.mark_stale_interrupted()
        if interrupted:
            logging.getLogger("portal").warning("%d job(s) were interrupted by a stopped worker", interrupted)
        rolled_back = moves.roll_back_interrupted()
        if rolled_back:
            logging.getLogger("portal").warning("%d move(s) interrupted by a stopped worker were rolled back",
                                                rolled_back)
        retention.schedule(retention.next_run())  # the daily expiry of old events, unless one waits
        # End the start-up's reads: else this session stays idle in a transaction for the
        # worker's whole life, holding its locks (a migration of registry.jobs would wait).
        db.session.remove()
        queue = jobqueue.queue()
        worker = SimpleWorker([queue], connection=queue.connection)
        jobqueue.in_app_override(app)
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main(burst="--burst" in sys.argv)
