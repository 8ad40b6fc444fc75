from tests.support.browser import browser_page  # noqa: F401
from tests.support.databases import database_url, keyed_gateway, master_key  # noqa: F401
