"""Small-cell suppression for coordinator tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.suppression import (
    TOTAL,
    WITHHELD,
    Display,
    suppress_counts,
    suppress_table,
    too_small,
)

Equation = tuple[list[str], str]


def _recoverable(
    display: Mapping[str, Display],
    equations: Sequence[Equation],
    k: int,
    bound: int,
    small_from: int = 0,
) -> set[str]:
    """Names whose value an attacker who knows the rules can pin down exactly.

    Brute force over every integer completion: "<k" is small_from..k-1, a withheld cell
    k..bound, shown values are fixed; every equation must add up. A name is recoverable if only
    one value occurs across all completions.
    """
    unknown = [n for n, v in display.items() if not isinstance(v, int)]
    lo = {
        n: v if isinstance(v, int) else (small_from if v == f"<{k}" else k)
        for n, v in display.items()
    }
    hi = {
        n: v if isinstance(v, int) else (k - 1 if v == f"<{k}" else bound)
        for n, v in display.items()
    }
    seen: dict[str, set[int]] = {n: set() for n in unknown}

    def consistent(assign: dict[str, int]) -> bool:
        for cells, total in equations:
            low = sum(assign.get(c, lo[c]) for c in cells)
            high = sum(assign.get(c, hi[c]) for c in cells)
            if low > assign.get(total, hi[total]) or high < assign.get(total, lo[total]):
                return False
        return True

    def search(i: int, assign: dict[str, int]) -> None:
        if all(len(v) > 1 for v in seen.values()):
            return
        if i == len(unknown):
            for n in unknown:
                seen[n].add(assign[n])
            return
        name = unknown[i]
        for value in range(lo[name], hi[name] + 1):
            assign[name] = value
            if consistent(assign):
                search(i + 1, assign)
            del assign[name]

    search(0, {})
    return {n for n, values in seen.items() if len(values) == 1}


def _table_equations(
    out: Mapping[str, Mapping[str, Display]],
) -> tuple[dict[str, Display], list[Equation]]:
    rows = [r for r in out if r != TOTAL]
    cols = [c for c in out[TOTAL] if c != TOTAL]
    flat = {f"{r}|{c}": v for r in out for c, v in out[r].items()}
    eqs: list[Equation] = [([f"{r}|{c}" for c in cols], f"{r}|{TOTAL}") for r in rows]
    eqs += [([f"{r}|{c}" for r in rows], f"{TOTAL}|{c}") for c in cols]
    eqs.append(([f"{r}|{TOTAL}" for r in rows], f"{TOTAL}|{TOTAL}"))
    eqs.append(([f"{TOTAL}|{c}" for c in cols], f"{TOTAL}|{TOTAL}"))
    return flat, eqs


def _assert_row_safe(
    cells: dict[str, int], k: int = 5, show_zeros: bool = False
) -> dict[str, Display]:
    total = sum(cells.values())
    out = suppress_counts(cells, k=k, total=total, show_zeros=show_zeros)
    display: dict[str, Display] = {**out, TOTAL: total}
    assert not _recoverable(
        display, [(list(cells), TOTAL)], k, 2 * total + 10, small_from=int(show_zeros)
    )
    return out


def _assert_table_safe(
    rows: dict[str, dict[str, int]], k: int = 5, show_zeros: bool = False
) -> dict[str, dict[str, Display]]:
    out = suppress_table(rows, k=k, show_zeros=show_zeros)
    flat, eqs = _table_equations(out)
    grand = sum(v for row in rows.values() for v in row.values())
    assert not _recoverable(flat, eqs, k, 2 * grand + 10, small_from=int(show_zeros))
    return out


# ---------------------------------------------------------------------------
# One group
# ---------------------------------------------------------------------------


def test_cells_below_k_show_as_less_than_k() -> None:
    assert suppress_counts({"a": 1, "b": 4, "c": 5, "d": 17}) == {
        "a": "<5",
        "b": "<5",
        "c": 5,
        "d": 17,
    }
    assert suppress_counts({"a": 2, "b": 3}, k=3) == {"a": "<3", "b": 3}


def test_zero_is_suppressed_like_any_small_count() -> None:
    assert suppress_counts({"none": 0, "many": 12}) == {"none": "<5", "many": 12}


def test_complementary_suppression_with_a_shown_total() -> None:
    out = _assert_row_safe({"a": 3, "b": 10, "c": 12})
    assert out == {"a": "<5", "b": WITHHELD, "c": 12}


def test_no_complement_without_a_total() -> None:
    assert suppress_counts({"a": 3, "b": 10, "c": 12}) == {"a": "<5", "b": 10, "c": 12}


def test_nothing_suppressed_when_nothing_is_small() -> None:
    assert suppress_counts({"a": 5, "b": 6, "c": 40}, total=51) == {"a": 5, "b": 6, "c": 40}


def test_two_small_cells_protect_each_other() -> None:
    # 3 + 2 = 5 splits many ways across two "<5" cells: no complement needed.
    assert _assert_row_safe({"a": 3, "b": 2, "c": 10, "d": 12}) == {
        "a": "<5",
        "b": "<5",
        "c": 10,
        "d": 12,
    }


@pytest.mark.parametrize(
    "cells",
    [
        {"a": 4, "b": 4, "c": 20},  # 8 left over: both "<5" cells must be 4
        {"a": 0, "b": 0, "c": 12},  # 0 left over: both must be 0
        {"a": 12, "b": 8, "c": 0, "d": 0, "e": 0},
    ],
)
def test_small_cells_pinned_by_the_total_get_a_complement(cells: dict[str, int]) -> None:
    out = _assert_row_safe(cells)
    assert WITHHELD in out.values()


def test_a_group_that_cannot_be_protected_is_withheld() -> None:
    assert suppress_counts({"only": 3}, total=3) == {"only": WITHHELD}
    assert suppress_counts({"a": 0, "b": 5}, total=5) == {"a": WITHHELD, "b": WITHHELD}


def test_ties_break_on_keys_not_on_dict_order() -> None:
    one = suppress_counts({"a": 3, "c": 10, "b": 10}, total=23)
    two = suppress_counts({"b": 10, "a": 3, "c": 10}, total=23)
    assert one == two == {"a": "<5", "b": WITHHELD, "c": 10}
    assert list(one) == ["a", "c", "b"]  # input order kept


def test_show_zeros_keeps_true_zeros_and_stays_safe() -> None:
    assert suppress_counts(
        {"a": 10, "b": 15, "c": 5, "d": 0, "e": 0}, total=30, show_zeros=True
    ) == {"a": 10, "b": 15, "c": 5, "d": 0, "e": 0}
    # hidden zeros need a complement: withholding the 5 would leave 5 = 5 + 0 + 0 exact, so
    # the 10 goes instead
    assert suppress_counts({"a": 10, "b": 15, "c": 5, "d": 0, "e": 0}, total=30) == {
        "a": WITHHELD,
        "b": 15,
        "c": 5,
        "d": "<5",
        "e": "<5",
    }
    # with zeros shown, "<5" means 1 to 4: a lone 3 beside a 0 still needs its complement
    out = _assert_row_safe({"a": 3, "b": 0, "c": 10, "d": 12}, show_zeros=True)
    assert out == {"a": "<5", "b": 0, "c": WITHHELD, "d": 12}


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from("abcdef"),
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20]),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([3, 5]),
    st.booleans(),
)
def test_no_suppressed_cell_is_recoverable_from_the_total(
    cells: dict[str, int], k: int, show_zeros: bool
) -> None:
    out = _assert_row_safe(cells, k, show_zeros)
    for key, value in cells.items():
        if value == 0 and show_zeros:
            assert out[key] == 0
        elif value < k:
            assert out[key] in (f"<{k}", WITHHELD)
        elif out[key] != WITHHELD:
            assert out[key] == value


# ---------------------------------------------------------------------------
# Two-way tables
# ---------------------------------------------------------------------------


def test_table_layout_and_margins() -> None:
    out = suppress_table(
        {
            "cohort A": {"rapport": 12, "progression": 30},
            "cohort B": {"rapport": 8, "winding up": 9},
        }
    )
    assert list(out) == ["cohort A", "cohort B", TOTAL]
    assert list(out["cohort A"]) == ["rapport", "progression", "winding up", TOTAL]
    assert out["cohort A"][TOTAL] == 42
    assert out[TOTAL] == {"rapport": 20, "progression": 30, "winding up": 9, TOTAL: 59}
    # the two structural zeros are "<5", and each needs a partner in its row and column
    assert out["cohort A"]["winding up"] == "<5" and out["cohort B"]["progression"] == "<5"


def test_table_without_small_cells_is_untouched() -> None:
    rows = {"A": {"x": 5, "y": 10}, "B": {"x": 7, "y": 6}}
    assert suppress_table(rows) == {
        "A": {"x": 5, "y": 10, TOTAL: 15},
        "B": {"x": 7, "y": 6, TOTAL: 13},
        TOTAL: {"x": 12, "y": 16, TOTAL: 28},
    }


def test_table_complements_in_both_directions() -> None:
    rows = {
        "A": {"x": 3, "y": 10, "z": 12},
        "B": {"x": 8, "y": 9, "z": 15},
        "C": {"x": 7, "y": 6, "z": 20},
    }
    out = _assert_table_safe(rows)
    assert out["A"]["x"] == "<5"
    for r in ("A", "B", "C", TOTAL):  # no row with a shown total hides exactly one value
        hidden = [c for c, v in out[r].items() if not isinstance(v, int)]
        assert len(hidden) != 1 or not isinstance(out[r][TOTAL], int)
    for c in ("x", "y", "z", TOTAL):
        hidden = [r for r in out if not isinstance(out[r][c], int)]
        assert len(hidden) != 1
    # a rectangle of four cells, not whole rows: margins stay visible
    assert all(isinstance(out[TOTAL][c], int) for c in ("x", "y", "z", TOTAL))
    assert sum(not isinstance(v, int) for r in rows for v in out[r].values()) == 4


def test_small_margins_are_suppressed() -> None:
    out = _assert_table_safe({"A": {"x": 1, "y": 2}, "B": {"x": 10, "y": 12}})
    assert out["A"][TOTAL] == "<5"


def test_shown_values_are_true_and_small_ones_never_shown() -> None:
    rows = {
        "A": {"x": 0, "y": 14, "z": 2},
        "B": {"x": 6, "y": 5, "z": 30},
        "C": {"x": 11, "y": 4, "z": 8},
    }
    out = _assert_table_safe(rows)
    for r, row in rows.items():
        for c, value in row.items():
            if isinstance(out[r][c], int):
                assert out[r][c] == value >= 5
            elif value >= 5:
                assert out[r][c] == WITHHELD


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.booleans(), st.data())
def test_no_table_value_is_recoverable(
    n_rows: int, n_cols: int, show_zeros: bool, data: st.DataObject
) -> None:
    values = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 8, 11])
    rows = {f"r{i}": {f"c{j}": data.draw(values) for j in range(n_cols)} for i in range(n_rows)}
    _assert_table_safe(rows, show_zeros=show_zeros)


def test_total_is_a_reserved_name() -> None:
    with pytest.raises(ValueError, match="total"):
        suppress_table({TOTAL: {"x": 1}})
    with pytest.raises(ValueError, match="total"):
        suppress_table({"A": {TOTAL: 1}})


# ---------------------------------------------------------------------------
# Thresholds and bad input
# ---------------------------------------------------------------------------


def test_too_small() -> None:
    assert too_small(0) and too_small(4)
    assert not too_small(5) and not too_small(50)
    assert too_small(9, k=10)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        suppress_counts({"a": -1})
    with pytest.raises(ValueError, match="sum"):
        suppress_counts({"a": 3, "b": 10}, total=10)
    with pytest.raises(ValueError):
        suppress_counts({"a": 1}, k=0)
    with pytest.raises(ValueError):
        too_small(-2)
