from tests.support.databases import database_url, keyed_gateway, master_key  # noqa: F401
