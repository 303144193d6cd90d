"""The safety rule: risk to self recognised however it is written, near misses left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conversations import safety
from conversations.safety import assess, assess_many, fold, risk_span, rule_version

CORPUS = Path(__file__).parent / "fixtures" / "safety"

# What people write, as the issue heard it, and disguised the ways a filter is dodged.
RISK = [
    "I wanna die",
    "I want to be dead",
    "wanting to die",
    "life isn't worth living",
    "lifes not worth living tbh",
    "thinking about ending it",
    "I took too many pills",
    "I've been cutting again",
    "kms",
    "nobody would miss me",
    "everyone would be better off without me",
    "I wish I could go to sleep and never wake up",
    "ive been stockpiling my tablets just in case",
    "I don't feel safe tonight",
    "I'm not saying I want to die, but I think about it",
    "i cant go on like this anymore",
    # past distress that something says is back: what comes last is how things are now
    "I used to self harm at 16 and it's back this month",
    "I tried to end my life at 19. I thought I was in a different place now but the thoughts "
    "are back",
    "I was suicidal years ago, got treatment and I'm well now, though lately it's creeping back",
]
DISGUISED = [
    "k\u200bill myself",  # zero-width space
    "I want to kill my\u00adself",  # soft hyphen
    "I want to d\u0456e",  # Cyrillic і
    "\u0455uicidal again",  # Cyrillic ѕ
    "feeling su1cidal",  # leetspeak
    "i want to d i e",  # letter-spaced
    "k.m.s",
    "\uff4b\uff49\uff4c\uff4c \uff4d\uff59\uff53\uff45\uff4c\uff46",  # full-width
    "I want to \u202ekill myself",  # a bidi control
    "\ufeffi want to die",  # a byte-order mark
    "i dont want to live anymore",  # no apostrophe
    "I don\u2019t want to be alive",  # curly apostrophe
    "i want to kil myslef",  # typos
    "been feeling sucidal",
    "i just want 2 d13",
]
NEAR_MISSES = {
    "figurative": [
        "I was killing myself to finish the audit",
        "I cut myself some slack this week",
        "killing it on the ward today",
        "dying to know how the interview went",
        "dead tired after four nights",
        "I could murder a coffee",
        "this rota will be the death of me",
        "I'd rather die than sit another audit meeting",
        "this rota is a suicide mission",
    ],
    "clinical": [
        "a patient came in after an overdose and I did the bloods",
        "did my first self-harm assessment in ED",
        "suicide prevention training this morning",
        "caring for a patient at the end of life was hard but meaningful",
        "the ligature audit on the unit took all morning",
        "my patient said he wanted to kill himself and I referred to liaison",
    ],
    "someone else": [
        "my colleague lost her brother to suicide and we talked about support",
        "my mum was saying she wants to die, her GP is involved now",
    ],
    "resolved past": [
        "I felt suicidal at uni but I'm in a good place now",
        "When I was 17 I self harmed. I'm 30 now and it's a distant memory.",
        "the self harm scars on my arms are from years ago and I've stayed well since",
        "i was in a really dark place in 2nd year and tried to end it, got help and im a "
        "different person now",
        "found the note I wrote in 2015 while clearing out. Really glad I'm still here.",
        "I used to self harm as a teenager, it's been over ten years and I'm proud of how far "
        "I've come",
    ],
    # the same words as patterns learnt from dev4, where they are not risk
    "lookalikes": [
        "been researching methods for my dissertation on breaks",
        "I want to dye my hair purple after nights",
        "tidying up the flat before I go on leave",
        "the team runs better without me hovering",
        "it was a relief to be gone from that ward",
        "I want it all to stop for a bit, need a holiday",
    ],
    "ordinary stress": [
        "exhausted and overwhelmed by the rota",
        "cried in the car after a hard shift",
    ],
}


@pytest.mark.parametrize("text", RISK + DISGUISED)
def test_risk_is_recognised_however_it_is_written(text: str) -> None:
    verdict = assess(text, semantic=False)
    assert verdict.risk, text
    start, end = verdict.span or (0, 0)
    assert 0 <= start < end <= len(text)  # a span of what the person actually wrote


@pytest.mark.parametrize(
    "text", [t for group in NEAR_MISSES.values() for t in group], ids=lambda t: t[:40]
)
def test_near_misses_are_not_flagged(text: str) -> None:
    assert not assess(text, semantic=False).risk


def test_numbers_with_ordinals_and_units_are_not_read_as_leetspeak() -> None:
    assert fold("in 1st year, in my 20s, 3rd time, 50mg").text == (
        "in 1st year, in my 20s, 3rd time, 50mg")
    assert fold("g0nna 3nd 1t").text == "going to end it"  # still leetspeak


def test_the_semantic_layer_leaves_near_misses_alone() -> None:
    """Near misses the probe learnt from contrast lines (none of these is in the corpus): it
    is trained on hyperbole unblanked, on clinical and third-person talk and on resolved
    past, and recognised near misses stay the lexicon's."""
    for near in ("When I was 17 I self harmed. I'm 30 now and it's a distant memory.",
                 "the self harm scars on my arms are from years ago and I've stayed well since",
                 "I'd rather die than sit another audit meeting",
                 "did a suicide risk assessment with a student nurse watching, went well",
                 "knackered and flat after four nights, bath and bed"):
        assert not assess(near, semantic=True).risk, near
    for risk in ("I tried to end my life at 19. I thought I was in a different place now but "
                 "the thoughts are back", "I have made my peace with leaving this world soon"):
        assert assess(risk, semantic=True).risk, risk


def test_the_stored_rule_version_names_the_probe(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """A refitted probe is a changed rule, so ``mentorbot recode`` judges answers again."""
    import shutil

    here = Path(safety.__file__).parent
    for name in ("lexicon.py", "normalise.py", "__init__.py", "semantic.py",
                 "exemplars.yaml", "probe.json", "resolved.json"):
        shutil.copy(here / name, tmp_path / name)
    monkeypatch.setattr(safety, "_HERE", tmp_path)
    safety._rule_hash.cache_clear()
    try:
        versions = [(safety.rule_version(semantic=True), safety.lexicon_version())]
        for name in ("probe.json", "resolved.json"):  # the probe, then the resolved-past head
            (tmp_path / name).write_text('{"threshold": 0.5}', encoding="utf-8")
            safety._rule_hash.cache_clear()
            versions.append((safety.rule_version(semantic=True), safety.lexicon_version()))
    finally:
        safety._rule_hash.cache_clear()
    assert len({rule for rule, _ in versions}) == 3  # each refit is a new rule
    assert len({lex for _, lex in versions}) == 1  # the lexicon's own is unchanged


def test_folding_undoes_disguises_and_keeps_the_original_span() -> None:
    folded = fold("I w\u0430nt to k\u200bill my\u00adself!!")
    assert folded.text == "i want to kill myself!!"
    text = "so tired. k\u200bill myself tbh"
    start, end = risk_span(text) or (0, 0)
    assert text[start:end] == "k\u200bill myself"
    assert fold("ok!!").text == "ok!!" and fold("took 2 pills").text == "took 2 pills"


def test_the_coder_and_the_chat_share_the_rule() -> None:
    from reports.coding.rules import code_text

    hits = [h for h in code_text("honestly i wanna die") if h.code_id == "TOPIC_SELF_HARM_RISK"]
    assert len(hits) == 1
    assert not [h for h in code_text("I was killing myself to finish the audit")
                if h.code_id == "TOPIC_SELF_HARM_RISK"]


def _corpus(*names: str) -> list[dict[str, str]]:
    lines: list[dict[str, str]] = []
    for name in names:
        lines += yaml.safe_load((CORPUS / f"{name}.yaml").read_text(encoding="utf-8"))["lines"]
    return lines


DEVELOPMENT = ("tuning", "dev", "dev2", "dev3", "dev4")


def test_the_labelled_corpus_is_split_and_big_enough() -> None:
    """The development parts are big enough and cover the forms; the check part (dev5) and
    the bank share no line with the development parts. The frozen part is written
    independently and placed only for its one measurement, so no test reads it."""
    parts = {name: _corpus(name) for name in DEVELOPMENT}
    everything = [d for part in parts.values() for d in part]
    assert sum(d["label"] == "risk" for d in everything) >= 150
    assert sum(d["label"] == "near_miss" for d in everything) >= 150
    forms = {d["form"] for d in everything}
    assert {"disguised", "typos", "negated_but_risk", "figurative", "resolved_past",
            "clinical_third_person"} <= forms
    seen = {fold(d["text"]).text for d in everything}
    check = {fold(d["text"]).text for d in _corpus("dev5")}
    assert len(check) >= 40
    assert len(check & seen) == 0  # counted, so a failure quotes no line
    bank = yaml.safe_load((Path(safety.__file__).parent / "exemplars.yaml").read_text(
        encoding="utf-8"))
    assert sum(fold(t).text in check for t in bank["risk"] + bank["safe"]) == 0


def test_lexicon_holds_its_tuning_figures() -> None:
    """A regression guard on the development parts (tuned on, so optimistic: the honest
    figures are leave-one-file-out and the frozen part's)."""
    lines = _corpus(*DEVELOPMENT)
    verdicts = assess_many([d["text"] for d in lines], semantic=False)
    risk = [v.risk for d, v in zip(lines, verdicts, strict=True) if d["label"] == "risk"]
    safe = [v.risk for d, v in zip(lines, verdicts, strict=True) if d["label"] != "risk"]
    assert sum(risk) / len(risk) >= 0.96
    assert sum(safe) / len(safe) <= 0.02


def test_semantic_layer_catches_what_no_pattern_lists() -> None:
    text = "I have made my peace with leaving this world soon"
    assert not assess(text, semantic=False).risk
    verdict = assess(text, semantic=True)
    assert verdict.risk and verdict.form == "semantic"
    # figures of speech are blanked before the probe sees them, and recognised near misses
    # are left to the lexicon
    for near in ("this rota will be the death of me", "suicide prevention training today",
                 "I felt suicidal at uni but I'm in a good place now"):
        assert not assess(near, semantic=True).risk, near


def test_without_the_encoder_the_lexicon_judges_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from conversations import sentence_encoder

    monkeypatch.setattr(sentence_encoder, "availability", lambda: (False, "not installed"))
    monkeypatch.delenv(safety.SEMANTIC_SETTING, raising=False)
    safety._encoder_installed.cache_clear()
    try:
        assert not safety.semantic_available()
        assert assess("I want to die").risk
        assert not assess("I have made my peace with leaving this world soon").risk
        assert "+semantic" not in rule_version()
    finally:
        safety._encoder_installed.cache_clear()
    monkeypatch.undo()
    monkeypatch.setenv(safety.SEMANTIC_SETTING, "on")
    assert "+semantic" in rule_version()  # the stored version says which rule judged
    monkeypatch.setenv(safety.SEMANTIC_SETTING, "off")
    assert rule_version() == rule_version(semantic=False) != rule_version(semantic=True)


def test_a_broken_model_install_falls_back_to_the_lexicon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conversations.safety import semantic

    def broken() -> None:
        raise OSError("model file truncated")

    monkeypatch.setattr(semantic, "_probe", broken)
    monkeypatch.setattr(safety, "_BROKEN", [])
    assert assess("I want to die", semantic=True).risk  # the lexicon still sees it
    assert not assess("I have made my peace with leaving this world soon", semantic=True).risk
    assert safety._BROKEN and set(safety._BROKEN) == {"OSError"}  # each attempt says why
    monkeypatch.setenv(safety.SEMANTIC_SETTING, "on")
    assert not safety.semantic_available()  # and the stored version no longer claims it


async def test_answers_arriving_together_are_judged_in_one_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    batches: list[int] = []
    real = safety.assess_many

    def recording(texts: list[str], **kwargs: object) -> list[safety.Verdict]:
        batches.append(len(texts))
        return real(texts, semantic=False)

    monkeypatch.setattr(safety, "assess_many", recording)
    texts = ["I want to die", "a good session", "kms", "the rota is killing me"] * 3
    verdicts = await asyncio.gather(*(safety.assess_async(t) for t in texts))
    assert [v.risk for v in verdicts] == [True, False, True, False] * 3  # each its own answer
    assert batches == [len(texts)]  # arrived together, judged together
    assert (await safety.assess_async("kms")).risk and batches[-1] == 1  # alone, at once

    def failing(texts: list[str], **kwargs: object) -> list[safety.Verdict]:
        raise RuntimeError("judging failed")

    monkeypatch.setattr(safety, "assess_many", failing)
    results = await asyncio.gather(safety.assess_async("x y z"), safety.assess_async("a b"),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)  # told, never left waiting


# Distress the writer says is over, put in ways the lexicon's time framing does not list, so
# the lexicon flags them (none of these is in the corpus).
OVER_IN_OTHER_WORDS = [
    "My lived experience of recovering from self-harm is part of why I applied to be a mental "
    "health nurse.",
    "My own recovery from self-harm as a teenager is why I went into CAMHS nursing.",
    "My history of self-harm as a teen is a big part of why I'm drawn to working with young "
    "people.",
]


def test_the_resolved_past_head_clears_distress_that_is_over() -> None:
    for text in OVER_IN_OTHER_WORDS:
        assert assess(text, semantic=False).risk, text  # the lexicon alone flags it
        assert not assess(text, semantic=True).risk, text  # the semantic layer clears it
    assert not any(v.risk for v in assess_many(OVER_IN_OTHER_WORDS, semantic=True))


def test_what_is_said_after_the_past_is_how_it_is_now() -> None:
    """A current statement after a past one keeps the flag, with or without the semantic
    layer: what comes last is how things are now."""
    for text in (
        "I tried to kill myself years ago and got through it. Now I just want to die.",
        "I self-harmed as a teenager and got better, but this week the urges to cut are back.",
        "I attempted suicide at 19 and recovered. Lately I keep thinking about doing it again.",
        OVER_IN_OTHER_WORDS[0] + " But I cut myself last night.",
        OVER_IN_OTHER_WORDS[1] + " Tonight I want to die.",
        OVER_IN_OTHER_WORDS[2] + " Now I'm back to cutting.",
    ):
        assert assess(text, semantic=False).risk, text
        assert assess(text, semantic=True).risk, text
    # the head only ever clears a flag: a line the probe flags stays flagged
    from conversations.safety import scan, semantic

    text = "I have made my peace with leaving this world soon"
    folded = fold(text)
    assert semantic.cleared([(folded, scan(folded))]) == [False]


def test_the_head_never_runs_with_the_semantic_layer_off(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """MENTORBOT_SAFETY_SEMANTIC=off: the lexicon alone judges, as it did before the head."""
    from conversations.safety import semantic

    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the semantic layer was asked")

    monkeypatch.setenv(safety.SEMANTIC_SETTING, "off")
    monkeypatch.setattr(semantic, "cleared", not_here)
    monkeypatch.setattr(semantic, "risk_sentences", not_here)
    for text in OVER_IN_OTHER_WORDS:
        verdict = assess(text)
        assert verdict.risk and verdict.form != "semantic"
        assert verdict == safety.Verdict(True, risk_span(text), verdict.form)
    assert not safety._BROKEN


def test_mentorbot_code_reports_risk_by_the_full_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mentorbot code`` judges each line on the spot by the whole rule (the semantic layer
    where it is on) and reports risk as TOPIC_SELF_HARM_RISK on the line."""
    import json

    from click.testing import CliRunner

    from bot.cli import main

    lines = {1: "honestly i wanna die", 2: "I have made my peace with leaving this world soon",
             3: OVER_IN_OTHER_WORDS[0], 4: "I was killing myself to finish the audit"}
    stdin = "".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in lines.items())

    def flagged(setting: str) -> set[int]:
        monkeypatch.setenv(safety.SEMANTIC_SETTING, setting)
        result = CliRunner().invoke(main, ["code"], input=stdin)
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.output.splitlines() if line.strip()]
        assert [row["id"] for row in rows] == list(lines)
        return {row["id"] for row in rows
                if any(c["code"] == "TOPIC_SELF_HARM_RISK" for c in row["codes"])}

    assert flagged("on") == {1, 2}  # the probe's catch coded, the head's clearance not
    assert flagged("off") == {1, 3}  # the lexicon alone
