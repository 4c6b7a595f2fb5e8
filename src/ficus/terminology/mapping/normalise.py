"""Local and standard names brought to one vocabulary: the abbreviations lab and clinical feeds
use, specimen words, and units read as the kind of quantity they measure (a LOINC property).

Both sides of a comparison go through `tokens`, so `K SER` and `Potassium [Moles/volume] in
Serum or Plasma` meet on `potassium serpl`.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Multi-word phrases (matched on words, longest first) that fold into one token: specimens,
# culture types, "with/without", "unspecified".
_PHRASES = {
    "serum plasma or blood": "serpl bld", "serum or plasma or blood": "serpl bld", "ser / plas / bld": "serpl bld",
    "serum or plasma": "serpl", "ser / plas": "serpl", "serum / plasma": "serpl", "ser / pl": "serpl",
    "cerebral spinal fluid": "csf", "cerebrospinal fluid": "csf", "spinal fluid": "csf",
    "bronchoalveolar lavage": "bal", "broncho alveolar lavage": "bal",
    "red blood cells": "rbc", "red blood cell": "rbc", "red cells": "rbc", "red cell": "rbc",
    "white blood cells": "wbc", "white blood cell": "wbc",
    "arterial blood": "blda", "blood arterial": "blda", "art bld": "blda", "bld art": "blda",
    "venous blood": "bldv", "blood venous": "bldv", "ven bld": "bldv", "bld ven": "bldv",
    "capillary blood": "bldc", "blood capillary": "bldc", "cap bld": "bldc", "bld cap": "bldc",
    "cord blood": "bldco", "blood cord": "bldco", "whole blood": "bld",
    "breast milk": "mmlk", "human milk": "mmlk", "mother ' s milk": "mmlk", "mothers milk": "mmlk", "mother milk": "mmlk",
    "dialysate": "dialysis fld", "urine sediment": "urnsed", "urine sed": "urnsed", "body fluid": "fld",
    "anaerobe + aerobe": "aerobe anaerobe", "aerobic / anaerobic": "aerobe anaerobe", "aerobic and anaerobic": "aerobe anaerobe",
    "anaerobic / aerobic": "aerobe anaerobe", "aerobic & anaerobic": "aerobe anaerobe",
    "c & s": "culture", "c / s": "culture", "culture and sensitivity": "culture",
    "w / o": "without", "w /": "with",
    "site not specified": "unspecified", "not otherwise specified": "unspecified", "not specified": "unspecified",
    "unsp": "unspecified", "nos": "unspecified",
}
_PHRASE_WORDS = {tuple(phrase.split()): tuple(folded.split()) for phrase, folded in _PHRASES.items()}
_PHRASE_FIRST: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
for _words, _folded in sorted(_PHRASE_WORDS.items(), key=lambda item: -len(item[0])):
    _PHRASE_FIRST.setdefault(_words[0], []).append((_words, _folded))
_HOURS = re.compile(r"(\d+)(?:hours?|hrs?|h)")
_DURATION_WORDS = frozenset({"hour", "hours", "hr", "hrs", "h"})
_BRACKET = re.compile(r"\[[^\]]*\]")
_PARENTHESES = re.compile(r"\([^)]*\)")
_WORD = re.compile(r"[a-z0-9]+|[&/+']")
_PUNCTUATION = frozenset("&/+'")

# Abbreviations of lab and clinical feeds (and of LOINC short names) -> the word LOINC's long
# names use. A value with spaces expands to several tokens.
ABBREVIATIONS = {
    "k": "potassium", "pot": "potassium", "potass": "potassium", "kplus": "potassium",
    "na": "sodium", "cl": "chloride", "co2": "carbon dioxide", "hco3": "bicarbonate",
    "ca": "calcium", "mg": "magnesium", "phos": "phosphate", "po4": "phosphate",
    "glu": "glucose", "gluc": "glucose", "glucomtr": "glucometer", "bun": "urea nitrogen", "urea": "urea",
    "creat": "creatinine", "crea": "creatinine", "cr": "creatinine", "nit": "nitrogen",
    "hgb": "hemoglobin", "hb": "hemoglobin", "haemoglobin": "hemoglobin", "hct": "hematocrit",
    "plt": "platelets", "plts": "platelets", "cohgb": "carboxyhemoglobin", "cohb": "carboxyhemoglobin",
    "cortis": "cortisol", "acth": "corticotropin", "vit": "vitamin", "25oh": "25 hydroxyvitamin",
    "ser": "serpl", "serum": "serpl", "plasma": "serpl", "plas": "serpl", "pl": "serpl", "s": "serpl", "p": "serpl",
    "ur": "urine", "urn": "urine", "uri": "urine", "u": "urine", "ua": "urine", "urinalysis": "urine",
    "urns": "urnsed", "sediment": "urnsed",
    "bld": "bld", "blood": "bld", "wb": "bld", "bloo": "bld",
    "blda": "blda", "bldv": "bldv", "bldc": "bldc", "bldco": "bldco", "abg": "blda", "vbg": "bldv",
    "stl": "stool", "feces": "stool", "faeces": "stool", "fecal": "stool", "faecal": "stool",
    "spt": "sputum", "sput": "sputum", "wnd": "wound", "thrt": "throat", "thr": "throat",
    "snv": "synovial", "synv": "synovial", "syn": "synovial", "joint": "synovial",
    "plr": "pleural", "pleur": "pleural", "prt": "peritoneal", "perit": "peritoneal", "periton": "peritoneal",
    "gast": "gastric", "vitf": "vitreous", "vitr": "vitreous", "sal": "saliva", "smn": "semen",
    "cvx": "cervix", "vag": "vaginal", "urth": "urethra", "mar": "marrow", "tiss": "tissue", "bx": "biopsy",
    "ctp": "catheter tip", "cath": "catheter", "absc": "abscess", "amn": "amniotic", "amnio": "amniotic",
    "pcar": "pericardial", "pericard": "pericardial", "dial": "dialysis", "fld": "fld", "fl": "fld", "fluid": "fld",
    "venous": "bldv", "ven": "bldv", "arterial": "blda", "art": "blda", "capillary": "bldc", "cap": "bldc",
    "mmlk": "mmlk", "mother": "mmlk", "milk": "milk", "meter": "glucometer", "glucometer": "glucometer",
    "nasopharyngeal": "nasopharynx", "cervical": "cervix", "hcv": "hepatitis c virus", "hbv": "hepatitis b virus",
    "hiv": "hiv", "hsv": "herpes simplex virus", "cmv": "cytomegalovirus", "wnv": "west nile virus",
    "teg": "thromboelastography", "hba1c": "hemoglobin a1c", "a1c": "hemoglobin a1c", "tsh": "thyrotropin",
    "htn": "hypertension", "dm": "diabetes mellitus", "dm2": "type 2 diabetes mellitus",
    "t2dm": "type 2 diabetes mellitus", "dm1": "type 1 diabetes mellitus", "t1dm": "type 1 diabetes mellitus",
    "chf": "congestive heart failure", "copd": "chronic obstructive pulmonary disease", "uti": "urinary tract infection",
    "gerd": "gastro esophageal reflux disease", "afib": "atrial fibrillation", "ckd": "chronic kidney disease",
    "cad": "coronary artery disease", "mi": "myocardial infarction", "aki": "acute kidney failure",
    "oa": "osteoarthritis", "mdd": "major depressive disorder", "hld": "hyperlipidemia",
    "resp": "respiratory", "bronch": "bronchial", "nph": "nasopharynx", "np": "nasopharynx",
    "cx": "culture", "cult": "culture", "cul": "culture", "cultur": "culture", "cs": "culture",
    "aer": "aerobe", "aerob": "aerobe", "aerobic": "aerobe", "anaer": "anaerobe", "anaerob": "anaerobe",
    "anaerobic": "anaerobe", "anae": "anaerobe", "bact": "bacteria", "bacterial": "bacteria", "bacti": "bacteria",
    "micro": "microscopy", "microscopic": "microscopy", "ql": "presence", "qual": "presence",
    "qualitative": "presence", "screen": "presence", "qn": "quantitative", "quant": "quantitative",
    "cfu": "count", "ct": "count", "cnt": "count", "num": "count", "conc": "concentration",
    "identification": "identified", "id": "identified", "ident": "identified", "organism": "microorganism",
    "org": "microorganism", "orgs": "microorganism", "mic": "susceptibility", "susc": "susceptibility",
    "sens": "susceptibility", "sensitivity": "susceptibility", "ab": "antibody", "abs": "antibody",
    "antibodies": "antibody", "ag": "antigen", "cl24": "clearance", "clr": "clearance",
    "random": "", "rand": "", "lvl": "", "level": "", "levels": "", "test": "", "tst": "", "result": "",
    "value": "", "stat": "", "lab": "", "panel": "", "pnl": "", "timed": "", "total": "total",
}
# A candidate's "unspecified" costs nothing when the local name leaves the detail out.
FREE_TOKENS = frozenset({"unspecified"})
STOPWORDS = frozenset({"in", "of", "by", "the", "and", "or", "for", "to", "on", "from", "at", "an", "as"})

# Specimen tokens -> the specimen they name; arterial/venous/capillary/cord blood are blood too.
SPECIMENS = {
    "serpl": {"serpl"}, "bld": {"bld"}, "blda": {"bld", "art"}, "bldv": {"bld", "ven"}, "bldc": {"bld", "cap"},
    "bldco": {"bld", "cord"}, "urine": {"urine"}, "urnsed": {"urine", "sed"}, "csf": {"csf"}, "stool": {"stool"},
    "sputum": {"sputum"}, "wound": {"wound"}, "throat": {"throat"}, "synovial": {"synovial"},
    "pleural": {"pleural"}, "peritoneal": {"peritoneal"}, "gastric": {"gastric"}, "vitreous": {"vitreous"},
    "saliva": {"saliva"}, "semen": {"semen"}, "cervix": {"cervix"}, "vaginal": {"vaginal"},
    "urethra": {"urethra"}, "marrow": {"marrow"}, "tissue": {"tissue"}, "bal": {"bal"}, "rbc": {"rbc"},
    "sweat": {"sweat"}, "hair": {"hair"}, "water": {"water"}, "nose": {"nose"}, "pus": {"pus"},
    "abscess": {"abscess"}, "amniotic": {"amniotic"}, "pericardial": {"pericardial"}, "dialysis": {"dialysis"},
    "bile": {"bile"}, "eye": {"eye"}, "skin": {"skin"}, "nasopharynx": {"nasopharynx"}, "isolate": {"isolate"},
    "genital": {"genital"}, "milk": {"milk"}, "placenta": {"placenta"}, "sinus": {"sinus"}, "bone": {"bone"},
    "bronchial": {"bronchial"}, "mmlk": {"mmlk"}, "catheter": {"catheter"}, "mouth": {"mouth"}, "tpn": {"tpn"}, "fld": {"fld"},
}

# LOINC scale by property: what a result of that kind looks like.
QUANTITATIVE = frozenset({"SCnc", "MCnc", "NCnc", "ACnc", "CCnc", "MSCnc", "SRat", "MRat", "VRat", "SCnt", "MCnt",
                          "NFr", "MFr", "VFr", "SFr", "Naric", "Time", "Vol", "Sub", "Mass", "Vel", "Pres", "Temp",
                          "Titr", "Num", "Len", "Rto", "Ratio"})
ORDINAL = frozenset({"PrThr", "Susc", "Aper", "Imp", "Type"})
NOMINAL = frozenset({"Prid", "Find", "Type", "Imp"})

# The words of a LOINC long name's [bracket] -> its property.
PROPERTY_WORDS = {
    "moles/volume": "SCnc", "mass/volume": "MCnc", "#/volume": "NCnc", "units/volume": "ACnc",
    "enzymatic activity/volume": "CCnc", "mass or moles/volume": "MSCnc", "molecules/volume": "SCnc",
    "moles/time": "SRat", "mass/time": "MRat", "volume/time": "VRat", "moles/mass": "SCnt", "mass/mass": "MCnt",
    "#/area": "Naric", "presence": "PrThr", "molar amount": "Sub", "volume": "Vol", "mass": "Mass",
    "titer": "Titr", "susceptibility": "Susc", "identifier": "Prid", "type": "Type", "interpretation": "Imp",
    "time": "Time", "ratio": "Rto", "percent": "NFr", "#": "Num", "velocity": "Vel", "pressure": "Pres",
    "temperature": "Temp", "length": "Len",
}
_SHORT_SUFFIX = {
    "scnc": "SCnc", "mcnc": "MCnc", "ncnc": "NCnc", "acnc": "ACnc", "ccnc": "CCnc", "srate": "SRat",
    "mrate": "MRat", "vrate": "VRat", "scnt": "SCnt", "mcnt": "MCnt", "nfr": "NFr", "mfr": "MFr", "vfr": "VFr",
    "#/area": "Naric", "msrat": "SRat",
}


def words(text: str) -> list[str]:
    """Lower-case words (and the `& / + '` that phrases need), phrases folded, durations as `24h`."""
    raw = _WORD.findall(text.lower().replace("_", " "))
    found: list[str] = []
    position, end = 0, len(raw)
    while position < end:
        word = raw[position]
        phrases = _PHRASE_FIRST.get(word)
        if phrases:
            for phrase, folded in phrases:
                if tuple(raw[position:position + len(phrase)]) == phrase:
                    found.extend(folded)
                    position += len(phrase)
                    break
            else:
                found.append(word)
                position += 1
            continue
        if word[0].isdigit():
            if word.isdigit() and position + 1 < end and raw[position + 1] in _DURATION_WORDS:
                found.append(word + "h")
                position += 2
                continue
            hours = _HOURS.fullmatch(word)
            if hours:
                word = hours.group(1) + "h"
        found.append(word)
        position += 1
    return found


@lru_cache(maxsize=4096)
def tokens(text: str, drop_brackets: bool = False, drop_parentheses: bool = False) -> tuple[str, ...]:
    """The normalised tokens of a name, in order, abbreviations expanded, stop words dropped.
    `drop_brackets` leaves out a LOINC long name's [property]; `drop_parentheses` ICD's
    nonessential modifiers."""
    if drop_brackets and "[" in text:
        text = _BRACKET.sub(" ", text)
    if drop_parentheses and "(" in text:
        text = _PARENTHESES.sub(" ", text)
    found: list[str] = []
    for word in words(text):
        expanded = _EXPANDED.get(word)
        if expanded is None:
            expanded = _EXPANDED[word] = _expand(word)
        found.extend(expanded)
    return tuple(found)


_EXPANDED: dict[str, tuple[str, ...]] = {}


def _expand(word: str) -> tuple[str, ...]:
    """One word as tokens: punctuation and stop words dropped, abbreviations expanded, plurals
    made singular."""
    if word in _PUNCTUATION:
        return ()
    found = []
    for token in ABBREVIATIONS.get(word, word).split():
        token = _singular(token)
        if token and token not in STOPWORDS:
            found.append(token)
    return tuple(found)


def _singular(token: str) -> str:
    if len(token) > 4 and token.endswith("s") and not token.endswith(("ss", "us", "is", "sis")):
        return ABBREVIATIONS.get(token[:-1], token[:-1]) or token[:-1]
    return token


def specimens(found: tuple[str, ...]) -> frozenset[str]:
    """The specimen a name names (empty when it names none)."""
    keys: set[str] = set()
    for token in found:
        keys |= SPECIMENS.get(token, set())
    if "fld" in keys and len(keys) > 1:
        keys.discard("fld")  # "pleural fluid" names the pleural specimen
    return frozenset(keys)


def loinc_property(long_name: str, short_name: str | None) -> str | None:
    """The LOINC property of a term, read from its names: the long name's [bracket], else the
    short name's suffix (`-sCnc`), else `identified` for Prid."""
    bracket = re.search(r"\[([^\]]+)\]", long_name)
    if bracket and bracket.group(1).lower() in PROPERTY_WORDS:
        return PROPERTY_WORDS[bracket.group(1).lower()]
    if short_name and "-" in short_name:
        suffix = short_name.rsplit("-", 1)[1].lower()
        if suffix in _SHORT_SUFFIX:
            return _SHORT_SUFFIX[suffix]
    if " identified" in long_name.lower():
        return "Prid"
    if short_name and re.search(r"\bQl\b", short_name):
        return "PrThr"
    return None


def loinc_system_text(long_name: str) -> str:
    """The specimen part of a LOINC long name: what follows ` in ` (up to ` by `/` --`)."""
    match = re.search(r"\bin (.+?)(?: by | --|$)", _BRACKET.sub(" ", long_name))
    return match.group(1) if match else ""


def scale_of(prop: str | None) -> str | None:
    if prop is None:
        return None
    if prop in QUANTITATIVE:
        return "Qn"
    if prop == "PrThr":
        return "Ord"
    if prop in NOMINAL:
        return "Nom"
    return None


# -- units ----------------------------------------------------------------------------------------

_UNIT_ALIASES = {
    "meq/l": "meq/L", "mmol/l": "mmol/L", "mg/dl": "mg/dL", "g/dl": "g/dL", "ng/ml": "ng/mL", "pg/ml": "pg/mL",
    "ug/ml": "ug/mL", "ug/dl": "ug/dL", "mcg/dl": "ug/dL", "mcg/ml": "ug/mL", "iu/l": "[IU]/L", "u/l": "U/L",
    "k/ul": "10*3/uL", "x10e3/ul": "10*3/uL", "10^3/ul": "10*3/uL", "thou/ul": "10*3/uL", "x10e9/l": "10*9/L",
    "10^9/l": "10*9/L", "m/ul": "10*6/uL", "x10e6/ul": "10*6/uL", "sec": "s", "secs": "s", "seconds": "s",
    "min": "min", "mins": "min", "mmol/24h": "mmol/(24.h)", "mmol/24hr": "mmol/(24.h)", "mmol/d": "mmol/d",
    "mg/24h": "mg/(24.h)", "mg/24hr": "mg/(24.h)", "ml/min": "mL/min", "cfu/ml": "{CFU}/mL", "/hpf": "/[HPF]",
    "percent": "%", "pct": "%", "mmhg": "mm[Hg]", "ppm": "[ppm]",
}


def ucum_unit(unit: str) -> str:
    """A unit as feeds write it (`mEq/L`, `K/uL`, `sec`) in UCUM's spelling where we know it."""
    cleaned = unit.strip()
    return _UNIT_ALIASES.get(cleaned.lower().replace(" ", ""), cleaned)


def unit_property(unit: str) -> str | None:
    """The LOINC property a unit measures: `mmol/L` SCnc, `mg/dL` MCnc, `mmol/(24.h)` SRat, ...
    None when the unit says nothing we can read."""
    code = ucum_unit(unit)
    if not code:
        return None
    if code == "%":
        return "Fr"
    if code in ("s", "min", "h", "d"):
        return "Time"
    if "[HPF]" in code or "[LPF]" in code:
        return "Naric"
    if code in ("mm[Hg]",):
        return "Pres"
    numerator, _, denominator = code.partition("/")
    numerator = re.sub(r"\{[^}]*\}", "#", numerator).strip("()")
    kind = _quantity_kind(numerator)
    if not denominator:
        return {"S": "Sub", "M": "Mass", "V": "Vol"}.get(kind or "")
    per = _denominator_kind(denominator)
    if kind is None or per is None:
        return None
    if per == "volume":
        return {"S": "SCnc", "M": "MCnc", "N": "NCnc", "A": "ACnc", "C": "CCnc", "V": "VFr"}[kind]
    if per == "time":
        return {"S": "SRat", "M": "MRat", "V": "VRat", "N": "NRat", "A": "ARat", "C": "CRat"}[kind]
    return {"S": "SCnt", "M": "MCnt", "N": "NCnt", "A": "ACnt", "C": "CCnt", "V": "VCnt"}[kind]


def _quantity_kind(numerator: str) -> str | None:
    atom = re.sub(r"^[0-9.*^]+", "", numerator)  # 10*3, 10*9
    if atom in ("", "#") or numerator.startswith("10*"):
        return "N"
    if re.fullmatch(r"[munpfk]?(mol|eq)", atom):
        return "S"
    if re.fullmatch(r"[munpfk]?g", atom):
        return "M"
    if re.fullmatch(r"[mudc]?L", atom):
        return "V"
    if atom in ("U", "[IU]", "mU", "m[IU]", "u[IU]", "[arb'U]", "kU", "[iU]"):
        return "A" if "arb" in atom else "C"
    if atom in ("cells", "{cells}", "#"):
        return "N"
    return None


def _denominator_kind(denominator: str) -> str | None:
    denominator = denominator.strip("()")
    atom = re.sub(r"^[0-9.]+", "", denominator).lstrip(".")
    if re.fullmatch(r"[mudc]?L", atom):
        return "volume"
    if atom in ("h", "d", "min", "s", "wk"):
        return "time"
    if re.fullmatch(r"[munk]?g", atom):
        return "mass"
    return None


def property_matches(unit_prop: str, loinc_prop: str) -> bool:
    """Whether a unit's kind fits a LOINC property (`Fr` fits NFr/MFr/VFr/SFr; ACnc and CCnc
    are both "units per volume")."""
    if unit_prop == loinc_prop:
        return True
    if unit_prop == "Fr":
        return loinc_prop.endswith("Fr")
    pair = {unit_prop, loinc_prop}
    return pair in ({"ACnc", "CCnc"}, {"MSCnc", "SCnc"}, {"MSCnc", "MCnc"})
