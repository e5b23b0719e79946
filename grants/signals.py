"""Signals other apps listen to, so grants never imports them."""

from django.dispatch import Signal

# Sent after the transaction that made a site sendable commits; kwargs: site.
# The leads app releases the deliveries it held for that site.
site_granted = Signal()
