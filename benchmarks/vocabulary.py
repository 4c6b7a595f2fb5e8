"""Clinical vocabulary for the built-in generator: real LOINC and SNOMED CT codes, names, places.

Lab codes are listed most frequent first; the generator draws them with Zipf weights so a data
set has frequent, medium and rare Observation codes for token searches.
"""


def _words(text: str) -> list[str]:
    return text.split()


LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

# (code, display, UCUM unit, low, high, decimals)
VITALS = [
    ("8867-4", "Heart rate", "/min", 52, 110, 0),
    ("9279-1", "Respiratory rate", "/min", 11, 22, 0),
    ("8310-5", "Body temperature", "Cel", 36.0, 38.4, 1),
    ("29463-7", "Body weight", "kg", 8, 120, 1),
    ("8302-2", "Body height", "cm", 70, 198, 1),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 16, 42, 1),
    (
        "72514-3",
        "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        "{score}",
        0,
        10,
        0,
    ),
]
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure", 95, 170)
DIASTOLIC = ("8462-4", "Diastolic blood pressure", 55, 105)

LABS = [
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 65, 240, 0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 130, 290, 0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 9.5, 17.5, 1),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 10.5, 1),
    ("2571-8", "Triglycerides [Mass/volume] in Serum or Plasma", "mg/dL", 50, 320, 0),
    (
        "18262-6",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
        "mg/dL",
        60,
        210,
        0,
    ),
    ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 28, 90, 0),
    ("38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL", 0.5, 2.4, 2),
    ("6299-2", "Urea nitrogen [Mass/volume] in Blood", "mg/dL", 6, 40, 0),
    ("2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 132, 147, 0),
    ("6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 3.3, 5.4, 1),
    ("2069-3", "Chloride [Moles/volume] in Blood", "mmol/L", 96, 110, 0),
    ("20565-8", "Carbon dioxide, total [Moles/volume] in Blood", "mmol/L", 20, 31, 0),
    ("49765-1", "Calcium [Mass/volume] in Blood", "mg/dL", 8.4, 10.6, 1),
    ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 32, 52, 1),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3.5, 13, 1),
    ("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 3.6, 6.1, 2),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 140, 420, 0),
    ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", 25, 120, 0),
    (
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        7,
        80,
        0,
    ),
    (
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        8,
        70,
        0,
    ),
    (
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        35,
        160,
        0,
    ),
    ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.2, 2.1, 1),
    ("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 5.8, 8.5, 1),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.1, 5.2, 1),
    ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.3, 6.5, 2),
    ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL", 12, 400, 0),
    ("2498-4", "Iron [Mass/volume] in Serum or Plasma", "ug/dL", 40, 180, 0),
    ("1989-3", "25-Hydroxyvitamin D3 [Mass/volume] in Serum or Plasma", "ng/mL", 10, 70, 0),
    ("2132-9", "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma", "pg/mL", 180, 900, 0),
    ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL", 1.6, 2.6, 1),
    ("2777-1", "Phosphate [Mass/volume] in Serum or Plasma", "mg/dL", 2.4, 4.8, 1),
    ("5902-2", "Prothrombin time (PT)", "s", 10, 16, 1),
    ("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 0.8, 3.5, 1),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0.2, 60, 1),
    ("14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", "mg/g", 2, 300, 1),
    ("2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "ng/mL", 0.1, 9, 2),
    (
        "33762-6",
        "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma",
        "pg/mL",
        20,
        3000,
        0,
    ),
    ("10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/mL", 0.0, 2.0, 2),
    ("2500-7", "Iron binding capacity [Mass/volume] in Serum or Plasma", "ug/dL", 240, 450, 0),
]

# (code, display, weight: chance that a patient has it)
CONDITIONS = [
    ("38341003", "Hypertension", 0.30),
    ("55822004", "Hyperlipidemia", 0.22),
    ("44054006", "Diabetes mellitus type 2", 0.12),
    ("444814009", "Viral sinusitis", 0.25),
    ("195662009", "Acute viral pharyngitis", 0.20),
    ("10509002", "Acute bronchitis", 0.15),
    ("162864005", "Body mass index 30+ - obesity", 0.18),
    ("271737000", "Anemia", 0.08),
    ("195967001", "Asthma", 0.07),
    ("35489007", "Depressive disorder", 0.09),
    ("197480006", "Anxiety disorder", 0.08),
    ("233604007", "Pneumonia", 0.04),
    ("13645005", "Chronic obstructive lung disease", 0.04),
    ("49436004", "Atrial fibrillation", 0.03),
    ("53741008", "Coronary arteriosclerosis", 0.03),
    ("431855005", "Chronic kidney disease stage 1", 0.03),
    ("68496003", "Polyp of colon", 0.02),
    ("230690007", "Cerebrovascular accident", 0.01),
    ("254837009", "Malignant neoplasm of breast", 0.01),
]

# (class code, SNOMED type code, display, chance)
ENCOUNTERS = [
    ("AMB", "185349003", "Encounter for check up", 0.55),
    ("AMB", "185345009", "Encounter for symptom", 0.30),
    ("EMER", "50849002", "Emergency room admission", 0.10),
    ("IMP", "32485007", "Hospital admission", 0.05),
]

FAMILY_NAMES = _words("""
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
    Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson
    White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott
    Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter
    Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
    Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed
    Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray
    Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
""")
GIVEN_FEMALE = _words("""
    Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy
    Betty Sandra Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah
    Stephanie Rebecca Sharon Laura Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna
    Pamela Nicole Samantha Katherine Christine Helen Debra Rachel Carolyn Janet
""")
GIVEN_MALE = _words("""
    James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel
    Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy
    Ronald Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin
    Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank
""")
STREETS = [
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Pine Rd",
    "Washington Blvd",
    "Lake View Ct",
    "Hillside Ave",
    "Park Pl",
    "River Rd",
    "Sunset Dr",
]
CITIES = [
    ("Boston", "01990"),
    ("Worcester", "01601"),
    ("Springfield", "01101"),
    ("Cambridge", "02138"),
    ("Lowell", "01850"),
    ("Brockton", "02301"),
    ("Quincy", "02169"),
    ("Lynn", "01901"),
    ("New Bedford", "02740"),
    ("Salem", "01970"),
]
