"""`python -m tests.support.run_mock --port N`: the scripted mock upstream as a process."""

from __future__ import annotations

import argparse

import uvicorn

from tests.support.mock_upstream import MockUpstream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    uvicorn.run(MockUpstream().app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
