"""The development default's broker (partner_portal/broker.py) against kombu's own filesystem transport."""

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from queue import Empty
from typing import Any

import kombu
import pytest
from kombu.transport import filesystem

from partner_portal import broker
from partner_portal.celery import app as celery_app


def options(root: Path, **extra) -> dict:
    # store_processed: kombu's own transport would otherwise move files into the system's /tmp.
    return {**broker.folder_options(root, polling_interval=0.05, store_processed=True), **extra}


def connect(transport_options: dict, **kwargs: Any) -> Any:
    """A kombu connection (kombu-stubs know few of its attributes, hence Any)."""
    return kombu.Connection("filesystem://", transport_options=transport_options, **kwargs)


@pytest.fixture
def ours(tmp_path):
    with connect(options(tmp_path / "ours")) as conn:
        yield conn


@pytest.fixture
def stock(tmp_path):
    with connect(options(tmp_path / "stock"), transport="kombu.transport.filesystem:Transport") as conn:
        yield conn


def queue_folder(conn) -> Path:
    return Path(conn.transport_options["data_folder_in"])


def publish(conn, body: dict, queue: str = "tasks") -> None:
    q = kombu.Queue(queue, kombu.Exchange(queue, type="direct"), routing_key=queue)
    conn.Producer(serializer="json").publish(body, exchange=q.exchange, routing_key=queue, declare=[q])


def take(conn, queue: str = "tasks", timeout: float = 2.0) -> dict:
    """The next message's body from `queue`, taken with the channel's own polling."""
    channel = conn.default_channel
    deadline = time.monotonic() + timeout
    while True:
        message = channel.basic_get(queue, no_ack=True)
        if message is not None:
            return json.loads(message.body)
        assert time.monotonic() < deadline, f"no message in {queue!r} within {timeout} s"
        time.sleep(0.01)


def raw_message(conn, body: dict) -> bytes:
    """A message file's content, as a producer writes it."""
    channel = conn.default_channel
    payload = channel.prepare_message(json.dumps(body), content_type="application/json", content_encoding="utf-8")
    payload["properties"].update(delivery_tag="tag-1", delivery_info={"exchange": "tasks", "routing_key": "tasks"})
    payload["properties"]["body_encoding"] = "base64"
    payload["body"] = channel.encode_body(payload["body"], "base64")[0]
    return json.dumps(payload).encode()


# -- the bug, and that it is gone


def test_kombus_own_transport_hands_a_consumer_a_message_that_is_still_being_written(stock, monkeypatch):
    seen_mid_write: list[object] = []
    real_dumps = filesystem.dumps

    def consumer_runs_mid_write(payload):
        # kombu opens the message file under its final name before it serialises and writes it.
        try:
            seen_mid_write.append(stock.default_channel._get("tasks"))
        except Exception as exc:
            seen_mid_write.append(exc)
        return real_dumps(payload)

    monkeypatch.setattr(filesystem, "dumps", consumer_runs_mid_write)
    stock.default_channel._put("tasks", {"body": "x", "properties": {}})

    assert len(seen_mid_write) == 1
    assert isinstance(seen_mid_write[0], json.JSONDecodeError)


def test_kombus_own_consumer_raises_on_a_half_written_message_file(stock):
    channel = stock.default_channel
    whole = raw_message(stock, {"n": 1})
    (queue_folder(stock) / f"{int(time.monotonic() * 1000)}_half.tasks.msg").write_bytes(whole[: len(whole) // 2])

    with pytest.raises(json.JSONDecodeError):
        channel._get("tasks")


def test_a_message_being_written_is_invisible_to_consumers(ours, monkeypatch):
    seen_mid_write: list[object] = []
    real_replace = os.replace

    def consumer_runs_mid_write(source, target):
        # The message is written whole under its temporary name, and not renamed yet.
        if str(target).endswith(".msg"):
            assert Path(source).read_bytes().endswith(b"}")
            try:
                seen_mid_write.append(ours.default_channel._get("tasks"))
            except Exception as exc:
                seen_mid_write.append(exc)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", consumer_runs_mid_write)
    publish(ours, {"n": 1})

    assert [type(outcome) for outcome in seen_mid_write] == [Empty]
    assert take(ours) == {"n": 1}


def test_partial_files_are_ignored_and_left_to_their_writer(ours):
    whole = raw_message(ours, {"n": 1})
    partial = queue_folder(ours) / f".{'a' * 32}{broker.PARTIAL_SUFFIX}"
    partial.write_bytes(whole[:40])

    with pytest.raises(Empty):
        ours.default_channel._get("tasks")
    assert partial.read_bytes() == whole[:40]


def test_an_undecodable_message_is_logged_and_dropped_and_the_next_ones_still_arrive(ours, caplog):
    publish(ours, {"n": 1})
    folder = queue_folder(ours)
    whole = raw_message(ours, {"n": 2})
    # Sorts first: the oldest message in the queue.
    (folder / f"{0:020d}_half.tasks.msg").write_bytes(whole[: len(whole) // 2])
    (folder / f"{1:020d}_notkombu.tasks.msg").write_bytes(b'{"body": 1}')
    (folder / f"{2:020d}_list.tasks.msg").write_bytes(b"[1, 2]")
    publish(ours, {"n": 3})

    with caplog.at_level(logging.ERROR, logger="partner_portal.broker"):
        assert take(ours) == {"n": 1}
        assert take(ours) == {"n": 3}

    dropped = [record.getMessage() for record in caplog.records]
    assert len(dropped) == 3
    assert all(message.startswith("Dropped broker message 0000") for message in dropped)
    assert "JSONDecodeError" in dropped[0]
    assert not [name for name in os.listdir(folder) if name.endswith(".msg")]


def test_messages_arrive_in_the_order_they_were_published_queue_by_queue(ours):
    for n in range(50):
        publish(ours, {"n": n}, queue="even" if n % 2 == 0 else "odd")

    assert [take(ours, "odd")["n"] for _ in range(25)] == list(range(1, 50, 2))
    assert [take(ours, "even")["n"] for _ in range(25)] == list(range(0, 50, 2))
    with pytest.raises(Empty):
        ours.default_channel._get("even")


def test_a_message_published_by_another_process_is_seen_within_a_polling_interval(ours, tmp_path):
    with connect(ours.transport_options) as other:
        with pytest.raises(Empty):
            ours.default_channel._get("tasks")
        publish(other, {"n": 1})

        assert take(ours, timeout=0.5) == {"n": 1}


def test_each_message_goes_to_exactly_one_of_two_consumers(ours):
    for n in range(200):
        publish(ours, {"n": n})

    with connect(ours.transport_options) as other:
        taken: list[int] = []
        for _ in range(100):
            taken.append(take(ours)["n"])
            taken.append(take(other)["n"])

    assert sorted(taken) == list(range(200))


def test_the_processed_folder_keeps_taken_messages_only_when_asked(tmp_path):
    for store, expected in ((True, 1), (False, 0)):
        opts = options(tmp_path / str(store), store_processed=store)
        with connect(opts) as conn:
            publish(conn, {"n": 1})
            assert take(conn) == {"n": 1}
            assert len(os.listdir(opts["processed_folder"])) == expected
            assert os.listdir(opts["data_folder_in"]) == []


# -- missing folders and damaged files


def test_publishing_and_consuming_go_on_after_the_broker_folder_is_removed(ours):
    publish(ours, {"n": 1})
    assert take(ours) == {"n": 1}
    root = queue_folder(ours).parent
    shutil.rmtree(root)

    with pytest.raises(Empty):
        ours.default_channel._get("tasks")
    publish(ours, {"n": 2})

    assert take(ours) == {"n": 2}
    assert (root / "control" / "tasks.exchange").exists()


def test_a_damaged_exchange_table_is_written_again_from_the_bindings_this_process_declared(ours):
    publish(ours, {"n": 1})
    assert take(ours) == {"n": 1}
    table = Path(ours.transport_options["control_folder"]) / "tasks.exchange"
    table.write_bytes(b'[["tasks", "", "ta')

    publish(ours, {"n": 2})

    assert take(ours) == {"n": 2}
    assert json.loads(table.read_bytes()) == [["tasks", "", "tasks"]]


def test_files_left_by_killed_writers_and_readers_are_removed_once_old(ours):
    folder = queue_folder(ours)
    old_partial = folder / f".old{broker.PARTIAL_SUFFIX}"
    old_claimed = folder / f".old{broker.CLAIMED_SUFFIX}"
    new_partial = folder / f".new{broker.PARTIAL_SUFFIX}"
    for path in (old_partial, old_claimed, new_partial):
        path.write_bytes(b"{")
    long_ago = time.time() - broker.LEFTOVER_SECONDS - 60
    for path in (old_partial, old_claimed):
        os.utime(path, (long_ago, long_ago))

    with pytest.raises(Empty):
        ours.default_channel._get("tasks")

    assert sorted(os.listdir(folder)) == [new_partial.name]


def test_size_and_purge_count_only_the_queues_own_messages(ours):
    for n in range(3):
        publish(ours, {"n": n})
    publish(ours, {"n": 9}, queue="other")
    (queue_folder(ours) / f".x{broker.PARTIAL_SUFFIX}").write_bytes(b"{")
    channel = ours.default_channel

    assert channel._size("tasks") == 3
    assert channel._purge("tasks") == 3
    assert channel._size("tasks") == 0
    assert take(ours, "other") == {"n": 9}


def test_message_names_sort_by_time_and_name_their_queue():
    first, second = broker.message_filename("celery@host.celery.pidbox"), broker.message_filename("celery")

    assert first < second
    assert broker.message_queue(first) == "celery@host.celery.pidbox"
    assert broker.message_queue(second) == "celery"
    assert broker.message_queue(f".abc{broker.PARTIAL_SUFFIX}") is None
    assert broker.message_queue(f".abc{broker.CLAIMED_SUFFIX}") is None
    assert broker.message_queue("README") is None


# -- the worker loop


def test_draining_returns_at_once_while_the_prefetch_limit_is_reached(ours):
    publish(ours, {"n": 1})
    publish(ours, {"n": 2})
    received: list[kombu.Message] = []
    queue = kombu.Queue("tasks", kombu.Exchange("tasks", type="direct"), routing_key="tasks")
    with ours.Consumer([queue], callbacks=[lambda body, message: received.append(message)], prefetch_count=1):
        ours.drain_events(timeout=2)
        assert len(received) == 1

        # Celery's worker loop waits 2 s at a time and acknowledges only between waits.
        started = time.monotonic()
        with pytest.raises(socket.timeout):
            ours.drain_events(timeout=2)
        assert time.monotonic() - started < 0.5

        received[0].ack()
        ours.drain_events(timeout=2)
        assert len(received) == 2
        received[1].ack()


# -- wiring


def test_filesystem_urls_mean_our_transport_everywhere(settings):
    assert connect({}).get_transport_cls() is broker.Transport
    conn: Any
    with celery_app.connection_for_write("filesystem://") as conn:
        assert isinstance(conn.transport, broker.Transport)
