"""Reading v2 messages: regular fields over python-hl7, the header, digests, loose headers."""

from __future__ import annotations

import pytest

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.message import (
    V2Message,
    loose_header,
    message_digest,
    normalise_text,
    split_messages,
)

from .support import sample

TEXT = (
    "MSH|^~\\&|APP|FAC^1.2.3^ISO|RCV|RFAC|20240101120000||ADT^A01^ADT_A01|C1|P|2.5.1\r"
    "PID|1||123^^^HOSP^MR~456^^^OTHER||Doe&van^Jane^Q||19800101|F|||1 Main St^^Town\\T\\City\r"
    "NTE|1||line one\\.br\\line two"
)


def test_fields_have_one_shape_whatever_python_hl7_returns() -> None:
    pid = V2Message(TEXT).segment("PID")
    assert pid is not None
    assert [rep[1] for rep in pid.repetitions(3)] == ["123", "456"]
    assert pid.first(3).sub(4)[1] == "HOSP"
    assert pid.first(5).sub(1)[2] == "van"
    assert pid.value(8) == "F"
    assert pid.value(11, 3) == "Town&City"
    assert pid.repetitions(40) == [] and not pid.first(40)


def test_escape_sequences_are_read_once() -> None:
    nte = V2Message(TEXT).segment("NTE")
    assert nte is not None and nte.first(3).raw(1) == "line one\nline two"


def test_the_header_names_sender_event_and_control_id() -> None:
    header = V2Message(TEXT).header
    assert header.sender == "APP|FAC^1.2.3^ISO"
    assert header.event == "ADT^A01" and header.message_type == "ADT^A01^ADT_A01"
    assert (header.control_id, header.version, header.processing_id) == ("C1", "2.5.1", "P")


def test_files_with_a_byte_order_mark_and_newlines_are_normalised() -> None:
    text = "\ufeffMSH|^~\\&|A|B|||1||ADT^A01|1|P|2.3\nPID|1\n\n"
    assert normalise_text(text) == "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.3\rPID|1"
    assert V2Message(text).segments[1].name == "PID"
    assert V2Message(sample("ADT01-23.hl7")).header.control_id == "599102"


def test_the_digest_ignores_only_msh7() -> None:
    other_time = TEXT.replace("20240101120000", "20240101120500")
    assert message_digest(TEXT) == message_digest(other_time)
    assert message_digest(TEXT) != message_digest(TEXT.replace("Jane", "Joan"))


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("PID|1", "MSH", "does not start with an MSH segment"),
        ("MSH|^~\\&|A|B|||1|||1|P|2.5", "MSH-9", "message code and a trigger event"),
        ("MSH|^~\\&|A|B|||1||ADT^A01||P|2.5", "MSH-10", "control id"),
        ("MSH|^^\\&|A|B|||1||ADT^A01|1|P|2.5", "MSH-2", "distinct separator"),
        ("MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID1|x", "PID", "invalid name"),
    ],
)
def test_unreadable_messages_are_rejected_with_the_place(text: str, where: str, reason: str) -> None:
    with pytest.raises(V2Error) as raised:
        V2Message(text)
    assert raised.value.ack_code == "AR"
    assert reason in str(raised.value) and str(raised.value).startswith(where)


def test_a_loose_header_salvages_what_it_can() -> None:
    header = loose_header("MSH|^~\\&|APP|FAC|||1||ADT|C7|P|2.4\rPID|")
    assert header is not None and (header.control_id, header.sender, header.version) == ("C7", "APP|FAC", "2.4")
    assert loose_header("garbage") is None


def test_a_file_of_several_messages_is_split() -> None:
    assert len(split_messages(TEXT + "\r" + TEXT.replace("C1", "C2"))) == 2
