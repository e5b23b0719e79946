"""`python -m bench.backlog --leads N --partner SLUG --site UUID`, run in a portal stack's
environment: accept N leads through the portal's own service, `leads.services.lead_submit`, the
one the push API calls, and print `{"leads": N, "seconds": S}` as JSON.

The delivery benchmarks build their backlog this way, with no worker running: it is the push
API's work without HTTP, several times faster than going through gunicorn, and each lead is
stored, and its worker hinted, exactly as a pushed one would be.
"""

import argparse
import json
import sys
import time
import uuid

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, required=True)
    parser.add_argument("--partner", required=True, help="The partner's slug.")
    parser.add_argument("--site", required=True, help="A site UUID granted to the partner.")
    args = parser.parse_args()
    django.setup()

    from bench.ingest import LEAD
    from grants.models import Partner
    from leads.models import Operation
    from leads.services import lead_submit

    partner = Partner.objects.get(slug=args.partner)
    site = uuid.UUID(args.site)
    started = time.monotonic()
    for _ in range(args.leads):
        lead_submit(
            partner=partner, site_uuid=site, operation=Operation.CREATE_LEAD, data={**LEAD, "id": str(uuid.uuid4())}
        )
    json.dump({"leads": args.leads, "seconds": time.monotonic() - started}, sys.stdout)


if __name__ == "__main__":
    main()
