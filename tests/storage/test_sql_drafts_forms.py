"""Team mode keeps shareable Compose forms (?form=<id>) in the database, so any server opens a shared link."""

from __future__ import annotations

from lib.compose.form import default_form
from lib.storage.sql import SqlDrafts, shared_engine


def test_a_form_saved_on_one_server_opens_on_another(database_url: str) -> None:
    pg_engine = shared_engine(database_url)
    form = default_form() | {"compose_prompt": "a red kite", "compose_mode": "pro"}
    SqlDrafts(pg_engine).save_form("abcDEF123456", form)
    opened = SqlDrafts(pg_engine).load_form("abcDEF123456")
    assert opened is not None and opened["compose_prompt"] == "a red kite" and opened["compose_mode"] == "pro"
    assert SqlDrafts(pg_engine).load_form("../../etc") is None and SqlDrafts(pg_engine).load_form("nope12345678") is None
