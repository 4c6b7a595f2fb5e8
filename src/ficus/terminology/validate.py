"""`$validate-code` against a value set or a code system: code, Coding or CodeableConcept.

Each coding is checked in turn: its system (known, absolute, not a value set), the version to
use (the value set's include, `force-`/`system-`/`check-system-version`, the coding's own),
the code, its display (in the requested language), its status, and its membership. The
answer is the Parameters resource of the R4 operation, with an OperationOutcome of issues.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ficus.outcome import FhirError, Issue
from ficus.terminology import versions
from ficus.terminology.expand import Expander, canonical, either
from ficus.terminology.issues import tx_error, tx_issue, tx_type
from ficus.terminology.languages import Languages, display_for, language_matches
from ficus.terminology.membership import Candidate, Membership
from ficus.terminology.model import CodeSystemProvider, Concept, Designation
from ficus.terminology.status import STANDARDS_STATUS, code_system_warnings, value_set_warnings

_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# Issues whose text does not go into the `message` output parameter.
_QUIET = frozenset({
    "UNKNOWN_CODE_IN_FRAGMENT",
    "this-code-not-in-vs", "status-check", "CONCEPT_DEPRECATED_IN_VALUESET", "INACTIVE_DISPLAY_FOUND",
    "CODE_CASE_DIFFERENCE", "VALUESET_VALUE_MISMATCH_DEFAULT",
})


@dataclass
class ValidateOptions:
    languages: Languages = field(default_factory=Languages)
    lenient_display: bool = False
    active_only: bool = False
    abstract_allowed: bool = True
    infer_system: bool = False
    system_version: str | None = None  # the `systemVersion` / `version` input
    membership_only: bool = False  # `valueset-membership-only`: report on membership alone


@dataclass
class Outcome:
    """What checking one coding found."""

    issues: list[Issue] = field(default_factory=list)
    system: str | None = None
    code: str | None = None
    version: str | None = None
    display: str | None = None
    concept: Concept | None = None
    in_value_set: bool = False
    unknown_system: str | None = None
    caused_by: str | None = None
    normalised: str | None = None

    @property
    def errors(self) -> bool:
        return any(i.severity in ("error", "fatal") for i in self.issues)


class Validator:
    def __init__(self, expander: Expander, options: ValidateOptions) -> None:
        self.expander = expander
        self.context = expander.context
        self.options = options
        self.membership = Membership(expander)
        self.codeable_concept: dict | None = None  # the CodeableConcept as given, echoed back

    # -- against a value set ------------------------------------------------------------------

    def value_set(self, value_set: dict, codings: list[dict], mode: str) -> dict:
        """`ValueSet/$validate-code`; `mode` is `code`, `Coding` or `CodeableConcept`."""
        vs_name = canonical(value_set) or "(unidentified)"
        self.membership.check_cycles(value_set)
        status_issues = self._status_issues(value_set)
        outcomes = [self._check(coding, _prefix(mode, i), value_set, vs_name) for i, coding in enumerate(codings)]
        if self.options.membership_only:
            for outcome in outcomes:  # what the code systems say of the codes (displays, unknown codes) is not asked
                outcome.issues = [i for i in outcome.issues if tx_type(i) == "not-in-vs"]
        issues: list[Issue] = []
        chosen: Outcome | None = None
        if mode == "CodeableConcept":
            for outcome in outcomes:
                issues.extend(
                    tx_issue("information", i.code, "this-code-not-in-vs", i.diagnostics, i.expression, i.message_id)
                    if tx_type(i) == "not-in-vs" else i
                    for i in outcome.issues
                )
            good = [o for o in outcomes if o.in_value_set]
            chosen = good[0] if good else None
            if chosen is None:
                issues.insert(0, tx_issue(
                    "error", "code-invalid", "not-in-vs", f"No valid coding was found for the value set '{vs_name}'",
                    message_id="TX_GENERAL_CC_ERROR_MESSAGE",
                ))
        else:
            chosen = outcomes[0]
            issues.extend(chosen.issues)
        issues = status_issues + issues
        result = not any(i.severity in ("error", "fatal") for i in issues) and (chosen is not None and chosen.in_value_set)
        report = chosen if chosen is not None else (outcomes[0] if outcomes and mode != "CodeableConcept" else None)
        return self._parameters(report, outcomes, issues, result, mode, codings)

    def _status_issues(self, value_set: dict) -> list[Issue]:
        """Information issues on draft, experimental, deprecated or withdrawn content used."""
        found: dict[str, Issue] = {}
        for kind, reference, warning in self._statuses(value_set, set()):
            text = f"Reference to {warning} {kind} {reference}"
            found.setdefault(text, tx_issue("information", "business-rule", "status-check", text, None, f"MSG_{warning.upper()}"))
        return list(found.values())

    def _statuses(self, value_set: dict, seen: set[str]) -> list[tuple[str, str, str]]:
        key = canonical(value_set) or value_set.get("id", "")
        if key in seen:
            return []
        seen.add(key)
        found = [("ValueSet", canonical(value_set), w) for w in value_set_warnings(value_set)]
        compose = value_set.get("compose") or {}
        for include in compose.get("include", []):
            if include.get("system"):
                provider = self.context.code_system(include["system"], include.get("version"))
                if provider is not None:
                    found.extend(("CodeSystem", provider.versioned_url, w) for w in code_system_warnings(provider))
            for reference in include.get("valueSet", []):
                imported = self.context.value_set(reference)
                if imported is not None:
                    found.extend(self._statuses(imported, seen))
        return found

    def _check(self, coding: dict, prefix: str, value_set: dict | None, vs_name: str) -> Outcome:
        outcome = Outcome(system=coding.get("system"), code=coding.get("code"))
        code = coding.get("code")
        system = coding.get("system")
        paths = _Paths(prefix)
        if not isinstance(code, str) or not code:
            outcome.issues.append(tx_issue("error", "invalid", "invalid-data", "No code provided", paths.code, "No_Code_Provided"))
            return outcome
        if not system:
            if self.options.infer_system and value_set is not None:
                system = self._infer(value_set, code, vs_name, outcome, paths)
                if system is None:
                    return outcome
                outcome.system = system
            else:
                if value_set is not None:
                    outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
                outcome.issues.append(tx_issue(
                    "warning", "invalid", "invalid-data",
                    "Coding has no system. A code with no system has no defined meaning, and it cannot be validated. A system should be provided",
                    paths.coding, "Coding_has_no_system__cannot_validate",
                ))
                return outcome
        if not _ABSOLUTE.match(system):
            if value_set is not None:
                outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
            outcome.issues.append(tx_issue(
                "error", "invalid", "invalid-data", "Coding.system must be an absolute reference, not a local reference",
                paths.system, "Terminology_TX_System_Relative",
            ))
            outcome.issues.append(tx_issue(
                "error", "not-found", "not-found",
                f"A definition for CodeSystem '{system}' could not be found, so the code cannot be validated",
                paths.system, "UNKNOWN_CODESYSTEM",
            ))
            outcome.unknown_system = system
            return outcome
        if self.context.code_system(system) is None and self.context.value_set(system) is not None:
            if value_set is not None:
                outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
            outcome.issues.append(tx_issue(
                "error", "invalid", "invalid-data", f"The Coding references a value set, not a code system ('{system}')",
                paths.system, "Terminology_TX_System_ValueSet2",
            ))
            return outcome
        provider = self._provider(system, coding, value_set, outcome, paths, vs_name)
        if provider is None:
            return outcome
        self._check_concept(provider, coding, code, value_set, vs_name, outcome, paths)
        return outcome

    def _infer(self, value_set: dict, code: str, vs_name: str, outcome: Outcome, paths: _Paths) -> str | None:
        systems: list[str] = []
        for entry in self._safe_codes(value_set):
            if entry.code == code and entry.system not in systems:
                systems.append(entry.system)
        if len(systems) == 1:
            return systems[0]
        outcome.issues.append(tx_issue(
            "error", "code-invalid", "not-in-vs", f"The provided code '#{code}' was not found in the value set '{vs_name}'",
            paths.code, "None_of_the_provided_codes_are_in_the_value_set_one",
        ))
        if systems:
            text = (f"The System URI could not be determined for the code '{code}' in the ValueSet '{vs_name}': "
                    f"value set expansion has multiple matches: [{', '.join(systems)}]")
            message_id = "Unable_to_resolve_system__value_set_has_multiple_matches"
        else:
            text = f"The System URI could not be determined for the code '{code}' in the ValueSet '{vs_name}'"
            message_id = "UNABLE_TO_INFER_CODESYSTEM"
        outcome.issues.append(tx_issue("error", "not-found", "cannot-infer", text, paths.code, message_id))
        return None

    def _safe_codes(self, value_set: dict) -> list:
        try:
            return self.expander.codes(value_set)
        except FhirError:
            return []

    def _include_version(self, value_set: dict | None, system: str) -> tuple[bool, str | None]:
        """Whether the value set names `system` directly, and the version its include gives."""
        if value_set is None:
            return False, None
        compose = value_set.get("compose") or {}
        for include in compose.get("include", []):
            if include.get("system") == system:
                return True, include.get("version")
        return False, None

    def _provider(
        self, system: str, coding: dict, value_set: dict | None, outcome: Outcome, paths: _Paths, vs_name: str,
    ) -> CodeSystemProvider | None:
        """The code system version to validate against, with the version issues found on the way.

        The version comes from `force-system-version`, else the value set's include, else
        `system-version` or `check-system-version` (these three "change" the version), else the
        coding's own version when the code system has it, else the latest.
        """
        options = self.expander.options
        named, include_version = self._include_version(value_set, system)
        coding_version = coding.get("version") or self.options.system_version
        force = options.force_versions.get(system)
        check = options.check_versions.get(system)
        if force:
            spec, changed = force, True
        elif include_version:
            spec, changed = include_version, False
        else:
            default = options.default_versions.get(system) or (check if value_set is not None else None)
            spec, changed = default, default is not None
        known = self.context.versions("CodeSystem", system)
        supplement = self.context.supplement(system) if self.context.code_system(system) is None else None
        if supplement is not None:
            outcome.issues.append(tx_issue(
                "error", "invalid", "invalid-data",
                f"CodeSystem {canonical(supplement)} is a supplement, so can't be used as a value in {paths.system_element}",
                paths.system, "CODESYSTEM_CS_NO_SUPPLEMENT",
            ))
            outcome.caused_by = system
            return None
        if not known and self.context.code_system(system) is None:
            return self._unknown_system(system, coding, value_set, named, outcome, paths, vs_name)
        coding_known = bool(coding_version) and (coding_version in known or (not known and self.context.code_system(system, coding_version) is not None))
        if spec:
            wanted = coding_version if coding_version and coding_known and versions.matches(spec, coding_version) else spec
        else:
            wanted = coding_version if coding_known else None
        supplements = self.expander.supplements_for(system, self.expander.value_set_supplements(value_set or {}))
        provider = self.context.code_system(system, wanted, supplements)
        if coding_version and value_set is not None:
            self._version_mismatch(system, spec, changed, include_version, provider, coding_version, coding_known, outcome, paths)
        if coding_version and not coding_known and not versions.is_wildcard(coding_version):
            outcome.issues.append(self._unknown_version(system, coding_version, known, paths))
            outcome.caused_by = f"{system}|{coding_version}"
        if provider is None:
            outcome.issues.append(self._unknown_version(system, wanted or "", known, paths))
            outcome.caused_by = f"{system}|{wanted}"
            outcome.in_value_set = True  # unknown: the value set cannot be checked, it is not "not in it"
            fallback = coding_version if coding_known else options.default_versions.get(system) or check
            latest = self.context.code_system(system, fallback) or self.context.code_system(system)
            concept = latest.concept(coding["code"]) if latest else None
            if latest is not None and concept is not None:
                outcome.version = latest.version
                outcome.display = display_for(concept, latest.language, self.options.languages).display
            return None
        if check and not versions.matches(check, provider.version):
            outcome.issues.append(tx_issue(
                "error", "exception", "version-error",
                f"The version '{provider.version}' is not allowed for system '{system}': required to be '{check}' by a version-check parameter",
                paths.version, "VALUESET_VERSION_CHECK",
            ))
        if provider.content == "supplement" or (provider.resource or {}).get("content") == "supplement":
            outcome.issues.append(tx_issue(
                "error", "invalid", "invalid-data",
                f"CodeSystem {provider.versioned_url} is a supplement, so can't be used as a value in Coding.system",
                paths.system, "CODESYSTEM_CS_NO_SUPPLEMENT",
            ))
            return None
        return provider

    @staticmethod
    def _version_mismatch(
        system: str, spec: str | None, changed: bool, include_version: str | None, provider: CodeSystemProvider | None,
        coding_version: str, coding_known: bool, outcome: Outcome, paths: _Paths,
    ) -> None:
        if spec:
            if versions.matches(spec, coding_version):
                return
            if changed:
                text = (f"The code system '{system}' version '{spec}' resulting from the version '{include_version or ''}' "
                        f"in the ValueSet include is different to the one in the value ('{coding_version}')")
                message_id = "VALUESET_VALUE_MISMATCH_CHANGED"
            else:
                text = f"The code system '{system}' version '{spec}' in the ValueSet include is different to the one in the value ('{coding_version}')"
                message_id = "VALUESET_VALUE_MISMATCH"
            outcome.issues.append(tx_issue("error", "invalid", "vs-invalid", text, paths.version, message_id))
        elif not coding_known and provider is not None:
            outcome.issues.append(tx_issue(
                "warning", "invalid", "vs-invalid",
                f"The code system '{system}' version '{provider.version}' for the versionless include in the ValueSet include is different to the one in the value ('{coding_version}')",
                paths.version, "VALUESET_VALUE_MISMATCH_DEFAULT",
            ))

    @staticmethod
    def _unknown_version(system: str, version: str, known: list[str], paths: _Paths) -> Issue:
        if known:
            text = (f"A definition for CodeSystem '{system}' version '{version}' could not be found, so the code cannot be validated. "
                    f"Valid versions: {either(known)}")
            message_id = "UNKNOWN_CODESYSTEM_VERSION"
        else:
            text = (f"A definition for CodeSystem '{system}' version '{version}' could not be found, so the code cannot be validated. "
                    "No versions of this code system are known")
            message_id = "UNKNOWN_CODESYSTEM_VERSION_NONE"
        return tx_issue("error", "not-found", "not-found", text, paths.system, message_id)

    def _unknown_system(
        self, system: str, coding: dict, value_set: dict | None, named: bool, outcome: Outcome, paths: _Paths, vs_name: str,
    ) -> None:
        version = coding.get("version") or self.options.system_version
        if version:
            if value_set is not None:
                outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
            outcome.issues.append(self._unknown_version(system, version, [], paths))
            outcome.unknown_system = system
            return
        if value_set is None or named:
            outcome.issues.append(tx_issue(
                "error", "not-found", "not-found",
                f"A definition for CodeSystem '{system}' could not be found, so the code cannot be validated",
                paths.system, "UNKNOWN_CODESYSTEM",
            ))
            outcome.caused_by = system
            return
        outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
        outcome.issues.append(tx_issue(
            "error", "not-found", "not-found",
            f"A definition for CodeSystem {system} could not be found, so the code cannot be validated",
            paths.system, "UNKNOWN_CODESYSTEM",
        ))
        outcome.unknown_system = system
        return

    def _check_concept(
        self, provider: CodeSystemProvider, coding: dict, code: str, value_set: dict | None, vs_name: str,
        outcome: Outcome, paths: _Paths,
    ) -> None:
        outcome.version = provider.version
        concept = provider.concept(code)
        if concept is None:
            if provider.content == "fragment":
                outcome.issues.append(tx_issue(
                    "warning", "code-invalid", "invalid-code",
                    f"Unknown Code '{code}' in the CodeSystem '{provider.url}' version '{provider.version}' - note that the code system "
                    "is labeled as a fragment, so the code may be valid in some other fragment",
                    paths.code, "UNKNOWN_CODE_IN_FRAGMENT",
                ))
                outcome.in_value_set = True
                return
            if value_set is not None:
                outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
            version_text = f" version '{provider.version}'" if provider.version else ""
            outcome.issues.append(tx_issue(
                "error", "code-invalid", "invalid-code",
                f"Unknown code '{code}' in the CodeSystem '{provider.url}'{version_text}",
                paths.code, "Unknown_Code_in_Version" if provider.version else "Unknown_Code_in",
            ))
            return
        outcome.concept = concept
        if concept.code != code:
            outcome.normalised = concept.code
            outcome.issues.append(tx_issue(
                "information", "business-rule", "code-rule",
                f"The code '{code}' differs from the correct code '{concept.code}' by case. Although the code system "
                f"'{provider.versioned_url}' is case insensitive, implementers are strongly encouraged to use the correct case anyway",
                paths.code, "CODE_CASE_DIFFERENCE",
            ))
        shown = display_for(concept, provider.language, self.options.languages)
        outcome.display = shown.display if shown.display is not None else concept.display
        in_vs = True
        if value_set is not None:
            try:
                in_vs = self.membership.contains(value_set, Candidate(provider.url, concept.code, provider))
            except FhirError as error:
                if error.status == 404:
                    outcome.issues.extend(_without_location(error.issues))
                    return
                raise
        if concept.inactive:
            status = concept.status if concept.status and concept.status not in ("active", "inactive") else None
            text = (f"The concept '{concept.code}' has a status of {status} and inactive and its use should be reviewed" if status
                    else f"The concept '{concept.code}' has a status of inactive and its use should be reviewed")
            outcome.issues.append(tx_issue("warning", "business-rule", "code-comment", text, paths.coding, "INACTIVE_CONCEPT_FOUND"))
            if self.options.active_only or (value_set is not None and (value_set.get("compose") or {}).get("inactive") is False):
                outcome.issues.append(tx_issue(
                    "error", "business-rule", "code-rule", f"The concept '{concept.code}' is valid but is not active",
                    paths.code, "STATUS_CODE_WARNING_CODE",
                ))
                in_vs = False
        elif concept.status == "deprecated":
            outcome.issues.append(tx_issue(
                "warning", "business-rule", "code-comment", f"The concept '{concept.code}' is deprecated and its use should be reviewed",
                paths.code, "DEPRECATED_CONCEPT_FOUND",
            ))
        if concept.abstract and not self.options.abstract_allowed:
            outcome.issues.append(tx_issue(
                "error", "business-rule", "code-rule",
                f"Code '{provider.url}#{concept.code}' is abstract, and not allowed in this context",
                paths.code, "ABSTRACT_CODE_NOT_ALLOWED",
            ))
            in_vs = False
        if value_set is not None and not in_vs:
            outcome.issues.append(self._not_in_vs(coding, vs_name, paths))
        if value_set is not None and in_vs and _deprecated_in(value_set, provider.url, concept.code):
            outcome.issues.append(tx_issue(
                "warning", "business-rule", "code-comment",
                f"The presence of the concept '{concept.code}' in the system '{provider.url}' in the value set {vs_name} "
                "is marked with a status of deprecated and its use should be reviewed",
                paths.code, "CONCEPT_DEPRECATED_IN_VALUESET",
            ))
        outcome.in_value_set = in_vs
        if coding.get("display") is not None:
            self._check_display(provider, concept, coding["display"], outcome, paths)

    def _check_display(self, provider: CodeSystemProvider, concept: Concept, given: str, outcome: Outcome, paths: _Paths) -> None:
        languages = self.options.languages
        choices = _display_choices(concept, provider.language, languages)
        if any(given == value for value, _ in choices):
            return
        if any(given == d.value for d in concept.designations if _retired(d)):
            shown = ", ".join(f'"{value}"' for value in dict.fromkeys(value for value, _ in choices))
            outcome.issues.append(tx_issue(
                "warning", "invalid", "display-comment",
                f"'{given}' is no longer considered a correct display for code '{concept.code}' (status = deprecated). "
                f"The correct display is one of {shown}.",
                paths.display, "INACTIVE_DISPLAY_FOUND",
            ))
            return
        if any(given.lower() == value.lower() for value, _ in choices) and not provider.case_sensitive:
            return
        all_choices = _display_choices(concept, provider.language, Languages())
        if languages and not choices and any(given == value for value, _ in all_choices):
            outcome.issues.append(tx_issue(
                "information", "invalid", "invalid-display",
                f"There are no valid display names found for the code {provider.url}#{concept.code} for language(s) '{', '.join(languages.tags)}'. "
                f"The display is '{given}' which is a valid display for the default language",
                paths.display, "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_OK",
            ))
            return
        severity = "warning" if self.options.lenient_display else "error"
        if _normalise_space(given) in {_normalise_space(value) for value, _ in choices}:
            text = f"Wrong whitespace in Display Name '{given}' for {provider.url}#{concept.code}. {_valid_displays(choices, languages)}"
            message_id = "Display_Name_WS_for__should_be_one_of__instead_of"
        elif languages and not choices:
            text = (f"Wrong Display Name '{given}' for {provider.url}#{concept.code}. There are no valid display names found for "
                    f"language(s) '{', '.join(languages.tags)}'. Default display is '{concept.display}'")
            message_id = "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_ERR"
        else:
            text = f"Wrong Display Name '{given}' for {provider.url}#{concept.code}. {_valid_displays(choices, languages)}"
            message_id = "Display_Name_for__should_be_one_of__instead_of"
        outcome.issues.append(tx_issue(severity, "invalid", "invalid-display", text, paths.display, message_id))

    def _not_in_vs(self, coding: dict, vs_name: str, paths: _Paths) -> Issue:
        system = coding.get("system") or ""
        version = coding.get("version")
        code = coding.get("code", "")
        label = f"{system}|{version}#{code}" if version else f"{system}#{code}"
        if coding.get("display"):
            label += f" ('{coding['display']}')"
        return tx_issue(
            "error", "code-invalid", "not-in-vs", f"The provided code '{label}' was not found in the value set '{vs_name}'",
            paths.code, "None_of_the_provided_codes_are_in_the_value_set_one",
        )

    # -- against a code system ----------------------------------------------------------------

    def code_system(self, codings: list[dict], mode: str) -> dict:
        """`CodeSystem/$validate-code`: the code must exist (and the display fit)."""
        outcomes = [self._check(coding, _prefix(mode, i), None, "") for i, coding in enumerate(codings)]
        issues = [issue for outcome in outcomes for issue in outcome.issues]
        good = [o for o in outcomes if o.concept is not None and not o.errors]
        chosen = good[0] if good else (outcomes[0] if outcomes else None)
        result = bool(good) and not any(i.severity in ("error", "fatal") for i in issues)
        return self._parameters(chosen, outcomes, issues, result, mode, codings)

    # -- output ------------------------------------------------------------------------------

    def _parameters(
        self, chosen: Outcome | None, outcomes: list[Outcome], issues: list[Issue], result: bool, mode: str, codings: list[dict],
    ) -> dict:
        parameters: list[dict] = []
        if chosen is not None:
            identified = mode != "CodeableConcept" or chosen.concept is not None
            if chosen.code and identified:
                parameters.append({"name": "code", "valueCode": chosen.code})
            if chosen.system and identified:
                parameters.append({"name": "system", "valueUri": chosen.system})
            if chosen.version and (chosen.concept is not None or chosen.display is not None):
                parameters.append({"name": "version", "valueString": chosen.version})
            if chosen.display:
                parameters.append({"name": "display", "valueString": chosen.display})
            if chosen.concept is not None and chosen.concept.inactive:
                parameters.append({"name": "inactive", "valueBoolean": True})
            if chosen.concept is not None and chosen.concept.status in ("retired", "deprecated", "withdrawn"):
                parameters.append({"name": "status", "valueCode": chosen.concept.status})
            if chosen.normalised:
                parameters.append({"name": "normalized-code", "valueCode": chosen.normalised})
        if mode == "CodeableConcept":
            parameters.append({"name": "codeableConcept", "valueCodeableConcept": self.codeable_concept or {"coding": codings}})
        for outcome in outcomes:
            if outcome.unknown_system:
                parameters.append({"name": "x-unknown-system", "valueCanonical": outcome.unknown_system})
            elif outcome.caused_by and outcome.caused_by.endswith("|None"):
                parameters.append({"name": "x-caused-by-unknown-system", "valueCanonical": outcome.caused_by[:-5]})
            elif outcome.caused_by:
                parameters.append({"name": "x-caused-by-unknown-system", "valueCanonical": outcome.caused_by})
        parameters.append({"name": "result", "valueBoolean": result})
        message = _message(issues)
        if message:
            parameters.append({"name": "message", "valueString": message})
        if issues:
            parameters.append({"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}})
        return {"resourceType": "Parameters", "parameter": parameters}


@dataclass(frozen=True)
class _Paths:
    prefix: str

    def _of(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    @property
    def code(self) -> str:
        return self._of("code")

    @property
    def system(self) -> str:
        return self._of("system")

    @property
    def system_element(self) -> str:
        return "Coding.system" if not self.prefix else f"{self.prefix}.system"

    @property
    def version(self) -> str:
        return self._of("version")

    @property
    def display(self) -> str:
        return self._of("display")

    @property
    def coding(self) -> str:
        return self.prefix or "code"


def _prefix(mode: str, index: int) -> str:
    if mode == "Coding":
        return "Coding"
    if mode == "CodeableConcept":
        return f"CodeableConcept.coding[{index}]"
    return ""


def _message(issues: list[Issue]) -> str | None:
    texts = [i.diagnostics for i in issues if (i.message_id not in _QUIET and tx_type(i) not in _QUIET)]
    loud = [i.diagnostics for i in issues if i.severity in ("error", "fatal", "warning") and i.message_id not in _QUIET and tx_type(i) not in _QUIET]
    chosen = loud or texts
    return "; ".join(dict.fromkeys(chosen)) if chosen else None


def _display_choices(concept: Concept, system_language: str | None, languages: Languages) -> list[tuple[str, str | None]]:
    """The displays valid for the requested languages: (text, language)."""
    found: list[tuple[str, str | None]] = []
    everything: list[tuple[str, str | None]] = []
    if concept.display:
        everything.append((concept.display, system_language))
    everything.extend((d.value, d.language or system_language) for d in concept.designations if _shows(d))
    if not languages:
        return everything
    for value, language in everything:
        if language is None or any(language_matches(tag, language) for tag in languages.tags):
            found.append((value, language))
    return found


# designation-usage `display`, preferredForLanguage, SNOMED CT's fully specified name and synonym
DISPLAY_USES = frozenset({"display", "preferredForLanguage", "900000000000003001", "900000000000013009"})


def _shows(designation: Designation) -> bool:
    """A designation is a valid display when it is a translation (it has a language) or has no
    use, or a display use; one with another use and no language is some other kind of term, and
    a deprecated or withdrawn one is no longer correct."""
    use = designation.use
    return not _retired(designation) and (designation.language is not None or not use or use.get("code") in DISPLAY_USES)


def _retired(designation: Designation) -> bool:
    return any(
        isinstance(e, dict) and e.get("url") == STANDARDS_STATUS and e.get("valueCode") in ("deprecated", "withdrawn")
        for e in designation.extensions
    )


def _valid_displays(choices: list[tuple[str, str | None]], languages: Languages) -> str:
    wanted = ", ".join(languages.tags) if languages else "--"
    unique = list(dict.fromkeys(choices))
    rendered = [f"'{value}'" + (f" ({language})" if language else "") for value, language in unique]
    if len(rendered) == 1:
        return f"Valid display is {rendered[0]} (for the language(s) '{wanted}')"
    return f"Valid display is one of {len(rendered)} choices: {' or '.join(rendered)} (for the language(s) '{wanted}')"


def _normalise_space(text: str) -> str:
    return " ".join(text.split())


def _without_location(issues: list[Issue]) -> list[Issue]:
    return [dataclasses.replace(issue, expression=None) for issue in issues]


def _deprecated_in(value_set: dict, system: str, code: str) -> bool:
    """Whether the value set lists the concept marked deprecated (valueset-deprecated or a
    deprecated standards status)."""
    compose = value_set.get("compose") or {}
    for include in compose.get("include", []):
        if include.get("system") != system:
            continue
        for item in include.get("concept", []):
            if not isinstance(item, dict) or item.get("code") != code:
                continue
            for extension in item.get("extension", []):
                url, value = extension.get("url"), next((v for k, v in extension.items() if k.startswith("value")), None)
                if url == "http://hl7.org/fhir/StructureDefinition/valueset-deprecated" and str(value).lower() == "true":
                    return True
                if url == STANDARDS_STATUS and value == "deprecated":
                    return True
    return False


def coding_inputs(code: Any, system: Any, version: Any, display: Any, coding: Any, concept: Any) -> tuple[list[dict], str]:
    """The codings to validate and the mode, from the operation's input parameters."""
    if isinstance(concept, dict):
        return [c for c in concept.get("coding", []) if isinstance(c, dict)], "CodeableConcept"
    if isinstance(coding, dict):
        return [coding], "Coding"
    if code is not None:
        found = {"code": code}
        if system:
            found["system"] = system
        if version:
            found["version"] = version
        if display is not None:
            found["display"] = display
        return [found], "code"
    raise tx_error(
        400, "invalid", None,
        "Unable to find code to validate (looked for coding | codeableConcept | code+system | code+inferSystem in parameters",
    )
