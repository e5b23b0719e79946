"""How far the retention prune has got, so each run starts where the last one finished."""

from django.db import models
from django.utils import timezone


class PruneMark(models.Model):
    """One retention rule's progress (operations.retention).

    Every row the rule covers that is older than `reached` had its body pruned (or could not be:
    a callback still in flight, a grant email waiting for review). A run starts a little before
    it, so a row written late with an earlier time is still found.
    """

    rule = models.CharField(max_length=40, unique=True)
    reached = models.DateTimeField()
    updated = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.rule}: pruned up to {self.reached:%Y-%m-%d %H:%M}"
