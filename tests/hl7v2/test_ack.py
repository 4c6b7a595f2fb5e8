"""Acknowledgements: MSH/MSA echoing the message, ERR segments old and new receivers can read."""

from __future__ import annotations

import hl7

from ficus.hl7v2.ack import acknowledgement
from ficus.hl7v2.errors import ErrorLocation, Problem
from ficus.hl7v2.message import V2Message

MESSAGE = V2Message("MSH|^~\\&|APP|FAC|RCV|RFAC|20240101||ADT^A01^ADT_A01|C1|T|2.3\rPID|1")


def test_an_ack_answers_the_sender_with_its_control_id() -> None:
    ack = hl7.parse(acknowledgement(MESSAGE.header, "AA", "OK"))
    msh = ack.segment("MSH")
    assert [str(msh[n]) for n in (3, 4, 5, 6, 11, 12)] == ["RCV", "RFAC", "APP", "FAC", "T", "2.3"]
    assert str(msh[9]) == "ACK^A01^ACK"
    assert [str(f) for f in ack.segment("MSA")[1:4]] == ["AA", "C1", "OK"]


def test_each_problem_is_an_err_segment_with_code_location_and_text() -> None:
    problems = [Problem("102", "'x' is not a date | really", ErrorLocation("PID", 1, 7)),
                Problem("200", "stored, not mapped", None, "W")]
    text = acknowledgement(MESSAGE.header, "AE", "Stored, not applied", problems)
    segments = text.split("\r")
    assert segments[2] == ("ERR|PID^1^7^102&Data type error&HL70357|PID^1^7|102^Data type error^HL70357|E||||"
                           "PID-7: 'x' is not a date \\F\\ really")
    assert segments[3].startswith("ERR|^^^200&Unsupported message type&HL70357||200^Unsupported message type^HL70357|W|")
    ack = hl7.parse(text)
    assert ack.unescape(str(ack.segments("ERR")[0][8])) == "PID-7: 'x' is not a date | really"


def test_a_frame_without_a_header_gets_a_standard_ack() -> None:
    text = acknowledgement(None, "AR", "Rejected", [Problem("100", "no MSH")])
    ack = hl7.parse(text)
    assert str(ack.segment("MSA")[1]) == "AR" and str(ack.segment("MSA")[2]) == ""
    assert str(ack.segment("MSH")[9]) == "ACK"
