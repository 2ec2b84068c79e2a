"""Test harness: a real swx server over real HTTP, on SQLite by default or on PostgreSQL.

Set ``SWX_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) to run the
suite against PostgreSQL; the schema ``public`` of that database is dropped and migrated afresh.

The fixtures live in ``tests/fixtures``; this file only registers them, here at the root, so that every
folder shares them -- the session-scoped server is started once for the whole run.
"""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.client",
    "tests.fixtures.parties",
    "tests.fixtures.intake",
    "tests.fixtures.declarations",
    "tests.fixtures.ledger",
    "tests.fixtures.mock_customs",
    "tests.fixtures.regulators",
    "tests.fixtures.messages",
    "tests.fixtures.registration",
]
