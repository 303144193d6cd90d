"""The storage facade: opens the database, loads keys, and holds the repositories."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage import coordination, personal_data
from storage.audit import AuditLog
from storage.consent import ConsentLedger
from storage.coordination import LocalCoordination, PgCoordination
from storage.crypto import KeyRing
from storage.db import Database, iso, parse_iso, utcnow
from storage.digests import DigestSchedules
from storage.embeddings import Embeddings
from storage.entries import Entries
from storage.integrity import Integrity
from storage.lifecycle import Lifecycle
from storage.models import Invite, Participant, Role
from storage.participant_context import ParticipantContext
from storage.participants import Participants
from storage.programmes import Programmes, open_seats, pair_cap
from storage.releases import SummaryReleases
from storage.vault import Vault

JOIN_APPROVAL = "join_approval"  # programme setting: hold mentor and mentee joins


@dataclass(frozen=True)
class JoinResult:
    ok: bool
    reason: str = ""  # unknown, used, revoked, expired, locked, already, cap, waiting
    participant_id: int | None = None
    role: Role | None = None
    wait_seconds: int = 0
    pair_complete: bool = False
    awaiting_approval: bool = False  # held for a coordinator (programme setting)
    pair_id: int | None = None
    again: bool = False  # an existing participant took a further pair's seat
    cap: int = 0  # with reason "cap": the open pairs this person may hold
    membership: bool = False  # an existing account took a new membership (programme, role)


@dataclass(frozen=True)
class Held:
    """A join waiting for a coordinator: all a coordinator is shown of it."""

    participant_id: int
    programme_id: int
    pair_id: int | None
    role: Role


@dataclass(frozen=True)
class ErasureReport:
    deleted: dict[str, int]
    kept: tuple[str, ...]


class Store:
    def __init__(self, db: Database, vault: Vault, consent_version: str) -> None:
        self.db = db
        self.vault = vault
        self.participants = Participants(db, vault)
        self.programmes = Programmes(db, vault)
        self.integrity = Integrity(db, vault.integrity_key)
        self.consent = ConsentLedger(db, consent_version, self.integrity)
        self.entries = Entries(db, vault, self.integrity)
        self.embeddings = Embeddings(db, vault)
        self.audit = AuditLog(db)
        self.lifecycle = Lifecycle(db)
        self.releases = SummaryReleases(db)
        self.digests = DigestSchedules(db)
        self.context = ParticipantContext(db, vault)  # "for whom" answers (issue 14)
        self.erasures_applied = 0  # by the opening itself (open, apply_erasures)
        self._coordination: LocalCoordination | PgCoordination | None = None

    @classmethod
    async def open(
        cls,
        path: Path | str,
        ring: KeyRing,
        consent_version: str,
        *,
        create: bool = True,
        keystore: Path | str | None = None,
    ) -> Store:
        db = await Database.open(path, keystore=keystore, create=create)
        vault = Vault(db, ring)
        try:
            await vault.load()
            store = cls(db, vault, consent_version)
            # Every opening repairs what a crash or a restore can leave (see join, erase).
            store.erasures_applied = await store.apply_erasures()
            await vault.sweep_pending()
            await store.integrity.sign_legacy()  # rows from before tamper evidence, once
            # flags from before verdicts were encrypted leave the plaintext column at once
            await store.entries.seal_legacy_flags()
        except Exception:
            await db.close()
            raise
        return store

    async def coordination(self) -> LocalCoordination | PgCoordination:
        """What the processes on this database share (storage.coordination): opened on
        first use (the bot's start-up), a connection of its own on PostgreSQL."""
        if self._coordination is None:
            self._coordination = await coordination.open_for(self.db, self.vault)
        return self._coordination

    async def close(self) -> None:
        if self._coordination is not None:
            await self._coordination.close()
        await self.db.close()

    async def join(
        self, code: str, telegram_user_id: int, chat_id: int, first_name: str | None
    ) -> JoinResult:
        """Claim a single-use invite: create the participant and link the pair atomically."""
        user_hmac = self.participants.user_key(telegram_user_id)
        wait = await self.programmes.locked_for(user_hmac)
        if wait:
            return JoinResult(False, "locked", wait_seconds=wait)
        existing = await self.participants.by_user(telegram_user_id)
        invite = await self.programmes.find_invite(code) if 8 <= len(code) <= 64 else None
        members = await self.participants.memberships(existing) if existing else []
        same: Participant | None = None  # the membership this invite would add a pair to
        if existing is not None:
            if invite is None or invite.used_by in {m.id for m in members}:
                return JoinResult(False, "already", existing.id, existing.role)
            same = next((m for m in members if m.programme_id == invite.programme_id
                         and m.role is invite.role), None)
            if same is not None and not self._another_pair(same, invite):
                return JoinResult(False, "already", same.id, same.role)
            if same is None and await self._sits_opposite(members, invite):
                # the other seat of a pair this person already holds: never both sides
                return JoinResult(False, "already", existing.id, existing.role)
        if (invite is None or invite.used_at is not None or invite.revoked_at is not None
                or parse_iso(invite.expires_at) < utcnow()):
            await self.programmes.record_failure(user_hmac)
            reason = ("unknown" if invite is None else "used" if invite.used_at
                      else "revoked" if invite.revoked_at else "expired")
            return JoinResult(False, reason)
        if same is not None:
            return await self._join_another(same, invite, user_hmac)
        # A new person, or a new membership of an existing account (another programme, or
        # the other role): a new data key and participant row, the programme's own consent
        # questions, nothing carried over from the account's other memberships.
        # Key first, in its own commit (see Vault.store_pending_key), then the participant
        # and the claimed invite in one database commit, then the key is settled.
        programme = await self.programmes.get(invite.programme_id)
        hold = bool(programme.settings.get(JOIN_APPROVAL)) and invite.role in (
            Role.MENTOR, Role.MENTEE)
        dek, wrapped, subject_ref = self.vault.new_participant_key()
        await self.vault.store_pending_key(subject_ref, wrapped)
        try:
            admitted = await self._admit(
                invite, telegram_user_id, chat_id, first_name, subject_ref, dek, hold
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self.vault.drop_pending_key(subject_ref)
            raise
        if admitted is None:  # claimed by someone else a moment ago
            await self.vault.drop_pending_key(subject_ref)
            return JoinResult(False, "used")
        pid, pair_complete = admitted
        await self.vault.settle_key(subject_ref)
        await self.programmes.clear_failures(user_hmac)
        await self.audit.record("participant", "held" if hold else "joined", pid,
                                role=invite.role.value)
        return JoinResult(True, "", pid, invite.role, pair_complete=pair_complete,
                          awaiting_approval=hold, pair_id=invite.pair_id,
                          membership=existing is not None)

    @staticmethod
    def _another_pair(me: Participant, invite: Invite) -> bool:
        """Is this invite one the membership may take as a further pair: the same programme
        and role, for a pair (a second coordinator invite of the same programme is not)."""
        return (invite.pair_id is not None and invite.programme_id == me.programme_id
                and invite.role is me.role and me.role in (Role.MENTOR, Role.MENTEE))

    async def _sits_opposite(self, members: list[Participant], invite: Invite) -> bool:
        """Would this invite seat the person across from themselves in one pair."""
        if invite.pair_id is None:
            return False
        pair = await self.programmes.pair(invite.pair_id)
        ids = {m.id for m in members}
        return pair is not None and bool({pair.mentor_id, pair.mentee_id} & ids)

    async def _join_another(self, me: Participant, invite: Invite,
                            user_hmac: bytes) -> JoinResult:
        """Someone already in the programme takes a further pair's seat (a mentor's second
        or third mentee, a re-matched mentee's new pair): no new person, no new key, and
        consent stands unless its version changed (asked again at their next command)."""
        assert invite.pair_id is not None
        if await self.held(me.id) is not None:
            # that membership's own place is not confirmed yet: the invite stays unused,
            # to be opened again once it is
            return JoinResult(False, "waiting", me.id, me.role, pair_id=invite.pair_id)
        programme = await self.programmes.get(me.programme_id)
        cap = pair_cap(programme, me.role)
        now = iso(utcnow())
        complete = False
        async with self.db.transaction() as conn:
            if await open_seats(conn, me.id, me.role) >= cap:
                full = True
            else:
                full = False
                cur = await conn.execute(
                    "UPDATE invites SET used_at=?, used_by=? WHERE id=? AND used_at IS NULL "
                    "AND revoked_at IS NULL", (now, me.id, invite.id))
                if cur.rowcount != 1:
                    return JoinResult(False, "used")
                complete = await self._link_pair(conn, me.id, me.role, invite.pair_id, now)
        if full:
            # The invite stays unused: the coordinator can re-issue it to someone else.
            await self.audit.record("participant", "join_refused_cap", me.id,
                                    role=me.role.value, pair=invite.pair_id, cap=cap)
            return JoinResult(False, "cap", me.id, me.role, pair_id=invite.pair_id,
                              cap=cap)
        await self.programmes.clear_failures(user_hmac)
        await self.audit.record("participant", "joined_pair", me.id, role=me.role.value,
                                pair=invite.pair_id)
        return JoinResult(True, "", me.id, me.role, pair_complete=complete,
                          pair_id=invite.pair_id, again=True)

    async def held(self, participant_id: int) -> Held | None:
        """The join, if this person is waiting for a coordinator's approval."""
        row = await self.db.fetchone(
            "SELECT p.programme_id, p.role, i.pair_id FROM participants p "
            "LEFT JOIN invites i ON i.used_by = p.id "
            "WHERE p.id=? AND p.awaiting_approval=1", (participant_id,))
        if row is None:
            return None
        return Held(participant_id, int(row["programme_id"]), row["pair_id"], Role(row["role"]))

    async def approve(self, participant_id: int) -> tuple[bool, bool]:
        """Let a held join in: link the pair. (done, pair now complete); done is False when
        the join was not waiting (decided already, by another coordinator perhaps)."""
        held = await self.held(participant_id)
        if held is None:
            return False, False
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE participants SET awaiting_approval=0 WHERE id=? AND awaiting_approval=1",
                (participant_id,))
            if cur.rowcount != 1:
                return False, False
            complete = await self._link_pair(conn, participant_id, held.role, held.pair_id,
                                             iso(utcnow()))
        await self.audit.record("participant", "approved", participant_id, role=held.role.value)
        return True, complete

    async def refuse(self, participant_id: int) -> bool:
        """Turn a held join away: the person is erased; the invite stays spent."""
        if await self.held(participant_id) is None:
            return False
        await self.erase(participant_id)
        return True

    async def _admit(
        self,
        invite: Invite,
        telegram_user_id: int,
        chat_id: int,
        first_name: str | None,
        subject_ref: str,
        dek: bytes,
        hold: bool = False,
    ) -> tuple[int, bool] | None:
        """Claim the invite, create the participant and link the pair, in one database
        transaction; None if the invite was claimed meanwhile."""
        now = iso(utcnow())
        pair_complete = False
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE invites SET used_at=? WHERE id=? AND used_at IS NULL", (now, invite.id)
            )
            if cur.rowcount != 1:
                return None
            pid = await self.participants.create_in(
                conn,
                programme_id=invite.programme_id,
                role=invite.role,
                telegram_user_id=telegram_user_id,
                chat_id=chat_id,
                first_name=first_name,
                subject_ref=subject_ref,
                dek=dek,
                # a held membership can do nothing yet: the one in use stays in use
                take_use=not hold,
            )
            await conn.execute("UPDATE invites SET used_by=? WHERE id=?", (pid, invite.id))
            if hold:
                # not in the pair until a coordinator approves (approve links it then)
                await conn.execute(
                    "UPDATE participants SET awaiting_approval=1 WHERE id=?", (pid,))
            else:
                pair_complete = await self._link_pair(conn, pid, invite.role, invite.pair_id,
                                                      now)
        return pid, pair_complete

    async def _link_pair(self, conn: Any, pid: int, role: Role, pair_id: int | None,
                         now: str) -> bool:
        """Seat the person in their pair; True when both seats are now taken (matched)."""
        if pair_id is None or role not in (Role.MENTOR, Role.MENTEE):
            return False
        column = "mentor_id" if role is Role.MENTOR else "mentee_id"
        await conn.execute(
            f"UPDATE pairs SET {column}=? WHERE id=?",  # noqa: S608
            (pid, pair_id),
        )
        async with conn.execute(
            "SELECT mentor_id, mentee_id FROM pairs WHERE id=?", (pair_id,)
        ) as c:
            row = await c.fetchone()
        if row and row[0] and row[1]:
            await conn.execute(
                "UPDATE pairs SET state='matched', matched_at=? WHERE id=?", (now, pair_id))
            return True
        return False

    async def erase(self, participant_id: int) -> ErasureReport:
        """Crypto-shred and delete everything linked to a participant.

        The wrapped data key goes first, with the erasure's record, in one key store
        commit: even rows that survive elsewhere (old backups, WAL frames) can never be
        decrypted again, and whatever a restored backup brings back is deleted at start-up
        (apply_erasures). Rows follow in one database commit; a crash in between is
        finished by the next start-up. The ledger line recording the erasure carries a new
        random reference, not the person's, so it links to nothing in older backups.
        """
        participant = await self.participants.get(participant_id)
        if participant is None:
            return ErasureReport({}, ())
        await self.vault.shred(participant.subject_ref)
        deleted = await self._delete_rows(participant_id)
        return ErasureReport(
            deleted, ("one consent-ledger line recording the erasure, with no link to you",)
        )

    async def erase_all(self, participant_id: int) -> ErasureReport:
        """Erase every membership of this person's account (their own "erase everything",
        or an erasure on request of all of them): each membership as :meth:`erase` does,
        the account with the last. Rows deleted are summed over the memberships."""
        me = await self.participants.get(participant_id)
        if me is None:
            return ErasureReport({}, ())
        deleted: dict[str, int] = {}
        kept: tuple[str, ...] = ()
        for member in await self.participants.memberships(me):
            report = await self.erase(member.id)
            for table, count in report.deleted.items():
                deleted[table] = deleted.get(table, 0) + count
            kept = report.kept or kept
        return ErasureReport(deleted, kept)

    async def _delete_rows(self, participant_id: int) -> dict[str, int]:
        """The database half of an erasure: every row linked to the person, and one ledger
        line saying an erasure happened."""
        self.vault.forget(participant_id)
        self.participants.forget(participant_id)
        self.entries.forget(participant_id)
        account = await self.db.scalar(
            "SELECT account_id FROM participants WHERE id=?", (participant_id,))
        async with self.db.transaction() as conn:
            # every table of the person's data, from the one map (storage.personal_data)
            deleted = await personal_data.delete_rows(conn, participant_id)
            await conn.execute("DELETE FROM participants WHERE id=?", (participant_id,))
            deleted[personal_data.PROFILE] = 1
            # the account goes with its last membership, and only then
            cur = await conn.execute(
                "DELETE FROM accounts WHERE id=? AND NOT EXISTS "
                "(SELECT 1 FROM participants WHERE account_id=?)", (account, account))
            deleted[personal_data.ACCOUNT] = int(cur.rowcount)
            cur = await conn.execute(
                "INSERT INTO consent_ledger (participant_id, subject_ref, scope, version, "
                "granted, source, at) VALUES (NULL, ?, 'all', ?, 0, 'erasure', ?)",
                ("E-" + secrets.token_hex(8), self.consent.current_version, iso(utcnow())),
            )
            await self.integrity.sign_consent_row(conn, int(cur.lastrowid or 0))
        self.vault.forget(participant_id)
        self.participants.forget_all()  # the account's membership in use may have gone
        # Checkpoint so the deleted ciphertext leaves the WAL as well as the main file.
        await self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    async def personal_data(self, participant_id: int) -> dict[str, list[dict[str, Any]]]:
        """The person's rows of every mapped table /mydata shows as stored (consent decisions,
        reminders, quiet hours, pair events, chat settings, weekly summary schedule)."""
        return await personal_data.sections(self.db, participant_id)

    async def apply_erasures(self) -> int:
        """Erase again whoever the key store says was erased but the database still holds:
        a database backup from before the erasure restored with a later key store, or an
        erasure interrupted between its two commits. Returns how many people."""
        erased = await self.vault.erased_hashes()
        if not erased:
            return 0
        count = 0
        for row in await self.db.fetchall("SELECT id, subject_ref FROM participants"):
            if self.vault.erasure_hash(row["subject_ref"]) in erased:
                await self.vault.shred(row["subject_ref"])  # an older key store may hold it
                await self._delete_rows(int(row["id"]))
                count += 1
        return count
