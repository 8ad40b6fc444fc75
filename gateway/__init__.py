"""A Portkey-compatible AI gateway."""

import sys

# httpx imports its command-line tool (rich, click, pygments: about 6 MB) whenever those
# happen to be installed; the gateway never runs it. A None entry makes that optional
# import fail, and httpx falls back as it does when they are absent.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
