"""Celery tasks of the core app."""

import socket

from celery import Task, shared_task

from core.health import worker_heartbeat_record


# Still registered under the name it had in the portal app, so that heartbeats already queued
# when a deployment upgrades are consumed, not refused as an unknown task.
@shared_task(bind=True, name="portal.tasks.heartbeat_record")
def heartbeat_record(self: Task) -> None:
    """Record that the worker running this is alive (scheduled by beat: CELERY_BEAT_SCHEDULE).

    Any one worker takes each beat message, so with several workers the row of each shows when
    it last took one; the newest row says whether any worker is consuming at all.
    """
    worker_heartbeat_record(hostname=self.request.hostname or socket.gethostname())
