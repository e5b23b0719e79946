"""`python -m bench.queries ...`, run in a portal stack's environment: the SQL one request
executes, each statement with its time, as JSON on stdout. The reports use it
to say what a request costs in database round trips, and to EXPLAIN the slowest statement.

    python -m bench.queries --path /leads/?q=x --user bench-admin          # a dashboard page
    python -m bench.queries --method POST --path /rest/... --header "Authorization: Basic ..." --body-file F

The request runs in-process through Django's test client, with the same settings and database
as the servers; it is repeated (`--repeat`) and the last, warm, run is reported.
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path")
    parser.add_argument("--user", default="", help="Sign in as this user first (dashboard pages).")
    parser.add_argument("--header", action="append", default=[], help="Name: value; repeat.")
    parser.add_argument("--body-file", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain-slowest", action="store_true")
    args = parser.parse_args()
    django.setup()

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = request(args)
    for _ in range(args.repeat - 1):
        call()  # warm: caches, prepared state, pages in PostgreSQL's buffers
    with CaptureQueriesContext(connection) as captured:
        status = call()
    timed = [(float(q["time"]) * 1000, str(q["sql"])) for q in captured.captured_queries]
    result: dict[str, Any] = {"status": status, "statements": [{"sql": text, "ms": ms} for ms, text in timed]}
    if args.explain_slowest and timed:
        slowest = max(timed)[1]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest)
            result["explain"] = {"sql": slowest, "plan": [row[0] for row in cursor.fetchall()]}
    json.dump(result, sys.stdout)


def request(args: argparse.Namespace) -> Callable[[], int]:
    """A function making the request once and returning its status."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    if args.user:
        client.force_login(get_user_model().objects.get(username=args.user))
    headers = {}
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    body = args.body_file.read_bytes() if args.body_file else b""

    def call() -> int:
        if args.method == "GET":
            return client.get(args.path, headers=headers).status_code
        return client.generic(
            args.method, args.path, body, content_type="application/json", headers=headers
        ).status_code

    return call


if __name__ == "__main__":
    main()
