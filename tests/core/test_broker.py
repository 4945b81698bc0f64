"""The embedded broker (filesystem transport with atomic writes) under concurrent producers and a
polling consumer: every message arrives whole, once."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

import mediarouter.celery  # noqa: F401 - registers the mrfs:// transport


def _connection(folder) -> Connection:
    # every folder under the test's own tmp_path: kombu's control_folder defaults to ./control,
    # which would write control/q.exchange into the working directory (the repository)
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder.parent / "control"),
        "store_processed": False,
    }
    return Connection("mrfs://", transport_options=options)


def test_concurrent_producers_and_a_consumer_see_whole_messages_once(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    producers, per_producer = 4, 150
    received: list[dict] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def produce(n: int) -> None:
        with _connection(folder) as conn:
            queue = conn.SimpleQueue("q")
            for i in range(per_producer):
                queue.put({"producer": n, "i": i, "padding": "x" * 2000})
            queue.close()

    def consume() -> None:
        try:
            with _connection(folder) as conn:
                queue = conn.SimpleQueue("q")
                while len(received) < producers * per_producer and not done.is_set():
                    try:
                        message = queue.get(block=True, timeout=0.01)
                    except queue.Empty:
                        continue
                    received.append(message.payload)
                    message.ack()
                queue.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    # The queue and its binding exist before anyone sends, as a worker declares its queue at start.
    # (kombu keeps declared bindings in process-wide state: a thread that finds the binding there
    # skips writing it, and would publish before another thread's exchange table is on disk.)
    with _connection(folder) as conn:
        conn.SimpleQueue("q").close()
    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    consumer.join(timeout=120)
    assert not consumer.is_alive(), f"consumer stuck after {len(received)} messages"
    done.set()
    assert not errors
    assert len(received) == producers * per_producer
    assert len({(m["producer"], m["i"]) for m in received}) == producers * per_producer
    assert not list(folder.glob("*.part"))
    # the exchange's binding went to the control folder given, not into the working directory
    assert (tmp_path / "control" / "q.exchange").exists()
    assert not (Path.cwd() / "control" / "q.exchange").exists()
