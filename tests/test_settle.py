"""Stability decisions, with a fake clock: pure logic, no disk and no sleeps."""

from naskahd.settle import EARLY_FRACTION, Settler, Signature, Verdict

SIG = Signature(size=10, mtime_ns=1, ctime_ns=1, ino=7)
GROWN = Signature(size=20, mtime_ns=2, ctime_ns=2, ino=7)


def test_a_file_is_stable_only_after_settle_seconds_unchanged() -> None:
    s = Settler(2.0, 600)
    s.touch("a", SIG, now=0.0)
    assert s.due(1.9) == []
    (cand,) = s.due(2.0)
    assert s.observe(cand, SIG, 2.0) is Verdict.STABLE


def test_a_change_restarts_the_quiet_time_with_no_retry_limit() -> None:
    s = Settler(2.0, 600)
    s.touch("a", Signature(0, 0, 0, 1), now=0.0)
    now = 0.0
    for i in range(1, 500):  # keeps growing for 1000 s: watched the whole time, never given up
        now += 2.0
        (cand,) = s.due(now)
        assert s.observe(cand, Signature(i, i, i, 1), now) is Verdict.WAIT
    now += 2.0
    (cand,) = s.due(now)
    assert s.observe(cand, Signature(499, 499, 499, 1), now) is Verdict.STABLE


def test_an_event_with_an_unchanged_signature_keeps_the_clock() -> None:
    s = Settler(2.0, 600)
    s.touch("a", SIG, now=0.0)
    s.touch("a", SIG, now=1.5)  # e.g. close-after-write for a write already seen
    (cand,) = s.due(2.0)
    assert s.observe(cand, SIG, 2.0) is Verdict.STABLE


def test_an_event_with_a_new_signature_restarts_the_clock() -> None:
    s = Settler(2.0, 600)
    s.touch("a", SIG, now=0.0)
    s.touch("a", GROWN, now=1.5)
    assert s.due(2.0) == []
    (cand,) = s.due(3.5)
    assert s.observe(cand, GROWN, 3.5) is Verdict.STABLE


def test_incomplete_waits_then_gives_up_only_when_quiet_that_long() -> None:
    s = Settler(2.0, 10.0)
    s.touch("a", SIG, now=0.0)
    (cand,) = s.due(2.0)
    assert s.observe(cand, SIG, 2.0) is Verdict.STABLE
    assert s.incomplete(cand, "no %%EOF", 2.0) is Verdict.WAIT
    (cand,) = s.due(4.0)
    # It grew: the quiet time restarts, and so does the incomplete clock.
    assert s.observe(cand, GROWN, 4.0) is Verdict.WAIT
    (cand,) = s.due(6.0)
    assert s.observe(cand, GROWN, 6.0) is Verdict.STABLE
    assert s.incomplete(cand, "no %%EOF", 6.0) is Verdict.WAIT
    now = 6.0
    while True:
        (cand,) = s.due(now := s.next_due() or now)
        assert s.observe(cand, GROWN, now) is Verdict.STABLE
        verdict = s.incomplete(cand, "no %%EOF", now)
        if verdict is Verdict.GIVE_UP:
            break
    assert now == 14.0  # changed at 4.0 + incomplete_after 10.0


def test_failures_back_off_but_are_retried() -> None:
    s = Settler(1.0, 600)
    s.touch("a", SIG, now=0.0)
    (cand,) = s.due(1.0)
    delays = [s.retry_later(cand, 1.0) for _ in range(12)]
    assert delays == sorted(delays) and delays[-1] == 300.0
    assert s.next_due() is not None


def test_held_candidates_wait_for_the_next_touch() -> None:
    s = Settler(1.0, 600)
    s.touch("a", SIG, now=0.0)
    (cand,) = s.due(1.0)
    s.hold(cand)
    assert s.next_due() is None and s.due(100.0) == []
    s.touch("a", SIG, now=100.0)  # the periodic scan sees it again
    assert [c.relpath for c in s.due(100.0)] == ["a"]


def test_forgotten_candidates_do_not_surface() -> None:
    s = Settler(1.0, 600)
    s.touch("a", SIG, now=0.0)
    s.touch("b", SIG, now=0.0)
    s.forget("a")
    assert [c.relpath for c in s.due(5.0)] == ["b"]


def test_postpone_looks_again_later_and_keeps_the_quiet_time() -> None:
    """A due file already being taken by a batch in flight is looked at again later."""
    s = Settler(settle_seconds=2.0, incomplete_after_seconds=600)
    s.touch("a.pdf", SIG, now=0.0)
    (cand,) = s.due(2.0)
    s.postpone(cand, now=2.0)
    assert s.due(3.9) == [] and s.next_due() == 4.0
    assert s.due(4.0) == [cand]
    assert s.observe(cand, SIG, 4.0) is Verdict.STABLE  # its quiet time ran from 0.0


def test_a_quiet_file_is_offered_for_an_early_copy_once_before_it_is_due() -> None:
    s = Settler(4.0, 600)
    e = 4.0 * EARLY_FRACTION
    assert 0 < e < 4.0
    s.touch("a", SIG, now=0.0)
    assert s.next_early() == e
    assert s.early(e - 0.01) == []
    (cand,) = s.early(e)
    assert cand.relpath == "a" and cand.signature == SIG
    assert s.early(e + 0.5) == [] and s.next_early() is None
    s.touch("a", SIG, now=e + 0.5)  # an event for a write already seen: not offered again
    assert s.early(9.0) == []
    (due,) = s.due(4.0)  # the early offer does not move the due time
    assert s.observe(due, SIG, 4.0) is Verdict.STABLE


def test_a_change_before_the_offer_moves_it_and_a_change_after_it_means_no_second_offer() -> None:
    s = Settler(4.0, 600)
    e = 4.0 * EARLY_FRACTION
    s.touch("a", SIG, now=0.0)
    s.touch("a", GROWN, now=e - 0.5)  # still being written: the offer moves with the quiet time
    assert s.early(e) == [] and s.next_early() == 2 * e - 0.5
    assert [c.signature for c in s.early(2 * e - 0.5)] == [GROWN]
    # Written to again after its early copy: a slow writer. Copied when due, not again early.
    s.touch("a", SIG, now=2 * e)
    assert s.early(100.0) == [] and s.next_early() is None
    (due,) = s.due(2 * e + 4.0)
    assert s.observe(due, SIG, 2 * e + 4.0) is Verdict.STABLE
    # A change seen only when due (no event: polling, lost events) does not offer it either.
    s.touch("b", SIG, now=0.0)
    (cand,) = s.early(e)
    (due,) = s.due(4.0)
    assert s.observe(due, GROWN, 4.0) is Verdict.WAIT
    assert s.early(100.0) == []


def test_held_restarted_and_forgotten_candidates_are_not_offered_early() -> None:
    s = Settler(4.0, 600)
    for rel in ("held", "restarted", "gone"):
        s.touch(rel, SIG, now=0.0)
    s.hold(s.candidates["held"])
    s.restart(s.candidates["restarted"], now=0.5)  # signature unknown until it is looked at again
    s.forget("gone")
    assert s.early(3.9) == [] and s.next_early() is None


def test_no_early_offer_once_due_or_when_early_copies_are_off() -> None:
    s = Settler(4.0, 600)
    s.touch("late", SIG, now=0.0)
    assert s.early(5.0) == []  # looked at only after it was due (a long burst): copied when due
    assert s.next_early() is None
    s.early_fraction = None  # a polled network filesystem
    s.touch("polled", SIG, now=10.0)
    assert s.next_early() is None and s.early(100.0) == []
    assert [c.relpath for c in s.due(14.0)] == ["late", "polled"]  # both still taken when due
