from tests.support.databases import database_url  # noqa: F401
