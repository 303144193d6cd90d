"""Study pseudonyms and date shifting: the one place exports and reports get identities.

A pseudonym is a keyed HMAC of the participant's random subject reference under a
per-study secret (kept, wrapped, in the key store). The same study always gives the same
pseudonym; two studies give unrelated ones; nobody without the key store and master key
can link a pseudonym to a person, and Telegram ids, names and usernames never enter it.

Researcher exports and the evaluator's report draw their secrets from separate namespaces
(:data:`PURPOSES`): the report's default study ``evaluation`` and ``mentorbot export --study
evaluation`` give unrelated pseudonyms, so a report's quotes cannot be joined to an export's
rows by pseudonym.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from storage.crypto import keyed_hash
from storage.vault import Vault

_STUDY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_SHIFT_DAYS = 182  # a consistent shift within ±26 weeks, as REDCap-style tools do
# purpose -> key-store name prefix of its study secrets; "study:" is what exports have always
# used, so an export study's pseudonyms stay what earlier exports gave
PURPOSES = {"export": "study:", "report": "report-study:"}


class StudyError(ValueError):
    """A study name that cannot be used."""


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _code(digest: bytes, length: int) -> str:
    """The first ``length`` (at most 12) characters of the RFC 4648 base32 text of ``digest``.

    Read straight off the first 64 bits: base64.b32encode is pure Python before 3.12, and a
    100,000-entry export needs a pseudonym for every entry.
    """
    bits = int.from_bytes(digest[:8], "big")
    return "".join([_B32[(bits >> shift) & 31] for shift in range(59, 59 - 5 * length, -5)])


@dataclass(frozen=True)
class Pseudonymiser:
    study: str
    secret: bytes

    @classmethod
    async def for_study(cls, vault: Vault, study: str,
                        purpose: str = "export") -> Pseudonymiser:
        """The pseudonyms of ``study`` for ``purpose``: ``export`` (researcher exports) or
        ``report`` (the evaluator's report)."""
        if not _STUDY.match(study):
            raise StudyError("a study name uses letters, digits, '.', '_' or '-' (max 64)")
        return cls(study, await vault.system_key(PURPOSES[purpose] + study))

    def person(self, subject_ref: str) -> str:
        return "P-" + _code(keyed_hash(self.secret, "person", subject_ref), 10)

    def pair(self, pair_id: int) -> str:
        return "D-" + _code(keyed_hash(self.secret, "pair", str(pair_id)), 8)

    def entry(self, entry_id: int) -> str:
        return "E-" + _code(keyed_hash(self.secret, "entry", str(entry_id)), 12)

    def shift_days(self, subject_ref: str) -> int:
        digest = keyed_hash(self.secret, "date-shift", subject_ref)
        span = 2 * MAX_SHIFT_DAYS + 1
        shift = int.from_bytes(digest[:4], "big") % span - MAX_SHIFT_DAYS
        return shift or 1  # never zero: an unshifted date would be a real one

    def shifted(self, subject_ref: str, when: datetime | date) -> str:
        day = when.date() if isinstance(when, datetime) else when
        return (day + timedelta(days=self.shift_days(subject_ref))).isoformat()
