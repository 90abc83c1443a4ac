"""Silo engines: one small engine per silo tenant, connected as the tenant's own role to
the tenant's database, kept in a bounded registry.

At most `max_engines` engines are open, and their pools together stay within
`budget` connections; the least recently used engine is disposed to make room.
"""
import threading
from collections import OrderedDict

from sqlalchemy import create_engine


class SiloEngines:
    def __init__(self, max_engines, pool_size, max_overflow, budget, on_create=None):
        per_engine = pool_size + max_overflow
        self.capacity = max(1, min(max_engines, budget // per_engine))
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.on_create = on_create
        self._engines = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, url, cap=None):
        """The engine for `key` (a tenant id) at `url`; made if not open. `cap` (the
        tenant's plan's database connections) bounds its pool further. The URL is part of
        the key: a tenant moved to another server gets an engine there at once."""
        key = self._key(key, url, cap)
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            while len(self._engines) >= self.capacity:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            pool_size = min(self.pool_size, cap) if cap else self.pool_size
            overflow = min(self.max_overflow, max(0, cap - pool_size)) if cap else self.max_overflow
            engine = create_engine(url, pool_size=pool_size, max_overflow=overflow, pool_pre_ping=True,
                                   pool_recycle=1800)
            if self.on_create:
                self.on_create(engine)
            self._engines[key] = engine
            return engine

    def existing(self, key, url, cap=None):
        """The engine `get` would return if it is open; else None (none is made, none closed)."""
        with self._lock:
            return self._engines.get(self._key(key, url, cap))

    @staticmethod
    def _key(key, url, cap):
        return key, url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url), cap

    def forget(self, tenant_id):
        with self._lock:
            engines = [self._engines.pop(k) for k in list(self._engines) if k[0] == tenant_id]
        for engine in engines:
            engine.dispose()

    def dispose_all(self):
        with self._lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        for engine in engines:
            engine.dispose()

    def __len__(self):
        return len(self._engines)
