"""The state databases the tests run on: a SQLite file always, PostgreSQL when it answers.

``make setup`` starts a local PostgreSQL with role ``corral`` and database
``corral_test`` (scripts/start-postgres.sh); ``CORRAL_TEST_POSTGRES_URL``
names another. Each test gets a schema of its own there, named in the URL's
``search_path``, and dropped afterwards, so tests never see each other's
rows and a URL handed to another process reaches the same schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

DATABASES = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get(
    "CORRAL_TEST_POSTGRES_URL", "postgresql+psycopg://corral:corral@127.0.0.1:5432/corral_test"
)


@cache
def postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can (asked once)."""
    url = make_url(POSTGRES_URL)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
    except ImportError as error:
        return f"no PostgreSQL driver ({error}); pip install -e '.[postgresql]'"
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        where = url.render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return f"PostgreSQL at {where} does not answer ({reason}); make setup starts it"
    finally:
        engine.dispose()
    return None


@contextmanager
def state_url(kind: str, directory: Path) -> Iterator[str]:
    """The URL of an empty state database of ``kind``, removed when the block ends."""
    if kind == "sqlite":
        yield URL.create("sqlite", database=str(directory / "state.db")).render_as_string()
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema of the test database: the URL that works in it alone."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(make_url(POSTGRES_URL))
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
