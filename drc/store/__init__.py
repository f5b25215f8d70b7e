"""The incident store: incidents, failures and availability history in SQLite or PostgreSQL.

``IncidentStore`` (``store.py``) reads and writes; ``availability.py`` turns what it returns
into availability figures and summaries without touching a database.
"""

from drc.store.errors import StoreError
from drc.store.store import IncidentStore, StoredReport

__all__ = ["IncidentStore", "StoreError", "StoredReport"]
