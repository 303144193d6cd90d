"""Small-cell suppression for coordinator tables (counts of pairs).

Three display values:

- an ``int``: the count, shown;
- ``"<k"`` (``"<5"`` by default): primary suppression, the count is below ``k``;
- ``"*"`` (:data:`WITHHELD`): complementary suppression, hidden so that a ``"<k"`` cell cannot
  be worked out by subtracting shown cells from a shown total. Anyone who knows these rules can
  tell a ``"*"`` cell holds at least ``k``; the audit below assumes exactly that.

By default zero counts are suppressed like any count below ``k`` (shown ``"<k"``, never
``0``). A shown zero is exact knowledge: beside a shown total it feeds subtraction, it narrows
what ``"<k"`` can mean (1 to k-1 instead of 0 to k-1), and it can say something about every
member of a group ("all seven pairs of cohort B are overdue", when the other cells are 0).
The price is utility: in a sparse table the hidden zeros need complements of their own, so
real counts get withheld too. ``show_zeros=True`` shows true zeros as ``0`` (they are then
never withheld, and the audit treats ``"<k"`` as 1 to k-1); use it only where "nobody is in
this cell" is not itself sensitive for the group.

Complementary suppression is audited, not just counted. Each value is known to lie in an
interval (a shown count in ``[n, n]``, ``"<k"`` in ``[0, k-1]``, ``"*"`` in ``[k, inf)``) and
each total ties its cells together. A suppressed value is exposed when those facts leave it one
possible value; then more is withheld and the audit runs again, until nothing is exposed:

- the audit first narrows the intervals through every equation (exact for a single group);
- for a two-way table it then asks, per suppressed value, whether any table consistent with
  the display has a different value there. A table with margins is a flow network, so that is
  two max-flow feasibility tests: exact, where intervals alone miss inferences that combine
  several rows and columns;
- in a table, an exposed value is covered by the cheapest rectangle of cells through it
  (inner cells before margins, few and small counts first); otherwise, or in a single group,
  by the shown value of its row or column whose withholding frees it and leaves least exposed.

That covers the classic case (one ``"<5"`` beside a shown total) and the less obvious ones
(two ``"<5"`` cells beside a total that leaves them summing to 0 or 8). Ties break on counts,
then on row and column keys as strings, so the result never depends on dict order. When no
choice protects a group (a one-cell group with its total shown, say), all of it is withheld.
Cost grows quickly with the number of suppressed cells: coordinator tables (a few cohorts by
five phases) take milliseconds, a 20 by 10 table with many small cells about a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_K = 5
WITHHELD = "*"
TOTAL = "total"

Display = int | str

_SHOWN = "shown"
_SMALL = "small"
_WITHHELD = "withheld"  # complementary: known (by the rules) to be at least k
_OPAQUE = "opaque"  # last resort: withheld with no bound implied


def small_label(k: int = DEFAULT_K) -> str:
    """The label a count below ``k`` is shown as."""
    return f"<{k}"


def too_small(n_pairs: int, k: int = DEFAULT_K) -> bool:
    """True if a group of ``n_pairs`` pairs is too small to summarise at all."""
    _check_k(k)
    if n_pairs < 0:
        raise ValueError(f"a count of pairs cannot be negative: {n_pairs}")
    return n_pairs < k


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"the suppression threshold must be at least 1, not {k}")


@dataclass(slots=True)
class _Var:
    row: str
    col: str
    value: int
    is_total: bool
    fixed: bool  # shown by the caller; never a candidate for withholding
    state: str = _SHOWN


class _Audit:
    """Cells and totals linked by ``sum(cells) == total`` equations."""

    def __init__(self, k: int, show_zeros: bool = False) -> None:
        self.k = k
        self.show_zeros = show_zeros
        self.vars: list[_Var] = []
        self.equations: list[tuple[list[int], int]] = []  # (cell indexes, total index)
        # For a two-way table: the grid with margins as its last row and column.
        self.grid: list[list[int]] = []

    def add(self, row: str, col: str, value: int, *, is_total: bool = False,
            fixed: bool = False) -> int:
        if value < 0:
            raise ValueError(f"counts cannot be negative: {row!r}/{col!r} = {value}")
        self.vars.append(_Var(row, col, value, is_total, fixed))
        return len(self.vars) - 1

    def bounds(self) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for v in self.vars:
            if v.state == _SHOWN:
                out.append((v.value, v.value))
            elif v.state == _SMALL:
                out.append((1 if self.show_zeros else 0, self.k - 1))
            elif v.state == _WITHHELD:
                out.append((self.k, math.inf))
            else:
                out.append((0, math.inf))
        return out

    def propagate(self) -> list[tuple[float, float]]:
        """Narrow every interval through every equation until a fixed point."""
        lo, hi = map(list, zip(*self.bounds(), strict=True)) if self.vars else ([], [])
        changed = True
        while changed:
            changed = False
            for cells, total in self.equations:
                sum_lo = sum(lo[c] for c in cells)
                sum_hi = sum(hi[c] for c in cells)
                # total within [sum of cell lows, sum of cell highs]
                if sum_lo > lo[total]:
                    lo[total], changed = sum_lo, True
                if sum_hi < hi[total]:
                    hi[total], changed = sum_hi, True
                # each cell within [total low - other highs, total high - other lows];
                # lows are finite, so inf - inf never arises.
                for c in cells:
                    new_lo = lo[total] - (sum_hi - hi[c])
                    new_hi = hi[total] - (sum_lo - lo[c])
                    if new_lo > lo[c]:
                        lo[c], changed = new_lo, True
                    if new_hi < hi[c]:
                        hi[c], changed = new_hi, True
                if changed:
                    break  # restart with fresh sums
        return list(zip(lo, hi, strict=True))

    def _candidates_for_check(self) -> list[int]:
        before = self.bounds()
        # Opaque values are past helping: all they imply is the equation, true of any split.
        return [i for i, v in enumerate(self.vars)
                if v.state in (_SMALL, _WITHHELD) and before[i][0] != before[i][1]]

    def exposed(self, *, exact: bool = True) -> list[int]:
        """Suppressed values the shown figures pin down exactly.

        Interval propagation first: cheap, and whatever it pins is truly pinned. It can miss
        inferences that combine several rows and columns, so for a two-way table a clean result
        is confirmed with the flow check (:meth:`_pinned_exactly`) unless ``exact`` is off.
        """
        after = self.propagate()
        hidden = self._candidates_for_check()
        fast = [i for i in hidden if after[i][0] == after[i][1]]
        if fast or not exact or not self.grid:
            return fast
        return [i for i in hidden if self._pinned_exactly(i)]

    def _pinned(self, i: int) -> bool:
        lo, hi = self.propagate()[i]
        return lo == hi or (bool(self.grid) and self._pinned_exactly(i))

    # A two-way table with margins is a circulation: source -> row (row total), row -> column
    # (cell), column -> sink (column total), sink -> source (grand total). Any table consistent
    # with what is shown is a feasible integer flow, so "could this value differ from the
    # truth?" is two feasibility tests, each one max-flow. This is exact, unlike intervals.

    def _edges(self) -> list[tuple[int, int, int, float, float]]:
        """(var, from node, to node, low, high) for every grid value; nodes: 0 source,
        1 sink, then rows, then columns."""
        n_rows, n_cols = len(self.grid) - 1, len(self.grid[0]) - 1
        bounds = self.bounds()
        edges = []
        for r, row in enumerate(self.grid):
            for c, i in enumerate(row):
                if r < n_rows and c < n_cols:
                    u, v = 2 + r, 2 + n_rows + c
                elif r < n_rows:
                    u, v = 0, 2 + r
                elif c < n_cols:
                    u, v = 2 + n_rows + c, 1
                else:
                    u, v = 1, 0
                edges.append((i, u, v, bounds[i][0], bounds[i][1]))
        return edges

    def _pinned_exactly(self, i: int) -> bool:
        value = self.vars[i].value
        edges = self._edges()
        n_nodes = len(self.grid) + len(self.grid[0])  # rows + columns + source + sink
        for lo, hi in ((-math.inf, value - 1), (value + 1, math.inf)):
            trial = [(u, v, max(a, lo), min(b, hi)) if j == i else (u, v, a, b)
                     for j, u, v, a, b in edges]
            if all(a <= b for _, _, a, b in trial) and _feasible(trial, n_nodes):
                return False
        return True

    def _order(self, i: int) -> tuple[int, int, str, str]:
        v = self.vars[i]
        return (int(v.is_total), v.value, v.row, v.col)

    def protect(self) -> None:
        for v in self.vars:
            if self.show_zeros and v.value == 0:
                v.fixed = True  # a shown zero stays shown: withheld, it would claim >= k
            elif v.value < self.k and not v.fixed:
                v.state = _SMALL
        while exposed := self.exposed():
            target = min(exposed, key=self._order)
            corners = self._rectangle(target)
            if corners:
                for m in corners:
                    self.vars[m].state = _WITHHELD
                continue
            candidate = self._candidate(target)
            if candidate is None:
                self._withhold_around(target)
            else:
                self.vars[candidate].state = _WITHHELD

    def _rectangle(self, target: int) -> list[int]:
        """Shown corners of the cheapest rectangle through ``target`` that frees it.

        In a two-way table a suppressed value is safe once its row and its column each hold
        another suppressed value that are themselves linked: the corners of a rectangle. Inner
        cells are preferred to margins, then fewer new suppressions, then smaller counts.
        """
        where = [(r, c) for r, row in enumerate(self.grid) for c, i in enumerate(row)
                 if i == target]
        if not where:
            return []
        r0, c0 = where[0]
        last_r, last_c = len(self.grid) - 1, len(self.grid[0]) - 1
        best: tuple[tuple[int, int, int, tuple[str, ...]], list[int]] | None = None
        for r1 in range(len(self.grid)):
            for c1 in range(len(self.grid[0])):
                if r1 == r0 or c1 == c0:
                    continue
                corners = [self.grid[r0][c1], self.grid[r1][c0], self.grid[r1][c1]]
                new = [m for m in corners if self.vars[m].state == _SHOWN]
                if not new or any(self.vars[m].fixed for m in new):
                    continue
                margins = int(r1 == last_r or c1 == last_c or r0 == last_r or c0 == last_c)
                rank = (margins, len(new), sum(self.vars[m].value for m in new),
                        tuple(k for m in new for k in (self.vars[m].row, self.vars[m].col)))
                if best is None or rank < best[0]:
                    for m in new:
                        self.vars[m].state = _WITHHELD
                    frees = not self._pinned(target)
                    for m in new:
                        self.vars[m].state = _SHOWN
                    if frees:
                        best = (rank, new)
        return [] if best is None else best[1]

    def _candidate(self, target: int) -> int | None:
        """The shown member of one of ``target``'s equations best withheld next.

        Each candidate is tried: the one that frees ``target`` and leaves the fewest values
        exposed wins, then cells before totals, then the smallest count. Greedy "smallest
        cell in the row or column" alone walks a two-way table into withholding whole rows.
        """
        pool: set[int] = set()
        for cells, total in self.equations:
            members = [*cells, total]
            if target in members:
                pool.update(m for m in members
                            if self.vars[m].state == _SHOWN and not self.vars[m].fixed)
        best: tuple[tuple[int, int, int, int, str, str], int] | None = None
        for m in sorted(pool):
            self.vars[m].state = _WITHHELD
            rank = (int(self._pinned(target)), len(self.exposed(exact=False)), *self._order(m))
            self.vars[m].state = _SHOWN
            if best is None or rank < best[0]:
                best = (rank, m)
        return None if best is None else best[1]

    def _withhold_around(self, target: int) -> None:
        # Nothing left to withhold beside it: give up on intervals for the whole group,
        # which leaves only "these add up to the total", true of any split.
        for cells, total in self.equations:
            if target in cells or target == total:
                for m in [*cells, total]:
                    if not self.vars[m].fixed:
                        self.vars[m].state = _OPAQUE
        self.vars[target].state = _OPAQUE

    def display(self, i: int) -> Display:
        v = self.vars[i]
        if v.state == _SHOWN:
            return v.value
        if v.state == _SMALL:
            return small_label(self.k)
        return WITHHELD


def suppress_counts(
    cells: Mapping[str, int],
    k: int = DEFAULT_K,
    total: int | None = None,
    *,
    show_zeros: bool = False,
) -> dict[str, Display]:
    """Suppress one group of counts (a row of a coordinator table).

    Every count below ``k``, zero included unless ``show_zeros``, shows as ``"<k"``. Pass
    ``total`` when the group's total is shown (or can be derived elsewhere): cells are then
    withheld as ``"*"`` until no ``"<k"`` cell can be recovered from it. Without a total only
    primary suppression applies. The total must be the sum of the cells; for multi-label
    counts (a pair counted under several learning domains) there is no such total to pass.
    Keys keep their input order in the result.
    """
    _check_k(k)
    audit = _Audit(k, show_zeros)
    index = {key: audit.add("", key, value) for key, value in cells.items()}
    if total is not None:
        if total != sum(cells.values()):
            raise ValueError(f"total {total} is not the sum of the cells "
                             f"({sum(cells.values())}); pass no total for overlapping counts")
        t = audit.add("", TOTAL, total, is_total=True, fixed=True)
        audit.equations.append((list(index.values()), t))
    audit.protect()
    return {key: audit.display(i) for key, i in index.items()}


def suppress_table(
    rows: Mapping[str, Mapping[str, int]], k: int = DEFAULT_K, *, show_zeros: bool = False
) -> dict[str, dict[str, Display]]:
    """Suppress a two-way table and its margins.

    Returns the rows in input order, each with its cells (columns in order of first
    appearance; a column a row lacks counts as 0) and a :data:`TOTAL` cell, then a
    :data:`TOTAL` row with the column totals and the grand total. Margins below ``k`` are
    suppressed like cells; complementary suppression runs across rows, columns and margins
    together until no suppressed value can be recovered.
    """
    _check_k(k)
    if TOTAL in rows:
        raise ValueError(f"a row may not be called {TOTAL!r}: that name holds the totals")
    columns: list[str] = []
    for row in rows.values():
        for col in row:
            if col == TOTAL:
                raise ValueError(f"a column may not be called {TOTAL!r}: it holds the totals")
            if col not in columns:
                columns.append(col)

    audit = _Audit(k, show_zeros)
    grid = {r: {c: audit.add(r, c, rows[r].get(c, 0)) for c in columns} for r in rows}
    row_tot = {r: audit.add(r, TOTAL, sum(rows[r].get(c, 0) for c in columns), is_total=True)
               for r in rows}
    col_tot = {c: audit.add(TOTAL, c, sum(rows[r].get(c, 0) for r in rows), is_total=True)
               for c in columns}
    grand = audit.add(TOTAL, TOTAL, sum(audit.vars[i].value for i in row_tot.values()),
                      is_total=True)
    for r in rows:
        audit.equations.append(([grid[r][c] for c in columns], row_tot[r]))
    for c in columns:
        audit.equations.append(([grid[r][c] for r in rows], col_tot[c]))
    audit.equations.append((list(row_tot.values()), grand))
    audit.equations.append((list(col_tot.values()), grand))
    audit.grid = [[*(grid[r][c] for c in columns), row_tot[r]] for r in rows]
    audit.grid.append([*(col_tot[c] for c in columns), grand])
    audit.protect()

    out: dict[str, dict[str, Display]] = {}
    for r in rows:
        out[r] = {c: audit.display(grid[r][c]) for c in columns}
        out[r][TOTAL] = audit.display(row_tot[r])
    out[TOTAL] = {c: audit.display(col_tot[c]) for c in columns}
    out[TOTAL][TOTAL] = audit.display(grand)
    return out


def _feasible(edges: list[tuple[int, int, float, float]], n_nodes: int) -> bool:
    """Is there a circulation with every edge's flow within its [low, high]?

    The textbook reduction: push every edge's low bound up front, then ask a max-flow from a
    super source to a super sink to carry the imbalances that creates.
    """
    size = n_nodes + 2
    big = sum(b for _, _, _, b in edges if b != math.inf) + sum(
        a for _, _, a, _ in edges if a > 0) + 1  # stands in for "no upper bound"
    cap = [[0] * size for _ in range(size)]
    excess = [0] * size
    for u, v, low, high in edges:
        lo = max(0, int(low))
        hi = big if high == math.inf else int(high)
        cap[u][v] += hi - lo
        excess[v] += lo
        excess[u] -= lo
    src, dst = n_nodes, n_nodes + 1
    need = 0
    for node in range(n_nodes):
        if excess[node] > 0:
            cap[src][node] = excess[node]
            need += excess[node]
        elif excess[node] < 0:
            cap[node][dst] = -excess[node]
    flow = 0
    while True:  # Edmonds-Karp: shortest augmenting paths
        parent = [-1] * size
        parent[src] = src
        queue = [src]
        for u in queue:
            for v in range(size):
                if parent[v] < 0 and cap[u][v] > 0:
                    parent[v] = u
                    queue.append(v)
        if parent[dst] < 0:
            return flow == need
        push, v = math.inf, dst
        while v != src:
            push = min(push, cap[parent[v]][v])
            v = parent[v]
        v = dst
        while v != src:
            u = parent[v]
            cap[u][v] -= int(push)
            cap[v][u] += int(push)
            v = u
        flow += int(push)
