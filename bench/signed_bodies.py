"""`python -m bench.signed_bodies --partner SLUG --site UUID --count N --output FILE`, run in a
portal stack's environment: N Destination callbacks signed with the partner's secret exactly as
RG signs them (the sandbox's own body and header builders), one per line for bench/wrk/post.lua:
"signature<TAB>timestamp<TAB>action<TAB>body". Every body is different (a new lead id and
timestamp each), so every request is a new callback to store, not a replay."""

import argparse
import itertools
import json
import time
import uuid
from pathlib import Path

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partner", required=True)
    parser.add_argument("--site", required=True, type=uuid.UUID)
    parser.add_argument("--count", required=True, type=int)
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()
    django.setup()

    from grants import destination
    from grants.models import Partner
    from sandbox.callbacks import callback_body, callback_headers

    partner = Partner.objects.get(slug=args.partner)
    secret = partner.webhook_secrets[0]
    # The lead events RG sends most of, in turn.
    actions = itertools.cycle([destination.LEAD_CREATED, destination.LEAD_UPDATED, destination.ACTIVITY_ADDED])
    with args.output.open("w") as out:
        for action in itertools.islice(actions, args.count):
            now_ns = time.time_ns()
            body = json.dumps(
                callback_body(action=action, partner=partner, site_uuid=args.site, lead_id=uuid.uuid4(), now_ns=now_ns),
                separators=(",", ":"),
            ).encode()
            headers = callback_headers(action=action, body=body, secret=secret, now_ns=now_ns)
            fields = (headers[destination.SIGNATURE_HEADER], headers[destination.TIMESTAMP_HEADER], action)
            out.write("\t".join(fields) + "\t" + body.decode() + "\n")


if __name__ == "__main__":
    main()
