"""The terminology operations, registered with `ficus.operations`: ValueSet `$expand` and
`$validate-code`, CodeSystem `$lookup`, `$validate-code` and `$subsumes`, ConceptMap
`$translate`. Each works at type level (`[base]/ValueSet/$expand?url=...`) and on a stored
instance (`[base]/ValueSet/[id]/$expand`), by GET or POST. Importing this module registers them.
"""

from __future__ import annotations

from collections.abc import Callable

from ficus import fhirjson
from ficus.api.exchange import FhirResponse
from ficus.operations import Invocation, operation
from ficus.outcome import FhirError, operation_outcome
from ficus.terminology import conceptmaps, lookup
from ficus.terminology.context import Context
from ficus.terminology.expand import Expander
from ficus.terminology.issues import tx_error
from ficus.terminology.languages import parse_languages
from ficus.terminology.params import Inputs
from ficus.terminology.service import service_for
from ficus.terminology.validate import ValidateOptions, Validator, coding_inputs

R4 = "http://hl7.org/fhir/OperationDefinition/"


def _answer(handler: Callable[[Invocation, Inputs, Context], dict]) -> Callable[[Invocation], FhirResponse]:
    """Runs a handler with parsed inputs and a context (a FhirError it raises becomes the
    OperationOutcome answer, as for any interaction)."""

    def run(invocation: Invocation) -> FhirResponse:
        inputs = Inputs(invocation)
        context = service_for(invocation.interactions.repository).context(inputs.resources())
        return FhirResponse(200, handler(invocation, inputs, context))

    run.__doc__ = handler.__doc__
    return run


def _stored(invocation: Invocation) -> dict | None:
    if invocation.res_id is None or invocation.res_type is None:
        return None
    version = invocation.interactions.repository.read(invocation.res_type, invocation.res_id)
    return fhirjson.decode(version.content) if version.content else None


def _value_set(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    stored = _stored(invocation)
    if stored is not None:
        return stored
    given = inputs.get("valueSet")
    if isinstance(given, dict):
        return given
    url = inputs.text("url") or inputs.text("context")
    if not url:
        raise tx_error(400, "invalid", "invalid-data", "A value set is needed: give url, valueSet, or call the operation on a stored ValueSet")
    version = inputs.text("valueSetVersion")
    found = context.value_set(url, version)
    if found is None:
        url_text = url if "|" in url or not version else f"{url}|{version}"
        raise tx_error(
            404, "not-found", "not-found", f"A definition for the value Set '{url_text}' could not be found",
            message_id="Unable_to_resolve_value_Set_",
        )
    return found


@operation("expand", type_level=True, instance=True, resource_types=("ValueSet",), definition=R4 + "ValueSet-expand")
@_answer
def expand(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """ValueSet/$expand."""
    value_set = _value_set(invocation, inputs, context)
    return Expander(context, inputs.expand_options(value_set)).expand(value_set)


@operation("validate-code", type_level=True, instance=True, resource_types=("ValueSet",), definition=R4 + "ValueSet-validate-code")
@_answer
def validate_value_set(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """ValueSet/$validate-code."""
    return _validate_in_value_set(invocation, inputs, context)


@operation("batch-validate-code", type_level=True, instance=True, resource_types=("ValueSet",))
@_answer
def batch_validate(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """ValueSet/$batch-validate-code: one `validation` Parameters per request, each answered by
    the Parameters of `$validate-code` or the OperationOutcome of its failure; the call's own
    parameters (url, tx-resource, options) apply to every request that does not set them."""
    answers = []
    for request in inputs.all("validation"):
        parameters = request.get("parameter") if isinstance(request, dict) else None
        if not isinstance(parameters, list):
            raise tx_error(400, "invalid", "invalid-data", "Each validation must be a Parameters resource", "validation")
        try:
            answer = _validate_in_value_set(invocation, inputs.within(parameters), context)
        except FhirError as error:
            answer = operation_outcome(error.issues)
        answers.append({"name": "validation", "resource": answer})
    return {"resourceType": "Parameters", "parameter": answers}


def _validate_in_value_set(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    value_set = _value_set(invocation, inputs, context)
    expander = Expander(context, inputs.expand_options(value_set))
    codings, mode = coding_inputs(
        inputs.text("code"), inputs.text("system"), inputs.text("systemVersion"), inputs.text("display"),
        inputs.get("coding"), inputs.get("codeableConcept"),
    )
    validator = Validator(expander, _validate_options(inputs, value_set))
    given = inputs.get("codeableConcept")
    validator.codeable_concept = given if isinstance(given, dict) else None
    return validator.value_set(value_set, codings, mode)


@operation("validate-code", type_level=True, instance=True, resource_types=("CodeSystem",), definition=R4 + "CodeSystem-validate-code")
@_answer
def validate_code_system(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """CodeSystem/$validate-code."""
    stored = _stored(invocation)
    url = stored.get("url") if stored else inputs.text("url")
    version = inputs.text("version")
    if stored is not None:
        context.tx_resources.append(stored)
    codings, mode = coding_inputs(
        inputs.text("code"), url, version, inputs.text("display"), inputs.get("coding"), inputs.get("codeableConcept"),
    )
    options = _validate_options(inputs, None)
    options.system_version = version
    return Validator(Expander(context, inputs.expand_options()), options).code_system(codings, mode)


@operation("lookup", type_level=True, instance=True, resource_types=("CodeSystem",), definition=R4 + "CodeSystem-lookup")
@_answer
def lookup_code(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """CodeSystem/$lookup."""
    stored = _stored(invocation)
    coding = inputs.get("coding")
    code = inputs.text("code") or (coding.get("code") if isinstance(coding, dict) else None)
    system = inputs.text("system") or (coding.get("system") if isinstance(coding, dict) else None)
    version = inputs.text("version") or (coding.get("version") if isinstance(coding, dict) else None)
    if stored is not None:
        context.tx_resources.append(stored)
        system, version = stored.get("url"), stored.get("version")
    if not code:
        raise tx_error(400, "invalid", "invalid-data", "A code (or coding) is needed to look up", "code")
    properties = [p for p in inputs.all("property") if isinstance(p, str)]
    expander = Expander(context, inputs.expand_options())
    return lookup.lookup(expander, system or "", version, code, properties, inputs.languages())


@operation("subsumes", type_level=True, instance=True, resource_types=("CodeSystem",), definition=R4 + "CodeSystem-subsumes")
@_answer
def subsumes(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """CodeSystem/$subsumes."""
    stored = _stored(invocation)
    coding_a, coding_b = inputs.get("codingA"), inputs.get("codingB")
    code_a = inputs.text("codeA") or (coding_a.get("code") if isinstance(coding_a, dict) else None)
    code_b = inputs.text("codeB") or (coding_b.get("code") if isinstance(coding_b, dict) else None)
    system = inputs.text("system") or (coding_a.get("system") if isinstance(coding_a, dict) else None)
    version = inputs.text("version")
    if stored is not None:
        context.tx_resources.append(stored)
        system, version = stored.get("url"), stored.get("version")
    if not code_a or not code_b:
        raise tx_error(400, "invalid", "invalid-data", "Both codeA and codeB (or codingA and codingB) are needed")
    if isinstance(coding_a, dict) and isinstance(coding_b, dict) and coding_a.get("system") != coding_b.get("system"):
        raise tx_error(400, "invalid", "invalid-data", "codingA and codingB must be from the same code system")
    return lookup.subsumes(Expander(context, inputs.expand_options()), system or "", version, code_a, code_b)


@operation("translate", type_level=True, instance=True, resource_types=("ConceptMap",), definition=R4 + "ConceptMap-translate")
@_answer
def translate(invocation: Invocation, inputs: Inputs, context: Context) -> dict:
    """ConceptMap/$translate (R4 and R5 parameter names)."""
    stored = _stored(invocation)
    coding = inputs.get("coding") or inputs.get("sourceCoding")
    concept = inputs.get("codeableConcept") or inputs.get("sourceCodeableConcept")
    if isinstance(concept, dict) and not coding:
        codings = [c for c in concept.get("coding", []) if isinstance(c, dict)]
        coding = codings[0] if codings else None
    reverse = inputs.flag("reverse") or inputs.get("targetCode") is not None or inputs.get("targetCoding") is not None
    if reverse:
        target_coding = inputs.get("targetCoding") if isinstance(inputs.get("targetCoding"), dict) else None
        code = inputs.text("targetCode") or inputs.text("code") or (target_coding or coding or {}).get("code")
        system = inputs.text("targetSystem") or inputs.text("targetsystem") if inputs.text("targetCode") else inputs.text("system")
        request = conceptmaps.TranslateRequest(code or "", system or (target_coding or coding or {}).get("system"), reverse=True,
                                               source_system=inputs.text("sourceSystem") or inputs.text("source"))
    else:
        code = inputs.text("sourceCode") or inputs.text("code") or (coding or {}).get("code")
        system = inputs.text("sourceSystem") or inputs.text("system") or (coding or {}).get("system")
        request = conceptmaps.TranslateRequest(code or "", system, target_system=inputs.text("targetSystem") or inputs.text("targetsystem"))
    if not request.code:
        raise tx_error(400, "invalid", "invalid-data", "A code (sourceCode, code, coding or codeableConcept) is needed to translate")
    request.url = stored.get("url") if stored else inputs.text("url")
    request.version = inputs.text("conceptMapVersion")
    given = inputs.get("conceptMap")
    request.concept_map = stored or (given if isinstance(given, dict) else None)
    return conceptmaps.translate(context, request)


def _validate_options(inputs: Inputs, value_set: dict | None) -> ValidateOptions:
    languages = inputs.languages(value_set)
    if not languages and value_set and isinstance(value_set.get("language"), str):
        languages = parse_languages(value_set["language"])  # the value set's own language
    return ValidateOptions(
        languages=languages,
        lenient_display=inputs.flag("lenient-display-validation"),
        active_only=inputs.flag("activeOnly"),
        abstract_allowed=inputs.flag("abstract", True),
        infer_system=inputs.flag("inferSystem"),
        system_version=inputs.text("systemVersion"),
        membership_only=inputs.flag("valueset-membership-only"),
    )
