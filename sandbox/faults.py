"""Fault injection for the sandbox's Incoming API: the settings (one row) and their effect on a request."""

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from sandbox import rows
from sandbox.models import SandboxFaults

FAULT_FIELDS = ("latency_ms", "error_rate", "outage", "hang_seconds", "html_errors", "remaining")


class FaultsForm(forms.ModelForm):
    class Meta:
        model = SandboxFaults
        fields = FAULT_FIELDS


@dataclass(frozen=True)
class Fault:
    """What the faults do to one request: wait, maybe answer with an error, maybe in HTML."""

    delay_seconds: float
    status: Optional[int]
    html_errors: bool
    label: str


def faults_current() -> SandboxFaults:
    faults, _ = SandboxFaults.objects.get_or_create(pk=1)
    return faults


def faults_as_dict(faults: SandboxFaults) -> dict[str, Any]:
    return {name: getattr(faults, name) for name in FAULT_FIELDS}


def faults_update(*, changes: Mapping[str, Any]) -> SandboxFaults:
    """The faults with `changes` applied; the others keep their values. ValidationError names a bad field."""
    unknown = sorted(set(changes) - set(FAULT_FIELDS))
    if unknown:
        raise ValidationError(f"Unknown fault setting: {', '.join(unknown)}. Known: {', '.join(FAULT_FIELDS)}.")
    faults = faults_current()
    for name, value in changes.items():
        setattr(faults, name, value)
    faults.updated = timezone.now()
    faults.full_clean()
    faults.save()
    return faults


def problems_text(error: ValidationError) -> str:
    """A ValidationError from `faults_update` as one line naming each bad setting."""
    if hasattr(error, "error_dict"):
        return " ".join(f"{name}: {' '.join(problems)}" for name, problems in error.message_dict.items())
    return " ".join(error.messages)


def faults_reset() -> SandboxFaults:
    """No faults: every request answered at once and as RG would."""
    faults = SandboxFaults(pk=1)
    faults.save()
    return faults


def fault_take() -> Optional[Fault]:
    """The fault to apply to one Incoming API request, counting it against `remaining`; None when none applies."""
    # Read on every request (a test or a person may change them at any moment, from any
    # process), so only the columns that decide, and no model built when nothing is active.
    values = rows.row(SandboxFaults, FAULT_FIELDS, where="id", equals=1)
    if values is None:
        return None
    faults = SandboxFaults(pk=1, **values)
    if not faults.is_active():
        return None
    if faults.remaining is not None:
        # A conditional UPDATE, so concurrent web processes never hand out more than `remaining`.
        if not SandboxFaults.objects.filter(pk=1, remaining__gt=0).update(remaining=F("remaining") - 1):
            return None
    status = None
    if faults.outage:
        status = 503
    elif random.random() < faults.error_rate:
        status = random.choice((500, 503))
    label = ", ".join(
        part
        for part, applies in (
            (f"latency {faults.latency_ms} ms", faults.latency_ms),
            (f"hang {faults.hang_seconds:g} s", faults.hang_seconds),
            ("outage" if faults.outage else f"error {status}", status),
            ("html errors", faults.html_errors),
        )
        if applies
    )
    return Fault(
        delay_seconds=faults.latency_ms / 1000 + faults.hang_seconds,
        status=status,
        html_errors=faults.html_errors,
        label=label,
    )
