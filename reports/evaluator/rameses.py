"""The RAMESES II reporting standards for realist evaluations (Wong et al., BMC Medicine
2016): the 20 items, what this report supplies for each (with the section that holds it) and
what the evaluator must still write. The report is evidence for a realist evaluation, not the
evaluation itself: the items about purpose, design, ethics and interpretation are the
evaluator's."""

from __future__ import annotations

from typing import NamedTuple


class Item(NamedTuple):
    number: int
    title: str
    supplied: str  # what this report gives towards the item ("" for nothing)
    section: str | None  # the report section holding it
    to_write: str  # what the evaluator must add


ITEMS: tuple[Item, ...] = (
    Item(1, "Title", "", None,
         "Name the work as a realist evaluation in the title."),
    Item(2, "Summary or abstract", "A plain-language summary of what the data show.",
         "summary", "An abstract: purpose, design, methods, findings, conclusions."),
    Item(3, "Rationale for evaluation", "", None,
         "Why the programme is being evaluated, and for whom the answers matter."),
    Item(4, "Programme theory",
         "The initial programme theories as tagging rules, and how often configurations "
         "carry their ingredients.", "theories",
         "The initial programme theory in words and where it came from; how it was refined."),
    Item(5, "Evaluation questions, objectives and focus",
         "What works, for whom, in what circumstances: configurations with their contrast, "
         "compared across participant groups.",
         "configurations", "The questions this evaluation set out to answer, and its focus."),
    Item(6, "Ethical approval",
         "Consent per scope (only entries whose authors consent to evaluation), pseudonyms, "
         "masked quotes, no signposted or sensitive answer quoted.", "method",
         "The ethics approval, and how consent and confidentiality were handled beyond the bot."),
    Item(7, "Rationale for using realist evaluation", "", None,
         "Why a realist approach fits this programme and these questions."),
    Item(8, "Environment surrounding the evaluation",
         "Contexts as participants describe them: helping and hindering factors, inhibiting "
         "contexts.", "factors",
         "The organisations, sector and policy setting of the programme."),
    Item(9, "Describe the programme evaluated",
         "Its course as recorded: sessions, phases, waves and how pairs ended.", "phases",
         "Who runs it, its aims, matching, length, training and resources."),
    Item(10, "Describe and justify the evaluation design",
          "The design of the data: reflections, episode logs and check-in waves over time.",
          "method", "The evaluation design and why it suits the questions."),
    Item(11, "Data collection methods",
          "Flows and question sets, the waves (start, 3, 6, closing, follow-up), coders and "
          "their coverage.", "method",
          "Any interviews, documents or other data beside the bot's."),
    Item(12, "Recruitment process and sampling strategy",
          "Who is in the data: pairs, people by role, entries by flow.", "summary",
          "How participants were recruited, and who chose not to take part or consent."),
    Item(13, "Data analysis",
          "Coding layers, configurations (order and contrast), grades, phases, review "
          "agreement.", "method",
          "How the analysis moved between data and theory (retroduction), and who reviewed it."),
    Item(14, "Details of participants",
          "Counts by role; staff group, band, sector, years in role, cross-boundary match and "
          "own choice as groups of 5 or more people (smaller ones suppressed), from the "
          "optional questions at the starting check-in.",
          "for-whom", "Describe participants further, and who did not answer, in ways that do "
          "not identify them."),
    Item(15, "Main findings",
          "CMO configurations with contrast, change over time, goal attainment and negative "
          "cases, with quoted evidence.", "configurations",
          "Which configurations the evaluator judges supported, and why."),
    Item(16, "Summary of findings",
          "The plain-language summary and headline sentences.", "summary",
          "The refined programme theory in a few sentences."),
    Item(17, "Strengths, limitations and future directions",
          "Caveats: self-report, consent, machine coding, the observation window.", "summary",
          "The strengths and limits of this evaluation as a whole."),
    Item(18, "Comparison with existing literature", "", None,
          "How the findings sit with other realist work on mentoring."),
    Item(19, "Conclusion and recommendations",
          "Negative cases that show where the programme does not work yet.", "negative",
          "Conclusions and recommendations for the programme and its funders."),
    Item(20, "Funding and conflict of interest", "", None,
          "Who funded the evaluation and any conflicts of interest."),
)
