"""Which received messages a mapper may claim: arrival order per patient (lane), merges in
order with everything, and what the structural check reads as a message's lane."""

from __future__ import annotations

from ficus.hl7v2.message import check_structure, patient_key
from ficus.hl7v2.store import in_lane_order

from .support import sample


def test_without_busy_messages_the_oldest_are_claimed_up_to_the_limit() -> None:
    assert in_lane_order([], [(1, "a"), (2, "b"), (3, "a"), (4, "c")], 3) == [1, 2, 3]


def test_a_lane_with_an_earlier_message_in_progress_waits_and_others_go_on() -> None:
    busy = [(5, "a")]
    assert in_lane_order(busy, [(6, "a"), (7, "b"), (8, "a"), (9, "c")], 10) == [7, 9]


def test_a_busy_message_only_holds_back_later_ones() -> None:
    # a message older than the busy one (its lease ran out and it was reclaimed) may go first
    assert in_lane_order([(5, "a")], [(3, "a"), (6, "b")], 10) == [3, 6]


def test_a_merge_waits_for_everything_before_it_and_holds_back_everything_after() -> None:
    assert in_lane_order([(1, "a")], [(2, "b"), (3, "*"), (4, "c")], 10) == [2]
    assert in_lane_order([], [(2, "b"), (3, "*"), (4, "c")], 10) == [2, 3, 4]
    assert in_lane_order([(3, "*")], [(4, "c"), (5, "d")], 10) == []
    assert in_lane_order([(1, "a")], [(2, "a"), (3, "b"), (4, "*"), (5, "c")], 10) == [3]


def test_the_lane_is_the_first_patient_identifier_or_a_merge() -> None:
    admit = sample("ADT-A01-01.hl7")
    assert patient_key(admit, check_structure(admit)) == "test1&2.16.1&HCD|PATID1234"
    merge = sample("ADT-A40-01.hl7")
    assert patient_key(merge, check_structure(merge)) == "*"
    no_patient = "MSH|^~\\&|A|B|||20240101||MFN^M02|1|P|2.5\rMFI|PRA"
    assert patient_key(no_patient, check_structure(no_patient)) == ""
    old_style = "MSH|^~\\&|A|B|||20240101||ADT^A08|1|P|2.3\rPID|1|X55^^^OLD"
    assert patient_key(old_style, check_structure(old_style)) == "OLD|X55"
