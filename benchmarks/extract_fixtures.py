"""One-off extraction of the labelled quotes in the domain notes into a project fixture file.

Usage: python benchmarks/extract_fixtures.py NOTES_DIR [OUT_PATH]

The project must never read the notes at run or test time, so this script is run once by hand
and its output (``tests/fixtures/labelled_quotes.yaml``) is committed. The notes label quotes
with draft ids; the tables below map them onto the canonical ids of ``reports/codebook.yaml``
(the codebook is binding where the two differ). Draft ids with no canonical counterpart keep
only the CMO role their source gives them, so the role scheme still sees them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CODEBOOK = ROOT / "reports" / "codebook.yaml"

LEARNING = "notes-learning-outcomes.md"
WELLBEING = "notes-wellbeing-and-programme.md"
THESIS = "notes-realist-thesis.md"

# Which schemes each source actually labels: an absent label only counts as a negative where
# the source coded that scheme at all (the wellbeing study never coded learning domains, ...).
SCORED = {
    LEARNING: ["cmo_role", "learning_domain", "factor", "phase"],
    WELLBEING: ["cmo_role", "cmo_element", "factor", "phase", "topic"],
    THESIS: ["cmo_role", "cmo_element"],
}

# Draft id -> canonical labels. Keys of each value: cmo_element (canonical CMO ids, whose
# codebook role is used), cmo_role (coarse role when no element fits), domain, factor
# ("ID:polarity"), phase, topic.
DRAFT: dict[str, dict[str, list[str]]] = {
    # notes-learning-outcomes §11/§12: mechanisms the mentoring offers
    "MX_SHARING_EXPERIENCE": {"cmo_element": ["M_SHARING_EXPERIENCE"]},
    "MX_NEUTRAL_SOUNDING_BOARD": {"cmo_role": ["RESOURCE"]},
    "MX_BROKERING_CONTACTS": {"cmo_role": ["RESOURCE"]},
    "MX_REFLECTIVE_DIALOGUE": {"cmo_element": ["M_CONVERSATIONS"]},
    "MX_AFFIRMATION_FEEDBACK": {"cmo_role": ["RESOURCE"]},
    "MX_AVAILABILITY": {"cmo_role": ["RESOURCE"]},
    "MX_EMOTIONAL_SUPPORT": {"cmo_element": ["C_DYAD_TRUST"]},
    "MX_CHALLENGE": {"cmo_element": ["C_DYAD_TRUST"]},
    "MX_RECIPROCITY": {"cmo_element": ["C_DYAD_VOLUNTARISM"]},
    "MX_QUESTIONING_UNLOCKING": {"cmo_element": ["M_DM_TECHNIQUES"]},
    # notes-wellbeing §2.4/§2.5 mechanisms
    "MX_EMPOWERER_NONDIRECTIVE": {"cmo_element": ["M_DM_EXPERTISE"]},
    "MX_LISTENING": {"cmo_element": ["M_DM_TECHNIQUES"]},
    # the canonical factor "Confidentiality / trust" names the same thing
    "MX_TRUST_CONFIDENTIALITY": {
        "cmo_element": ["C_DYAD_TRUST"],
        "factor": ["FAC_CONFIDENTIALITY_TRUST:helping"],
    },
    "MX_REAPPRAISAL": {"cmo_element": ["R_REFLECTION"]},
    "MX_REFLECTION": {"cmo_element": ["R_REFLECTION"]},
    "MX_ACTION_PLAN": {"cmo_element": ["R_DECISION_ACTION"]},
    "MX_REFERRAL_SPECIALIST": {"cmo_role": ["RESOURCE"]},
    "MX_COMMUNICATION": {"cmo_role": ["RESOURCE"]},
    "M_ENGAGEMENT": {"cmo_role": ["RESPONSE"]},
    "M_ENACTMENT": {"cmo_role": ["RESOURCE"]},
    "M_SUPPORT": {"cmo_role": ["RESOURCE"]},
    "M_INFORMAL_SKILLS_RELATIONSHIPS": {"cmo_role": ["RESOURCE"]},
    "M_COLLEGIATE_RELATIONSHIPS": {"cmo_role": ["RESPONSE"]},
    "M_RESPONSES_TO_THREATS": {"cmo_role": ["RESPONSE"]},
    # the paper tags it M but it reads as an outcome (notes §2.4 "also_outcome")
    "M_IMPACTS_ON_WELLBEING": {"cmo_role": ["OUTCOME"]},
    "M_MITIGATING_CONTEXT": {"cmo_role": ["RESPONSE"]},
    "M_ENHANCING_CULTURE_CARE": {"cmo_role": ["RESPONSE"]},
    "C_AVAILABILITY_ACCESS": {"cmo_role": ["CONTEXT"]},
    "C_RELATIONSHIP_ISSUES_FORMAL": {"cmo_role": ["CONTEXT"]},
    "C_WELLBEING_THREATS": {"cmo_role": ["CONTEXT"]},
    "C_PERCEPTIONS_CULTURE": {"cmo_role": ["CONTEXT"]},
    "CX_STIGMA_REMEDIAL": {"cmo_role": ["CONTEXT"], "factor": ["HIN_STIGMA:hindering"]},
    "CX_RECEIVED_VIEWS": {"cmo_role": ["CONTEXT"]},
    # 004 files "emphasis ... on mentoring and its value" under HR challenges
    "CX_VALUE_PLACED": {"cmo_role": ["CONTEXT"], "factor": ["HIN_HR_CHALLENGES:hindering"]},
    "CX_RESOURCES_TIME": {
        "cmo_element": ["C_ORG_SUPPORT"],
        "factor": ["FAC_PROTECTED_TIME:hindering"],
    },
    "BARRIER_PROTECTED_TIME": {"factor": ["FAC_PROTECTED_TIME:hindering"]},
    "BARRIER_MANAGER_COMMITMENT": {"factor": ["HIN_LINE_MGMT_PRIORITY:hindering"]},
    "SESSION_RESCHEDULED": {"factor": ["HIN_TIME_CONSTRAINTS:hindering"]},
    "PROG_TRAINING": {
        "cmo_element": ["M_NEW_KNOWLEDGE_LOCAL"],
        "factor": ["FAC_DESIGN_STRUCTURE:helping"],
    },
    "PROG_SHARED_ACTIVITIES": {"cmo_element": ["M_SHARING_EXPERIENCE", "C_DEV_NETWORKS"]},
    "T1_LEADERSHIP": {"factor": ["FAC_COORDINATOR_COMMITMENT:helping"]},
    "ROLE_PROGRAMME_LEAD": {"factor": ["FAC_COORDINATOR_COMMITMENT:helping"]},
    "OX_AGENCY": {"cmo_element": ["O_AGENCY"]},
    "OX_RESILIENCE": {"cmo_element": ["O_DEVELOPMENT_CHANGE"]},
    "OX_RESOURCEFULNESS": {"cmo_element": ["O_DEVELOPMENT_CHANGE"]},
    # "new knowledge and awareness" is part of the thesis's development-and-change definition
    "OX_SELF_AWARENESS": {"cmo_element": ["O_DEVELOPMENT_CHANGE"]},
    "OX_PATIENT_CARE": {"cmo_element": ["O_OPERATIONAL_CHANGE"]},
    # phases
    "PHASE_SIGNAL_INITIATION": {"phase": ["PH_BUILDING_RAPPORT"]},
    "PHASE_SIGNAL_CULTIVATION": {"phase": ["PH_PROGRESSION"]},
    "PHASE_SIGNAL_SEPARATION": {"phase": ["PH_WINDING_UP"]},
    "PHASE_SIGNAL_REDEFINITION": {"phase": ["PH_MOVING_ON"]},
    "PH_RAPPORT_TRUST": {"phase": ["PH_BUILDING_RAPPORT"]},
    "PH_CHEMISTRY_MEETING": {"phase": ["PH_BUILDING_RAPPORT"]},
    "PH_GOAL_SETTING": {"phase": ["PH_SETTING_DIRECTION"]},
    # factor ids renamed in the canonical codebook
    "FAC_COORDINATOR_TEAM_COMMITMENT": {"factor": ["FAC_COORDINATOR_COMMITMENT:helping"]},
    "FAC_PARTICIPANT_SATISFACTION_COMMITMENT": {"factor": ["FAC_PARTICIPANT_COMMITMENT:helping"]},
    # topics renamed or folded in the canonical codebook
    "TOPIC_ASSESSMENTS_EDUCATION": {"topic": ["TOPIC_EDUCATION_ASSESSMENT"]},
    "TOPIC_CAREER_CHOICE": {"topic": ["TOPIC_CAREER_DEVELOPMENT"]},
    "TOPIC_NEGATIVE_THOUGHTS_SUICIDAL": {"topic": ["TOPIC_SELF_HARM_RISK"]},
    "TOPIC_DEALING_WITH_ILLNESS": {"topic": ["TOPIC_PHYSICAL_HEALTH"]},
    "TOPIC_DEALING_WITH_INJURY": {"topic": ["TOPIC_PHYSICAL_HEALTH"]},
    "TOPIC_COPING_AFTER_INJURY_ILLNESS": {"topic": ["TOPIC_PHYSICAL_HEALTH"]},
    "TOPIC_RETURN_TO_WORK": {"topic": ["TOPIC_PHYSICAL_HEALTH"]},
}

# Draft ids that carry no label in the five schemes (qualifiers, interaction types, framework
# steps, BITC tags, role definitions ...). Listed so an unknown id fails loudly instead.
IGNORED_PREFIXES = (
    "ABOUT_", "ROLE_", "INT_", "BITC_", "GROW_", "PROMPT_", "CMO_", "T1_UNDERSTANDING",
    "T1_ENABLING",
)
IGNORED = {"EXPECTED", "UNEXPECTED", "FACILITATING", "HINDERING", "SAFETY_SIGNPOST",
           "TOPIC_MORALE"}

THESIS_AIMS = {
    "L&C": "O_LEARNING_CHANGE",
    "D&C": "O_DEVELOPMENT_CHANGE",
    "Operational": "O_OPERATIONAL_CHANGE",
    "Strategic": "O_STRATEGIC_CHANGE",
}

COARSE_ROLE = {
    "CONTEXT_ENABLING": "CONTEXT",
    "CONTEXT_INHIBITING": "CONTEXT",
    "RESOURCE": "RESOURCE",
    "RESPONSE": "RESPONSE",
    "OUTCOME_PROXIMAL": "OUTCOME",
    "OUTCOME_DISTAL": "OUTCOME",
}


def _yaml_block(text: str, heading: str) -> list[dict[str, Any]]:
    start = text.index(heading)
    block = re.search(r"```yaml\n(.*?)```", text[start:], re.S)
    if block is None:
        raise ValueError(f"no yaml block after {heading!r}")
    return list(yaml.safe_load(block.group(1))["fixtures"])


def _role_from_learning(role: str) -> str | None:
    return {"MENTEE": "mentee", "MENTOR": "mentor"}.get(role)


def _role_from_speaker_type(kind: str) -> str | None:
    kind = kind.lower()
    if kind.startswith(("coachee", "mentee")):
        return "mentee"
    if kind.startswith(("coach", "mentor", "interviewee (mentor)", "questionnaire")):
        # the 002 questionnaire went to trained mentors
        return "mentor"
    return None


class Mapper:
    def __init__(self, codebook: dict[str, Any]) -> None:
        self.elements: dict[str, dict[str, Any]] = codebook["cmo"]["elements"]
        self.domains = set(codebook["learning_domains"])
        self.helping = set(codebook["factors_helping"])
        self.hindering = set(codebook["factors_hindering"])
        self.phases = set(codebook["phases"])
        self.topics = set(codebook["topics"])

    def map_codes(self, codes: list[str]) -> dict[str, list[str]]:
        gold: dict[str, set[str]] = {k: set() for k in (
            "cmo_role", "cmo_element", "learning_domain", "factor", "phase", "topic")}
        polarity = None
        if "FACILITATING" in codes:
            polarity = "helping"
        if "HINDERING" in codes:
            polarity = "hindering"
        for code in codes:
            self._map_one(code, gold, polarity)
        for element in gold["cmo_element"]:
            gold["cmo_role"].add(COARSE_ROLE[self.elements[element]["role"]])
        # phases are proximal outcomes in the canonical framework
        if gold["phase"]:
            gold["cmo_role"].add("OUTCOME")
        return {k: sorted(v) for k, v in gold.items()}

    def _map_one(self, code: str, gold: dict[str, set[str]], polarity: str | None) -> None:
        if code in IGNORED or code.startswith(IGNORED_PREFIXES):
            return
        if code in DRAFT:
            for key, values in DRAFT[code].items():
                target = "learning_domain" if key == "domain" else key
                gold[target].update(values)
            if "factor" in DRAFT[code]:
                gold["cmo_role"].add("CONTEXT")
            return
        if code in self.elements:
            gold["cmo_element"].add(code)
        elif code in self.domains:
            gold["learning_domain"].add(code)
            gold["cmo_role"].add("OUTCOME")
        elif code.startswith(("COG_", "SKL_", "AFF_", "NET_")):
            prefix = code.split("_", 1)[0]
            gold["learning_domain"].add({"COG": "DOM_COGNITIVE", "SKL": "DOM_SKILL",
                                         "AFF": "DOM_AFFECTIVE",
                                         "NET": "DOM_SOCIAL_NETWORKS"}[prefix])
            gold["cmo_role"].add("OUTCOME")
        elif code in self.helping or code in self.hindering:
            pol = polarity or ("helping" if code in self.helping else "hindering")
            gold["factor"].add(f"{code}:{pol}")
            gold["cmo_role"].add("CONTEXT")
        elif code in self.phases:
            gold["phase"].add(code)
        elif code in self.topics:
            gold["topic"].add(code)
        elif code.startswith(("OUT_", "REL_", "OX_", "T2_", "O1_", "O2_", "O3_", "O4_")):
            gold["cmo_role"].add("OUTCOME")
        elif code.startswith(("C_", "CX_")):
            gold["cmo_role"].add("CONTEXT")
        else:
            raise KeyError(f"unmapped draft id {code}")


def _thesis_rows(text: str) -> list[dict[str, Any]]:
    start = text.index("#### 1.8.4")
    end = text.index("\n###", start + 10)
    rows = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or not cells[0].isdigit():
            continue
        number, participant, outcome, aims = cells[0], cells[1], cells[2], cells[3]
        quote = outcome.strip().strip('"').strip("“”")
        role = "mentee" if participant.lower().startswith("mentee") else "mentor"
        elements = sorted({THESIS_AIMS[a.strip()] for a in aims.split(",")})
        rows.append({
            "id": f"T000-{int(number):02d}",
            "source": THESIS,
            "section": f"1.8.4 configuration {number} ({participant})",
            "role": role,
            "text": quote,
            "draft_codes": [a.strip() for a in aims.split(",")],
            "scored": SCORED[THESIS],
            "gold": {
                "cmo_role": ["OUTCOME"],
                "cmo_element": elements,
                "learning_domain": [],
                "factor": [],
                "phase": [],
                "topic": [],
            },
        })
    return rows


def extract(notes_dir: Path) -> list[dict[str, Any]]:
    mapper = Mapper(yaml.safe_load(CODEBOOK.read_text(encoding="utf-8")))
    out: list[dict[str, Any]] = []
    learning = (notes_dir / LEARNING).read_text(encoding="utf-8")
    for fx in _yaml_block(learning, "## 14. Verbatim test fixtures"):
        if fx.get("role") == "INTERVIEWER":
            continue  # interview prompts are not participant entries
        out.append({
            "id": fx["id"],
            "source": LEARNING,
            "section": fx.get("section", ""),
            "role": _role_from_learning(fx.get("role", "")),
            "text": fx["text"],
            "draft_codes": list(fx["codes"]),
            "scored": SCORED[LEARNING],
            "gold": mapper.map_codes(list(fx["codes"])),
        })
    wellbeing = (notes_dir / WELLBEING).read_text(encoding="utf-8")
    for fx in _yaml_block(wellbeing, "## 9. Verbatim test fixtures"):
        out.append({
            "id": fx["id"],
            "source": WELLBEING,
            "section": fx.get("section", ""),
            "role": _role_from_speaker_type(fx.get("speaker_type", "")),
            "text": fx["text"],
            "draft_codes": list(fx["codes"]),
            "scored": SCORED[WELLBEING],
            "gold": mapper.map_codes(list(fx["codes"])),
        })
    out.extend(_thesis_rows((notes_dir / THESIS).read_text(encoding="utf-8")))
    return out


class _NoAliasDumper(yaml.SafeDumper):
    # shared `scored` lists would otherwise become &id anchors, which hurt readability
    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = """\
# Labelled quotes extracted once from the domain notes by benchmarks/extract_fixtures.py.
# Do not edit by hand: re-run the script (it reads the notes path given on its command line).
# `draft_codes` are the notes' own suggested labels; `gold` maps them onto canonical ids of
# reports/codebook.yaml per scheme. `scored` lists the schemes the source labels at all, so an
# empty gold list there means "labelled as absent". Factor labels are "ID:polarity".
# cmo_role is coarse: CONTEXT, RESOURCE, RESPONSE, OUTCOME (phases count as outcomes).
"""


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    notes_dir = Path(argv[1])
    out_path = Path(argv[2]) if len(argv) > 2 else ROOT / "tests" / "fixtures" / (
        "labelled_quotes.yaml")
    fixtures = extract(notes_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.dump({"version": 1, "fixtures": fixtures}, Dumper=_NoAliasDumper,
                     sort_keys=False, allow_unicode=True, width=1000)
    out_path.write_text(HEADER + body, encoding="utf-8")
    print(f"wrote {len(fixtures)} fixtures to {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
