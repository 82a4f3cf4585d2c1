"""The results store: a versioned SQLite file of runs, results and findings.

``Store.open(path)`` (``None`` = the per-user default, ``":memory:"`` for tests),
``with store.run(kind, fingerprint(system)) as run: run.add_result(...)``, and
``export_runs`` / ``import_runs`` for moving runs between machines as JSON.
"""

from __future__ import annotations

from gpuscout.store.db import RunHandle, Store
from gpuscout.store.exchange import EXPORT_VERSION
from gpuscout.store.fingerprint import fingerprint
from gpuscout.store.paths import default_data_dir, default_db_path, resolve_db_path
from gpuscout.store.schema import SCHEMA_VERSION

__all__ = [
    "EXPORT_VERSION",
    "SCHEMA_VERSION",
    "RunHandle",
    "Store",
    "default_data_dir",
    "default_db_path",
    "fingerprint",
    "resolve_db_path",
]
