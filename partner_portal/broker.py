"""The development default's broker: kombu's filesystem transport, safe to share between processes.

`make run` needs no broker server: each message is a file in `PORTAL_VAR_DIR/broker/queue`.
kombu's own filesystem transport (5.5) is not safe for that with several processes:

- It writes a message file in place, under its final name, while a consumer lists the folder
  and takes files without the writer's lock; under a burst the worker reads a half-written
  message and dies (`Unrecoverable error: JSONDecodeError`).
- A consumer moves the file it takes to the system's temporary folder, often another file
  system, where a move is a copy that two consumers can both make.
- Each take lists and sorts the whole folder, about 20 ms with 10,000 messages waiting.
- Celery's worker loop for a transport like this one (`celery.worker.loops.synloop`) sends
  the acknowledgements of finished tasks only between waits of up to 2 s; with every pool
  process busy nothing more is taken, so the worker takes new work only every 2 s.

Here a message is written under a temporary name and renamed to its `.msg` name, so a `.msg`
file is always complete; a consumer claims one by renaming it in place (one consumer wins);
one listing feeds many takes; and the worker loop gets control back while its prefetch limit
is reached. `partner_portal/celery.py` makes this the transport of `filesystem://` URLs.

A message is only a hint: the database is the truth, and the sweeper republishes whatever a
lost message would have started. So a message that cannot be read is logged and dropped,
never a reason for the worker to stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any, Optional, cast

import kombu.transport.filesystem as filesystem
import kombu.transport.virtual as virtual
from kombu.exceptions import ChannelError  # type: ignore[attr-defined]  # (missing from kombu-stubs)
from kombu.utils import json as kombu_json

logger = logging.getLogger(__name__)

# kombu's JSON (it also encodes dates, UUIDs and decimals in headers), as kombu's transport uses;
# kombu-stubs give these functions wrong signatures.
dumps = cast(Callable[[Any], str], kombu_json.dumps)
loads = cast(Callable[[str], Any], kombu_json.loads)

MESSAGE_SUFFIX = ".msg"
# Files being written and files being read start with a dot and never end in MESSAGE_SUFFIX, so
# no consumer takes them for messages.
PARTIAL_SUFFIX = ".partial"
CLAIMED_SUFFIX = ".claimed"
# A writer or reader killed halfway leaves its file behind; older than this, it is removed.
LEFTOVER_SECONDS = 600.0
# While a consumer's prefetch limit is reached, the worker loop gets control back this often (so
# an acknowledgement waits at most this long; each round costs the idle worker about 0.25 ms).
PREFETCH_FULL_PAUSE_SECONDS = 0.02


def folder_options(root: Path, *, polling_interval: float = 0.2, store_processed: bool = False) -> dict[str, Any]:
    """The transport options for a broker folder under `root` (its queue, processed and control
    folders, made now if missing): the settings' development default, and the tests' brokers."""
    folders = {name: root / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": store_processed,
        # How often an idle consumer looks for new messages (seconds).
        "polling_interval": polling_interval,
    }


def message_filename(queue: str) -> str:
    """A new message file's name: wall-clock nanoseconds first, so names sort oldest first."""
    return f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}{MESSAGE_SUFFIX}"


def message_queue(filename: str) -> Optional[str]:
    """The queue a message file belongs to, or None when the file is not a message."""
    if filename.startswith(".") or not filename.endswith(MESSAGE_SUFFIX):
        return None
    _, dot, queue = filename[: -len(MESSAGE_SUFFIX)].partition(".")
    return queue if dot and queue else None


def _read_all(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Channel(filesystem.Channel):
    """kombu's filesystem channel with atomic writes, atomic claims and reads that never raise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Message names from the last listing, per queue, oldest first (see _pending).
        self._listed: dict[str, deque[str]] = {}
        self._listed_at = float("-inf")
        super().__init__(*args, **kwargs)

    # -- writing

    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:
        """Add a message to `queue`. It becomes visible to consumers whole, or not at all."""
        folder = self.data_folder_out
        filename = message_filename(queue)
        partial = os.path.join(folder, f".{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
        data = dumps(payload).encode()
        try:
            try:
                self._write_new(partial, data)
            except FileNotFoundError:  # the folder was removed while we run
                os.makedirs(folder, exist_ok=True)
                self._write_new(partial, data)
            # Atomic on POSIX: a consumer sees no file or the complete one.
            os.replace(partial, os.path.join(folder, filename))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add message file {filename!r} to {folder}: {exc}") from exc
        # Our own message is visible to our next take without waiting for a new listing.
        self._listed_at = float("-inf")

    @staticmethod
    def _write_new(path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    # -- reading

    def _get(self, queue: str) -> dict[str, Any]:
        """The oldest readable message of `queue`; raises Empty when there is none.

        Never raises anything else for a message: one that cannot be read or decoded is logged
        and dropped.
        """
        folder = self.data_folder_in
        pending = self._pending(queue)
        while pending:
            filename = pending.popleft()
            claimed = os.path.join(folder, f".{filename}{CLAIMED_SUFFIX}")
            try:
                # Renaming within the folder is atomic: of several consumers exactly one wins.
                os.rename(os.path.join(folder, filename), claimed)
            except OSError:  # another consumer took it (or it is gone): the next one
                continue
            payload = self._read_claimed(claimed, filename, queue)
            if payload is not None:
                return payload
        raise Empty()

    def _pending(self, queue: str) -> deque[str]:
        """Names of `queue`'s messages not yet tried, oldest first, from a recent listing.

        One listing serves every queue until that queue's names run out, and the folder is
        listed again at most once per polling interval: listing and sorting a folder with
        thousands of messages costs milliseconds, and a worker polls several queues. (A listing
        taken while files are renamed into the folder may miss one; the next listing has it.)
        """
        pending = self._listed.get(queue)
        interval = self.connection.polling_interval or 0.0
        if not pending and time.monotonic() - self._listed_at >= interval:
            self._list()
            pending = self._listed.get(queue)
        return pending if pending is not None else deque()

    def _list(self) -> None:
        folder = Path(self.data_folder_in)
        self._listed_at = time.monotonic()
        try:
            filenames = sorted(os.listdir(folder))
        except FileNotFoundError:  # the folder was removed while we run: it is empty
            folder.mkdir(parents=True, exist_ok=True)
            filenames = []
        listed: dict[str, deque[str]] = {}
        for filename in filenames:
            queue = message_queue(filename)
            if queue is not None:
                listed.setdefault(queue, deque()).append(filename)
            elif filename.endswith((PARTIAL_SUFFIX, CLAIMED_SUFFIX)):
                self._remove_if_left_over(folder / filename)
        self._listed = listed

    def _read_claimed(self, claimed: str, filename: str, queue: str) -> Optional[dict[str, Any]]:
        """The message in a file this consumer claimed, or None (logged) if it cannot be used."""
        try:
            data = _read_all(claimed)
        except OSError as exc:
            logger.error("Dropped broker message %s of queue %s: cannot read it (%s)", filename, queue, exc)
            return None
        finally:
            self._set_aside(claimed, filename)
        try:
            payload = loads(data.decode())
            # The same conversion the consumer makes, so a message that passes here cannot fail there.
            self.Message(payload, channel=self)
        except Exception as exc:  # whatever is wrong with it, the worker must go on
            logger.error(
                "Dropped broker message %s of queue %s: cannot decode its %d bytes (%s: %s); "
                "the sweeper publishes again whatever it asked for",
                filename,
                queue,
                len(data),
                type(exc).__name__,
                exc,
            )
            return None
        return payload

    def _set_aside(self, claimed: str, filename: str) -> None:
        """Remove a claimed file, or keep it in the processed folder when `store_processed` is set."""
        try:
            if self.store_processed:
                os.makedirs(self.processed_folder, exist_ok=True)
                os.replace(claimed, os.path.join(self.processed_folder, filename))
            else:
                os.unlink(claimed)
        except OSError as exc:  # left behind: removed later as a leftover
            logger.warning("Could not remove the claimed broker message %s: %s", claimed, exc)

    @staticmethod
    def _remove_if_left_over(path: Path) -> None:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            if time.time() - path.stat().st_mtime > LEFTOVER_SECONDS:
                path.unlink()
                logger.warning("Removed %s, left behind by a process that was killed", path.name)

    def _size(self, queue: str) -> int:
        try:
            return sum(1 for filename in os.listdir(self.data_folder_in) if message_queue(filename) == queue)
        except FileNotFoundError:
            return 0

    def _purge(self, queue: str) -> int:
        count = 0
        folder = Path(self.data_folder_in)
        with contextlib.suppress(FileNotFoundError):
            for filename in os.listdir(folder):
                if message_queue(filename) == queue:
                    with contextlib.suppress(FileNotFoundError):  # a consumer took it meanwhile
                        (folder / filename).unlink()
                        count += 1
        self._listed.pop(queue, None)
        return count

    # -- exchange tables (which queues an exchange routes to; shared by every process)

    def get_table(self, exchange: str) -> list[Any]:
        """The bindings of `exchange`. A missing or damaged table file is written again from the
        bindings this process declared, instead of routing every message nowhere."""
        path = self.control_folder / f"{exchange}.exchange"
        try:
            return [filesystem.exchange_queue_t(*row) for row in loads(path.read_bytes().decode())]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("Rewriting the broker's exchange table %s: cannot read it (%s)", path, exc)
        known = [filesystem.exchange_queue_t(*row) for row in self.state.exchanges.get(exchange, {}).get("table", [])]
        for row in known:
            self._queue_bind(exchange, *row)
        return known

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        """Add a binding to the exchange's table file; the file is replaced whole, never edited."""
        folder = self.control_folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{exchange}.exchange"
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        # Writers take turns on a lock file beside the table; readers need no lock.
        with open(folder / f"{exchange}.exchange.lock", "a") as lock_file:
            filesystem.lock(lock_file, filesystem.LOCK_EX)
            try:
                table = [filesystem.exchange_queue_t(*row) for row in loads(path.read_bytes().decode())]
            except (OSError, ValueError, TypeError):  # missing or damaged: start again
                table = []
            if binding in table:
                return
            table.insert(0, binding)
            partial = folder / f".{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
            partial.write_bytes(dumps(table).encode())
            os.replace(partial, path)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the Channel above, handing control back to Celery's
    worker loop while the worker's prefetch limit is reached."""

    Channel = Channel
    # Declared exchanges and bindings, per process (kombu's is shared with its own transport).
    global_state = virtual.BrokerState()

    def drain_events(self, connection: Any, timeout: Optional[float] = None) -> None:
        """Deliver one message; raise TimeoutError when none came within `timeout` seconds.

        Unlike kombu's, returns early (as a timeout) when a consumer's prefetch limit is
        reached: Celery's worker loop acknowledges finished tasks only between calls, so no
        message can be delivered until it gets control back.
        """
        started = time.monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise TimeoutError
            if timeout is not None and self._prefetch_full():
                time.sleep(PREFETCH_FULL_PAUSE_SECONDS)
                raise TimeoutError
            pause = self.polling_interval or 0.0
            if timeout is not None:
                pause = min(pause, timeout - waited)
            time.sleep(pause)

    def _prefetch_full(self) -> bool:
        return any(channel._consumers and not channel.qos.can_consume() for channel in self.channels)
