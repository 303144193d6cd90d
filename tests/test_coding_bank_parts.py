"""The coding bank's parts (issue 13): the frozen part is measured, never trained or tuned on."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import coding_accuracy, coding_bank, coding_train

ITEM = """version: 1
items:
  - id: "t-0001"
    voice: mentee
    framework: GROW
    step: reality
    text: "My manager keeps cancelling our sessions."
    codes: []
    domains: []
    factors: []
    phase: null
"""


@pytest.fixture
def bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bank folder with a development part and a frozen part that must not be read."""
    (tmp_path / "train.yaml").write_text(ITEM, encoding="utf-8")
    (tmp_path / f"{coding_bank.FROZEN_PART}.yaml").write_text(ITEM.replace("t-0001", "f-0001"),
                                                  encoding="utf-8")
    monkeypatch.setattr(coding_bank, "BANK", tmp_path)
    return tmp_path


def _no_reading(monkeypatch: pytest.MonkeyPatch, frozen: Path) -> list[Path]:
    read: list[Path] = []
    original = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name.startswith("frozen"):
            read.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    return read


def test_training_paths_refuse_a_frozen_part_unread(bank: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    read = _no_reading(monkeypatch, bank / f"{coding_bank.FROZEN_PART}.yaml")
    with pytest.raises(coding_bank.FrozenPartError, match="frozen test part"):
        coding_bank.training_items(bank / f"{coding_bank.FROZEN_PART}.yaml")
    with pytest.raises(coding_bank.FrozenPartError):
        coding_bank.training_items(bank / "Frozen_test_v3.yaml")
    # every development part there is, and never the frozen one
    parts = coding_bank.development_items()
    assert list(parts) == ["train"] and [it.id for it in parts["train"]] == ["t-0001"]
    assert coding_bank.FROZEN_PART not in coding_bank.DEVELOPMENT_PARTS
    assert read == []


def test_the_training_script_refuses_a_frozen_extra(bank: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    read = _no_reading(monkeypatch, bank / f"{coding_bank.FROZEN_PART}.yaml")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained despite a frozen part")

    monkeypatch.setattr(coding_train, "train_heads", no_training)
    out = bank / "heads.npz"
    frozen = bank / f"{coding_bank.FROZEN_PART}.yaml"
    code = coding_train.main(["--out", str(out), "--extra", str(frozen)])
    assert code == 2 and not out.exists()
    assert "refused" in capsys.readouterr().err
    assert read == []


def test_the_accuracy_script_says_absent_for_a_missing_frozen_part(
        bank: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bank / f"{coding_bank.FROZEN_PART}.yaml").unlink()
    assert coding_accuracy.main(["--splits", f"{coding_bank.FROZEN_PART},train", "--no-quotes",
                                 "--no-timing"]) == 0
    out = capsys.readouterr().out
    assert f"{coding_bank.FROZEN_PART} (headline frozen part)" in out and "absent" in out
    assert "== bank: train (1 answers) ==" in out


def test_every_development_part_keeps_the_readme_rules() -> None:
    seen: set[str] = set()
    for part in coding_bank.DEVELOPMENT_PARTS:
        path = coding_bank.bank_path(part)
        if path.is_file():
            assert coding_bank.file_problems(path, seen) == {}, part
    assert len(seen) >= 1000  # ids are unique across the parts (seen is shared)


def test_the_rules_check_finds_what_breaks_them() -> None:
    item = {"id": "x-1", "voice": "mentee", "framework": "GROW", "step": "goal",
            "text": "I feel more confident now",
            "codes": [{"element": "O_AGENCY", "role": "OUTCOME_PROXIMAL",
                       "intended_role": None, "modality": "intended", "span": "confident!"}],
            "domains": [], "subcodes": ["AFF_SELF_CONFIDENCE"],
            "factors": [{"id": "FAC_PROTECTED_TIME", "polarity": "helping"}], "phase": None}
    rules = {p.split(":")[0] for p in coding_bank.item_problems(item)}
    assert rules == {"4", "6", "7", "9"}
    item = {**item, "codes": [{"element": "O_AGENCY", "role": "OUTCOME_PROXIMAL",
                               "intended_role": None, "modality": "realised",
                               "span": "confident"},
                              {"element": "C_DYAD_SAFE_SPACE", "role": "CONTEXT_ENABLING",
                               "intended_role": None, "modality": "realised",
                               "span": "now"}],
            "domains": ["DOM_AFFECTIVE"]}
    assert coding_bank.item_problems(item) == []
    assert coding_bank.item_problems(item, {"x-1"}) == ["1: id missing or not unique"]
    with pytest.raises(coding_bank.FrozenPartError):
        coding_bank.file_problems(Path(f"{coding_bank.FROZEN_PART}.yaml"))
