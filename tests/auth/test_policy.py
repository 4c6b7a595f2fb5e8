"""SmartPolicy at the decision point (unit level): which interaction needs which scope, and the
building blocks the read, search and write paths use for the patient compartment and granular
scopes."""

from __future__ import annotations

import pytest

from ficus.auth.errors import AuthError
from ficus.auth.policy import SearchRestriction, SmartPolicy
from ficus.outcome import FhirError
from ficus.policy import ANONYMOUS, Access, Caller

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.fixture(scope="module")
def policy() -> SmartPolicy:
    return SmartPolicy(base_url="http://localhost/fhir")


def caller(*scopes: str, patient: str | None = None, subject: str | None = "Practitioner/p1") -> Caller:
    return Caller(subject=subject, scopes=frozenset(scopes), patient=patient, client_id="app")


def allowed(policy: SmartPolicy, who: Caller, access: Access) -> bool:
    try:
        policy.authorize(who, access)
    except FhirError:
        return False
    return True


def observation(patient: str, category: str = "vital-signs", performer: str | None = None) -> dict:
    resource = {
        "resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
        "code": {"text": "x"}, "subject": {"reference": f"Patient/{patient}"},
    }
    if performer:
        resource["performer"] = [{"reference": performer}]
    return resource


@pytest.mark.parametrize(("scope", "interaction", "res_type", "res_id", "expected"), [
    ("user/Observation.rs", "read", "Observation", "1", True),
    ("user/Observation.rs", "vread", "Observation", "1", True),
    ("user/Observation.rs", "history-instance", "Observation", "1", True),
    ("user/Observation.rs", "search-type", "Observation", None, True),
    ("user/Observation.rs", "history-type", "Observation", None, True),
    ("user/Observation.r", "search-type", "Observation", None, False),
    ("user/Observation.s", "read", "Observation", "1", False),
    ("user/Observation.rs", "create", "Observation", None, False),
    ("user/Observation.c", "create", "Observation", None, True),
    ("user/Observation.u", "update", "Observation", "1", True),
    ("user/Observation.u", "patch", "Observation", "1", True),
    ("user/Observation.d", "delete", "Observation", "1", True),
    ("user/Observation.cruds", "read", "Patient", "1", False),
    ("user/Observation.read", "read", "Observation", "1", True),
    ("user/Observation.write", "update", "Observation", "1", True),
    ("user/Observation.write", "read", "Observation", "1", False),
    ("user/*.read", "read", "Encounter", "1", True),
    ("user/*.rs", "search-system", None, None, True),
    ("user/Observation.rs", "search-system", None, None, False),
    ("user/*.rs", "history-system", None, None, True),
    ("user/Observation.rs", "operation:everything", "Observation", "1", True),
    ("user/*.rs", "operation:reindex", None, None, False),
    ("system/*.cruds", "operation:reindex", None, None, True),
    ("user/Observation.rs", "unknown-interaction", "Observation", None, False),
    ("user/Observation.rs", "transaction", None, None, True),
])
def test_interaction_needs_its_letter(policy: SmartPolicy, scope: str, interaction: str, res_type, res_id, expected: bool) -> None:
    assert allowed(policy, caller(scope), Access(interaction, res_type, res_id)) is expected


def test_capabilities_are_public_and_everything_else_needs_a_token(policy: SmartPolicy) -> None:
    policy.authorize(ANONYMOUS, Access("capabilities"))
    with pytest.raises(AuthError) as raised:
        policy.authorize(ANONYMOUS, Access("read", "Patient", "1"))
    assert raised.value.status == 401
    assert "error=" not in raised.value.challenge


def test_insufficient_scope_is_403_with_challenge(policy: SmartPolicy) -> None:
    with pytest.raises(AuthError) as raised:
        policy.authorize(caller("user/Patient.rs"), Access("read", "Observation", "1"))
    assert raised.value.status == 403
    assert raised.value.issues[0].code == "forbidden"
    assert 'error="insufficient_scope"' in raised.value.challenge


def test_patient_scopes_need_a_patient_context(policy: SmartPolicy) -> None:
    assert not allowed(policy, caller("patient/*.rs"), Access("read", "Observation", "1"))
    assert allowed(policy, caller("patient/*.rs", patient="a"), Access("read", "Observation", "1"))


def test_patient_context_restricts_to_the_compartment(policy: SmartPolicy) -> None:
    who = caller("patient/*.cruds", patient="a")
    assert policy.visible(who, observation("a"))
    assert not policy.visible(who, observation("b"))
    assert policy.visible(who, observation("b", performer="Patient/a"))  # performer is a compartment link too
    assert policy.visible(who, {"resourceType": "Patient", "id": "a"})
    assert not policy.visible(who, {"resourceType": "Patient", "id": "b"})
    assert policy.visible(who, {"resourceType": "Patient", "id": "b", "link": [{"other": {"reference": "Patient/a"}, "type": "seealso"}]})
    assert policy.visible(who, {"resourceType": "Encounter", "id": "e", "subject": {"reference": "http://localhost/fhir/Patient/a"}})
    # another server's Patient/a is not our patient a (as the search index sees it too)
    assert not policy.visible(who, {"resourceType": "Encounter", "id": "e", "subject": {"reference": "http://elsewhere.example/fhir/Patient/a"}})
    assert not policy.visible(who, {"resourceType": "Encounter", "id": "e", "subject": {"reference": "#contained"}})
    with pytest.raises(AuthError) as raised:
        policy.check_resource(who, observation("b"), "u")
    assert raised.value.status == 403
    assert policy.search_restriction(who, "Observation") == SearchRestriction("a")
    assert policy.search_restriction(who, "*") == SearchRestriction("a")


def test_resources_outside_the_compartment(policy: SmartPolicy) -> None:
    who = caller("patient/*.cruds", patient="a")
    assert allowed(policy, who, Access("read", "Medication", "m"))  # shared reference data
    assert policy.visible(who, {"resourceType": "Medication", "id": "m"})
    assert policy.search_restriction(who, "Medication") is None
    assert not allowed(policy, who, Access("create", "Medication"))  # but not writable
    assert not allowed(policy, who, Access("read", "Task", "t"))  # other types: nothing


def test_user_scopes_are_unrestricted_unless_the_user_is_a_patient(policy: SmartPolicy) -> None:
    assert policy.visible(caller("user/*.rs"), observation("b"))
    assert policy.search_restriction(caller("user/*.rs"), "Observation") is None
    patient_user = caller("user/*.rs", subject="Patient/a")
    assert policy.visible(patient_user, observation("a"))
    assert not policy.visible(patient_user, observation("b"))
    assert policy.search_restriction(patient_user, "Observation") == SearchRestriction("a")


def test_granular_scopes(policy: SmartPolicy) -> None:
    who = caller(f"patient/Observation.rs?category={LAB}", patient="a")
    assert policy.visible(who, observation("a", "laboratory"))
    assert not policy.visible(who, observation("a", "vital-signs"))
    assert not policy.visible(who, observation("b", "laboratory"))
    assert policy.search_restriction(who, "Observation") == SearchRestriction("a", (("category", LAB),))
    broader = caller(f"patient/Observation.rs?category={LAB}", "patient/Observation.rs", patient="a")
    assert policy.visible(broader, observation("a", "vital-signs"))
    assert policy.search_restriction(broader, "Observation") == SearchRestriction("a")


def test_granular_scopes_on_one_parameter_combine_with_or(policy: SmartPolicy) -> None:
    vitals = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    who = caller(f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={vitals}", patient="a")
    restriction = policy.search_restriction(who, "Observation")
    assert restriction is not None and restriction.patient == "a"
    assert restriction.criteria == (("category", f"{LAB},{vitals}"),) or restriction.criteria == (("category", f"{vitals},{LAB}"),)


def test_granular_scopes_on_different_parameters_cannot_be_one_search(policy: SmartPolicy) -> None:
    who = caller(f"user/Observation.rs?category={LAB}", "user/Observation.rs?code=http://loinc.org|8867-4")
    with pytest.raises(FhirError) as raised:
        policy.search_restriction(who, "Observation")
    assert raised.value.status == 403


def test_token_values_without_system(policy: SmartPolicy) -> None:
    who = caller("user/Observation.rs?category=laboratory")
    assert policy.visible(who, observation("a", "laboratory"))
    assert not policy.visible(who, observation("a", "vital-signs"))


def test_unsupported_query_parameters_deny(policy: SmartPolicy) -> None:
    who = caller("user/Observation.rs?value-quantity=gt5")
    assert not policy.visible(who, observation("a"))


def test_stored_content_is_parsed_only_for_restricted_grants(policy: SmartPolicy) -> None:
    import json

    content = json.dumps(observation("b")).encode()
    assert not policy.needs_resource_check(caller("user/*.rs"), "Observation")
    policy.check_content(caller("user/*.rs"), "Observation", b"not json at all")  # never parsed
    patient_a = caller("patient/*.rs", patient="a")
    assert policy.needs_resource_check(patient_a, "Observation")
    assert not policy.visible_content(patient_a, "Observation", content)
    with pytest.raises(AuthError):
        policy.check_content(patient_a, "Observation", content)
    policy.check_content(patient_a, "Observation", None)  # a deletion has nothing to hide
