"""The batch sender: items handed by callers go out from its thread, in order, several at a time
while a send is under way; a failing send or a full backlog never reaches the caller."""

import logging
import os
import threading

from market.core.sender import BatchSender


class Recorder:
    """A send that records each batch and, while ``gate`` is clear, waits for it."""

    def __init__(self):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, items):
        self.entered.set()
        assert self.gate.wait(10)
        self.batches.append(list(items))


def test_items_go_out_in_order_and_those_handed_during_a_send_go_together():
    send = Recorder()
    sender = BatchSender("test", send, batch=3)
    send.gate.clear()
    assert sender.put(1)
    assert send.entered.wait(5)  # the thread is sending [1] and waits at the gate
    for item in range(2, 7):
        assert sender.put(item)
    assert not sender.flush(timeout=0.05)  # a send under way: not everything is out
    send.gate.set()
    assert sender.flush()
    assert send.batches == [[1], [2, 3, 4], [5, 6]]


def test_a_failing_send_is_logged_and_later_items_still_go(caplog):
    sent = []

    def flaky(items):
        if 1 in items:
            raise ConnectionError("broker went away")
        sent.extend(items)

    sender = BatchSender("flaky", flaky)
    with caplog.at_level(logging.ERROR, logger="market.core.sender"):
        assert sender.put(1) and sender.flush()
        assert sender.put(2) and sender.flush()
    assert sent == [2]
    assert "flaky: 1 items not sent" in caplog.text


def test_a_full_backlog_drops_the_item_and_says_so(caplog):
    send = Recorder()
    sender = BatchSender("small", send, limit=2)
    send.gate.clear()
    assert sender.put("a") and send.entered.wait(5)  # taken by the thread: the backlog is empty again
    assert sender.put("b") and sender.put("c")
    with caplog.at_level(logging.WARNING, logger="market.core.sender"):
        assert not sender.put("d")
    assert "small: backlog of 2 full, 1 items dropped" in caplog.text
    send.gate.set()
    assert sender.flush()
    assert send.batches == [["a"], ["b", "c"]]


def test_a_forked_child_starts_empty_with_a_thread_of_its_own():
    """The parent's backlog (here stuck behind a send that waits) is not the child's to send: the
    child sends only what it was handed, from its own thread."""
    read_end, write_end = os.pipe()
    send = Recorder()
    sender = BatchSender("forked", send)
    send.gate.clear()
    assert sender.put("parent's, under way") and send.entered.wait(5)
    assert sender.put("parent's, waiting")
    pid = os.fork()
    if pid == 0:  # the child: report what its thread sent, then leave without pytest's teardown
        try:
            send.batches.clear()
            send.gate.set()
            sender.put("child's")
            ok = sender.flush(timeout=5)
            os.write(write_end, repr((ok, send.batches)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as report:
        assert report.read() == repr((True, [["child's"]]))
    assert os.waitstatus_to_exitcode(status) == 0
    send.gate.set()
    assert sender.flush()
    assert send.batches == [["parent's, under way"], ["parent's, waiting"]]
