"""A partner bank's back office, without sockets: take a file in, verify it, decide, report.

:class:`BankCore` is plain Python. The transports (:mod:`simulators.sftp`, :mod:`simulators.https`)
only move bytes into :meth:`BankCore.receive` and out of the outbox; the clock (``IReactorTime``:
only ``seconds()`` is read) and the seed are passed in, so the same scenario, seed and clock give
byte-identical reports.

Directory of one bank (``root``)::

    inbox/                  files from the gateway (final names; ``.<name>.part`` while uploading)
    inbox/receipts/         <name>.json per file taken (see docs/BANK_PROTOCOL.md)
    outbox/                 reports ready for the gateway (+ detached signatures)
    outbox/archive/         reports the gateway has taken (renamed there by SFTP, or acknowledged over HTTPS)
    state/                  the bank's own: staged reports, decisions, ledger, counters (not served)
    state/credits.csv       the ledger: one line per money movement (see :meth:`BankCore.credits`)
    state/uploads.jsonl     the upload log: one line per completed upload, repeats included
                            (see :class:`Upload`)

How a file is processed (all of it before anything is credited, memory flat in the file size):

1. same name and same bytes as before: nothing happens (the earlier receipt is the answer);
   same MsgId with other bytes: a replay, refused (``refusals.replay``, DU01);
2. file rules of the scenario (refuse a file, report late, twice, split);
3. the signature against the gateway's pinned certificate (``refusals.signature``);
4. one streaming pass: read with :mod:`formats`, check count and control sum
   (``refusals.control_sum``), decide each payment (scenario rules, then the account book) into a
   decisions file;
5. accepted: credits are booked in the ledger, reports are rendered, signed and staged, each with
   the time it is released to the outbox (value day, late days, return days on the bank's
   working-day calendar).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

from formats.errors import ControlTotalMismatch, FormatError, InboundFormatError, SignatureError
from formats.flatfile import layout_from_mapping, open_flat, write_results
from formats.flatfile.records import ResultFileHeader, ResultRow
from formats.iso20022.acmt import read_acmt023, write_acmt024
from formats.iso20022.camt053 import write_camt053
from formats.iso20022.camt054 import write_camt054
from formats.iso20022.pain001 import open_pain001
from formats.iso20022.pain002 import write_pain002
from formats.model import (
    CreditDebit,
    CreditTransfer,
    EntryDetail,
    NotificationHeader,
    StatusReportHeader,
    TransactionStatusLine,
    TxStatus,
    VerificationReport,
    VerificationResult,
)
from formats.money import from_fen, to_fen
from formats.reasons import ReasonTable
from formats.signature import get_scheme
from simulators.book import AccountBook
from simulators.scenario import Decision, FileRule, ItemFacts, Scenario

CST = dt.timezone(dt.timedelta(hours=8), "CST")
SIGNATURE_SUFFIX = {"cms": ".p7s", "sm2": ".sm2"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CHUNK = 1 << 16


class BankError(ValueError):
    """The request cannot be taken at all (bad name, unknown report): the peer's mistake."""


@dataclass(frozen=True)
class Receipt:
    name: str
    sha256: str
    msg_id: str
    received_at: str
    status: str  # "accepted" | "refused"
    reason: str | None = None  # the bank's words
    reason_code: str | None = None
    reports: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        d = asdict(self)
        d["reports"] = list(self.reports)
        return json.dumps(d, ensure_ascii=False, sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class Intake:
    """What :meth:`BankCore.receive` did: ``receipt``; ``repeat`` (same bytes again, nothing done);
    ``replay`` (same MsgId, other bytes: refused)."""

    receipt: Receipt
    repeat: bool = False
    replay: bool = False


#: what a completed upload came to, in the upload log
UPLOAD_OUTCOMES = ("accepted", "repeat", "refused")


@dataclass(frozen=True)
class Upload:
    """One completed upload (an SFTP rename to the final name, or a whole HTTPS ``PUT`` body), as the
    bank logs it in ``state/uploads.jsonl``: every one, also those that changed nothing.

    ``outcome``: ``accepted`` (taken and processed), ``repeat`` (the same bytes as a file taken
    before: a no-op, the earlier receipt answers) or ``refused`` (a replay or another whole-file
    refusal; ``reason_code`` says which). ``at`` is the bank's time (ISO 8601, UTC+8).
    """

    at: str
    name: str
    sha256: str
    msg_id: str
    outcome: str
    reason_code: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


class Credit(NamedTuple):
    """One line of the ledger ``state/credits.csv``: a payment credited, or returned."""

    booking_date: str
    msg_id: str
    end_to_end_id: str
    account: str
    amount: Decimal
    kind: str  # "credit" | "return"


@dataclass
class Ledger:
    """Money moved by the bank, in fen. ``credits.csv`` in ``state/`` has one line per movement."""

    credited_count: int = 0
    credited_fen: int = 0
    returned_count: int = 0
    returned_fen: int = 0

    @property
    def credited_total(self) -> Decimal:
        return from_fen(self.credited_fen)


@dataclass
class _Slot:
    """Lines of one report (one release time), split into parts of at most ``split`` lines."""

    offset: int  # extra working days
    split: int
    parts: list = field(default_factory=list)  # [count, sum_fen, n_settled, n_rejected]

    def add(self, fen: int, settled: bool) -> None:
        if not self.parts or (self.split and self.parts[-1][0] >= self.split):
            self.parts.append([0, 0, 0, 0])
        p = self.parts[-1]
        p[0] += 1
        p[1] += fen
        p[2 if settled else 3] += 1


_CLEAN = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def _clean(text: str | None) -> str:
    if not text:
        return ""
    if "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_CLEAN)
    return text


def _yuan(fen: int) -> Decimal:
    """``from_fen(fen)`` (the same value with two places) for the fen of one payment, in a
    quarter of the time: the reports convert every line."""
    return Decimal(fen).scaleb(-2)


class BankCore:
    """One simulated bank's processing. Not thread-safe: call from one thread at a time.

    :param bank: the bank's :class:`gateway.config.model.Bank`.
    :param root: the bank's directory (created).
    :param keys: :class:`simulators.keys.BankKeyPaths`.
    :param scenario: :class:`Scenario`; ``seed`` overrides ``scenario.seed`` when given.
    :param clock: an ``IReactorTime`` (``seconds()`` is read).
    :param calendar: the bank's :class:`gateway.calendar.WorkingDayCalendar`.
    :param reasons: the :class:`ReasonTable` (bank texts for reason codes).
    :param layouts: raw layout mappings by name (``config.layouts``).
    :param book: the :class:`AccountBook`; ``None`` loads what the scenario names.
    :param check_schema: validate pain.001 against the XSD while reading.
    """

    def __init__(self, bank, *, root: Path, keys, scenario: Scenario, clock, calendar, reasons: ReasonTable,
                 layouts: dict, seed: int | None = None, book: AccountBook | None = None,
                 check_schema: bool = True) -> None:
        self.bank = bank
        self.root = Path(root)
        self.keys = keys
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.clock = clock
        self.calendar = calendar
        self.reasons = reasons
        self.check_schema = check_schema
        self.scheme = get_scheme(bank.signature)
        self.book = book if book is not None else self._load_book()
        self.flat_in = _layout(layouts, bank.layout_name) if bank.layout_name else None
        self.flat_out = {kind: _layout(layouts, kind[5:]) for kind in bank.reports if kind.startswith("flat:")}
        if self.scheme.kind == "enveloped" and (self.flat_in or self.flat_out):
            raise BankError(f"bank {bank.id}: xmldsig cannot sign flat files; use cms or sm2")
        for d in ("inbox/receipts", "outbox/archive", "state/reports", "state/work", "state/replays"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.inbox, self.outbox = self.root / "inbox", self.root / "outbox"
        self.receipts: dict[str, Receipt] = {}
        self.uploads: list[Upload] = []  # the upload log, oldest first (also in state/uploads.jsonl)
        self.msg_ids: dict[str, str] = {}  # MsgId -> name of the accepted file
        self.pending: list[tuple[float, int, str]] = []  # (due seconds, order, report name)
        self.ledger = Ledger()
        self.counter = 0
        self.verify_counter = 0
        self.balance_fen = 0
        self._order = 0
        self._seed_tag = hashlib.sha256(f"{self.seed}:{bank.id}".encode()).hexdigest()[:4].upper()
        self._load_state()

    # ------------------------------------------------------------------ state

    def _load_book(self) -> AccountBook:
        b = self.scenario.book
        if b.file is not None:
            return AccountBook.from_file(b.file, unknown=b.unknown)
        if b.generate:
            return AccountBook.generate(self.seed, b.generate, unknown=b.unknown)
        return AccountBook((), unknown=b.unknown)

    def _state_path(self) -> Path:
        return self.root / "state" / "state.json"

    def _load_state(self) -> None:
        log = self._uploads_path()
        if log.exists():
            with open(log, encoding="utf-8") as f:
                self.uploads = [Upload(**json.loads(line)) for line in f if line.strip()]
        p = self._state_path()
        if not p.exists():
            return
        s = json.loads(p.read_text("utf-8"))
        self.counter, self.verify_counter, self.balance_fen = s["counter"], s["verify_counter"], s["balance_fen"]
        self.msg_ids = s["msg_ids"]
        self.ledger = Ledger(**s["ledger"])
        self.scenario.fired.update(s["fired"])
        self.pending = [tuple(x) for x in s["pending"]]
        self._order = max((x[1] for x in self.pending), default=0)
        for f in (self.inbox / "receipts").glob("*.json"):
            r = json.loads(f.read_text("utf-8"))
            r["reports"] = tuple(r.get("reports", ()))
            if f.name == r["name"] + ".json":
                self.receipts[r["name"]] = Receipt(**r)

    def _uploads_path(self) -> Path:
        return self.root / "state" / "uploads.jsonl"

    def _log_upload(self, name: str, msg_id: str, sha: str, now: dt.datetime, intake: "Intake") -> None:
        outcome = "repeat" if intake.repeat else intake.receipt.status
        entry = Upload(now.isoformat(), name, sha, msg_id, outcome,
                       intake.receipt.reason_code if outcome == "refused" else None)
        with open(self._uploads_path(), "a", encoding="utf-8", newline="\n") as f:
            f.write(entry.to_json() + "\n")
        self.uploads.append(entry)

    def credits(self) -> Iterator[Credit]:
        """Every line of the ledger (``state/credits.csv``), oldest first: what was credited and returned."""
        p = self.root / "state" / "credits.csv"
        if not p.exists():
            return
        with open(p, encoding="utf-8", newline="\n") as f:
            for line in f:
                day, msg_id, e2e, account, amount, kind = line.rstrip("\n").split(",")
                yield Credit(day, msg_id, e2e, account, Decimal(amount), kind)

    def _save_state(self) -> None:
        s = {"counter": self.counter, "verify_counter": self.verify_counter, "balance_fen": self.balance_fen,
             "msg_ids": self.msg_ids, "ledger": asdict(self.ledger), "fired": self.scenario.fired,
             "pending": self.pending}
        _atomic_write(self._state_path(), json.dumps(s, ensure_ascii=False, sort_keys=True).encode("utf-8"))

    # ------------------------------------------------------------------ time

    def now(self) -> dt.datetime:
        """The bank's local time (UTC+8) from the injected clock, to the second."""
        return dt.datetime.fromtimestamp(int(self.clock.seconds()), tz=CST)

    def value_date(self, when: dt.datetime) -> dt.date:
        """The day a file received at ``when`` is credited: today before the cut-off on a working
        day, else the next working day (Art. 20: within one working day)."""
        today = when.date()
        if self.calendar.is_workday(today) and when.time() < self.bank.cutoff:
            return today
        return self.calendar.add_working_days(today, 1).date

    def _release_at(self, value_date: dt.date, days: int, now: dt.datetime) -> dt.datetime:
        day = self.calendar.add_working_days(value_date, days).date if days else value_date
        if day == now.date():
            return now
        return dt.datetime.combine(day, self.scenario.reports.release_time, tzinfo=CST)

    def _new_msg_id(self, when: dt.datetime) -> str:
        self.counter += 1
        return f"{self.bank.bank_code[:3]}{self._seed_tag}{when:%Y%m%d}{self.counter:06d}"

    # ------------------------------------------------------------------ receiving

    def instruction_suffix(self) -> str:
        return ".txt" if self.flat_in else ".xml"

    def check_name(self, name: str) -> str:
        """The MsgId a file name carries; :raises BankError: a name the bank does not take."""
        if not _NAME.fullmatch(name) or not name.endswith(self.instruction_suffix()):
            raise BankError(f"{name!r}: an instruction file is named <MsgId>{self.instruction_suffix()}")
        return name[: -len(self.instruction_suffix())]

    def signature_path(self, name: str) -> Path | None:
        suffix = SIGNATURE_SUFFIX.get(self.bank.signature)
        return self.inbox / (name + suffix) if suffix else None

    def receive(self, name: str, staged: Path, signature: bytes | None = None) -> Intake:
        """Take the complete file ``staged`` (moved or removed by this call) as ``inbox/<name>``.

        ``signature``: the detached signature bytes; ``None`` reads ``inbox/<name>.p7s|.sm2`` if present.
        Every call that gets past the name check is written to the upload log (:attr:`uploads`).

        :raises BankError: the name is not an instruction file name (nothing is taken).
        """
        msg_id = self.check_name(name)
        sha = _sha256_file(staged)
        now = self.now()
        intake = self._take(name, msg_id, sha, now, staged, signature)
        self._log_upload(name, msg_id, sha, now, intake)
        return intake

    def _take(self, name: str, msg_id: str, sha: str, now: dt.datetime, staged: Path,
              signature: bytes | None) -> Intake:
        prev = self.receipts.get(name)
        if prev is not None and prev.sha256 == sha:
            staged.unlink(missing_ok=True)
            return Intake(prev, repeat=True)
        other = self.msg_ids.get(msg_id)
        if other is not None and other != name and self.receipts[other].sha256 == sha:
            staged.unlink(missing_ok=True)
            return Intake(self.receipts[other], repeat=True)
        if other is not None or (prev is not None and prev.status == "accepted"):
            keep = self.root / "state" / "replays" / f"{name}.{sha[:12]}"
            os.replace(staged, keep)
            receipt = self._refuse(name, msg_id, sha, now, self.scenario.refusals.replay, None, keep,
                                   receipt_name=f"{name}.{sha[:12]}" if prev is not None else name)
            self._save_state()
            return Intake(receipt, replay=True)
        path = self.inbox / name
        os.replace(staged, path)
        if signature is None:
            sp = self.signature_path(name)
            signature = sp.read_bytes() if sp is not None and sp.exists() else None
        elif self.signature_path(name) is not None:
            _atomic_write(self.signature_path(name), signature)
        receipt = self._process(name, msg_id, sha, now, path, signature)
        self._save_state()
        return Intake(receipt)

    def _process(self, name: str, msg_id: str, sha: str, now: dt.datetime, path: Path,
                 signature: bytes | None) -> Receipt:
        refusals = self.scenario.refusals
        rule = self.scenario.decide_file(name, msg_id, seed=self.seed)
        if rule.refuse:
            return self._refuse(name, msg_id, sha, now, rule.refuse, None, path)
        try:
            content = self._verified(name, path, signature)
        except FormatError as e:
            return self._refuse(name, msg_id, sha, now, refusals.signature, f"签名验证失败: {e.message}", path)
        work = self.root / "state" / "work" / f"{msg_id}.tsv"
        try:
            facts = self._decide(name, msg_id, content, work, rule)
        except ControlTotalMismatch as e:
            work.unlink(missing_ok=True)
            return self._refuse(name, msg_id, sha, now, refusals.control_sum, f"控制总额不符: {e.message}", path)
        except InboundFormatError as e:
            work.unlink(missing_ok=True)
            return self._refuse(name, msg_id, sha, now, refusals.unreadable, f"{e.where()}: {e.message}", path)
        finally:
            if isinstance(content, Path) and content != path:
                content.unlink(missing_ok=True)
        reports = self._accept(name, msg_id, now, work, facts, rule)
        work.unlink(missing_ok=True)
        receipt = Receipt(name, sha, msg_id, now.isoformat(), "accepted", reports=tuple(reports))
        self._store_receipt(name, receipt)
        self.msg_ids[msg_id] = name
        return receipt

    def _verified(self, name: str, path: Path, signature: bytes | None):
        """The content to process: the file itself (detached schemes) or the signed bytes (xmldsig)."""
        pinned = self.keys.gateway_sign_cert.read_bytes()
        if self.scheme.kind == "detached":
            if self.bank.signature == "sm2":
                pinned = pinned.strip()
            self.scheme.verify(_chunks(path), signature, pinned, source=name)
            return path
        signed = self.scheme.verify(path.read_bytes(), pinned, source=name, max_bytes=2 * 1024**3)
        tmp = self.root / "state" / "work" / f"{name}.signed"
        tmp.write_bytes(signed)
        return tmp

    def _read_instruction(self, name: str, content: Path, stream: BinaryIO):
        """``(header facts, iterator of CreditTransfer)`` from a pain.001 or a flat file."""
        if self.flat_in is not None:
            reader = open_flat(stream, self.flat_in.instruction, source=name, bank_code=self.bank.bank_code)
            return dict(reader.header or {}), iter(reader)
        schema = None if self.check_schema else False
        if self.scheme.kind == "enveloped":
            schema = False  # the signed bytes keep an empty SplmtryData/Envlp, which the XSD refuses
        reader = open_pain001(stream, source=name, schema=schema)
        h = reader.header
        return {"message_id": h.message_id, "count": h.number_of_transactions, "sum": h.control_sum,
                "payment_info_id": h.payment_info_id}, iter(reader)

    def _decide(self, name: str, msg_id: str, content: Path, work: Path, rule: FileRule) -> dict:
        """Pass 1: read every payment, decide it, write one line per payment to ``work``."""
        slots: dict[int, _Slot] = {}
        returns: dict[int, _Slot] = {}
        total_fen = 0
        count = 0
        with open(content, "rb") as stream, open(work, "w", encoding="utf-8", newline="\n") as out:
            header, txs = self._read_instruction(name, content, stream)
            if self.flat_in is None and header["message_id"] != msg_id:
                raise InboundFormatError(f"the file name says MsgId {msg_id} but GrpHdr/MsgId is {header['message_id']}",
                                         source=name, field="MsgId", value=header["message_id"])
            for seq, tx in enumerate(txs, 1):
                facts = ItemFacts(msg_id, name, seq, tx.end_to_end_id, tx.creditor_account, tx.creditor_name,
                                  tx.id_number, tx.amount)
                d = self.scenario.decide_item(facts, seed=self.seed, book=self.book)
                fen = to_fen(tx.amount)
                settled = d.status == "ACSC"
                offset = rule.late_days + d.late_days
                slot = slots.get(offset)
                if slot is None:
                    slot = slots[offset] = _Slot(offset, rule.split_items)
                slot.add(fen, settled)
                if settled and d.return_days:
                    slot = returns.get(d.return_days)
                    if slot is None:
                        slot = returns[d.return_days] = _Slot(d.return_days, rule.split_items)
                    slot.add(fen, True)
                total_fen += fen
                count += 1
                out.write("\t".join((str(seq), _clean(tx.end_to_end_id), _clean(tx.instruction_id), str(fen),
                                     _clean(tx.creditor_name), _clean(tx.creditor_account), _clean(tx.id_number),
                                     _clean(tx.remittance), d.status, d.reason or "", str(d.return_days),
                                     d.return_reason or "", str(offset))) + "\n")
        return {"header": header, "slots": slots, "returns": returns, "count": count, "sum_fen": total_fen}

    def _lines(self, work: Path) -> Iterator[list[str]]:
        with open(work, encoding="utf-8", newline="\n") as f:
            for line in f:
                yield line.rstrip("\n").split("\t")

    # ------------------------------------------------------------------ accepting and reporting

    def _accept(self, name: str, msg_id: str, now: dt.datetime, work: Path, facts: dict, rule: FileRule) -> list[str]:
        value_date = self.value_date(now)
        with open(self.root / "state" / "credits.csv", "a", encoding="utf-8", newline="\n") as ledger:
            for f in self._lines(work):
                if f[8] == "ACSC":
                    fen = int(f[3])
                    self.ledger.credited_count += 1
                    self.ledger.credited_fen += fen
                    self.balance_fen -= fen
                    ledger.write(f"{value_date},{msg_id},{f[1]},{f[5]},{_yuan(fen)},credit\n")
        names: list[str] = []
        for offset in sorted(facts["slots"]):
            slot = facts["slots"][offset]
            at = self._release_at(value_date, offset, now)
            names += self._render_slot(msg_id, work, facts, slot, at, value_date, returns=False, duplicate=rule.duplicate)
        for days in sorted(facts["returns"]):
            slot = facts["returns"][days]
            at = self._release_at(value_date, days, now)
            names += self._render_slot(msg_id, work, facts, slot, at, at.date(), returns=True, duplicate=rule.duplicate)
        return names

    def _select(self, work: Path, slot: _Slot, returns: bool) -> Iterator[list[str]]:
        for f in self._lines(work):
            if returns:
                if f[8] == "ACSC" and int(f[10]) == slot.offset:
                    yield f
            elif int(f[12]) == slot.offset:
                yield f

    def _parts(self, work: Path, slot: _Slot, returns: bool) -> Iterator[tuple[list, Iterator[list[str]]]]:
        """``(part stats, lines of that part)`` in order; each part's iterator must be consumed before the next."""
        lines = self._select(work, slot, returns)
        for stats in slot.parts:
            yield stats, (next(lines) for _ in range(stats[0]))

    def _render_slot(self, msg_id: str, work: Path, facts: dict, slot: _Slot, at: dt.datetime, booking: dt.date,
                     *, returns: bool, duplicate: bool) -> list[str]:
        names = []
        if returns:
            # returns are booked on the return day; they reach the balance then too (deterministic either way)
            with open(self.root / "state" / "credits.csv", "a", encoding="utf-8", newline="\n") as ledger:
                for f in self._select(work, slot, True):
                    self.ledger.returned_count += 1
                    self.ledger.returned_fen += int(f[3])
                    self.balance_fen += int(f[3])
                    ledger.write(f"{booking},{msg_id},{f[1]},{f[5]},{_yuan(int(f[3]))},return\n")
        for kind in self.bank.reports:
            if kind == "pain.002" and returns:
                continue  # a status report cannot carry a return; camt or the flat file does
            if kind.startswith("camt.") and not returns and not any(p[2] for p in slot.parts):
                continue  # nothing was booked: no notification or statement
            for stats, lines in self._parts(work, slot, returns):
                report_id = self._new_msg_id(at)
                name = self._render(kind, report_id, msg_id, facts, stats, lines, at, booking, returns)
                self._stage(name, at, duplicate)
                names.append(name)
        return names

    def _render(self, kind: str, report_id: str, msg_id: str, facts: dict, stats: list, lines, at: dt.datetime,
                booking: dt.date, returns: bool) -> str:
        count, sum_fen, n_ok, n_bad = stats
        bank = self.bank
        if kind.startswith("flat:"):
            name = f"{msg_id}_{report_id}.txt"
            header = ResultFileHeader(at.date(), str(facts["header"].get("unit_code") or ""), count, from_fen(sum_fen), msg_id)

            def rows():
                for f in lines:
                    ok = f[8] == "ACSC" and not returns
                    if returns:
                        text = "退汇: " + self.reasons.bank_text_for(f[11] or self.scenario.reports.return_reason)
                    elif ok:
                        text = "交易成功"
                    else:
                        text = self.reasons.bank_text_for(f[9])
                    tx = CreditTransfer(f[1], _yuan(int(f[3])), f[4], f[5], bank.bank_code, f[7])
                    yield ResultRow(int(f[0]), tx, TxStatus.ACCEPTED_SETTLEMENT_COMPLETED if ok else TxStatus.REJECTED, text)

            self._write_staged(name, lambda out: write_results(out, self.flat_out[kind], header, rows(), source=name), at)
            return name
        name = f"{report_id}.xml"
        signer = self._signer()
        if kind == "pain.002":
            status = (TxStatus.ACCEPTED_SETTLEMENT_COMPLETED if not n_bad else
                      TxStatus.REJECTED if not n_ok else TxStatus.PARTIALLY_ACCEPTED)
            h = StatusReportHeader(report_id, at, msg_id, "pain.001.001.09", status,
                                   original_number_of_transactions=facts["count"],
                                   original_control_sum=from_fen(facts["sum_fen"]))

            def status_lines():
                for f in lines:
                    ok = f[8] == "ACSC"
                    yield TransactionStatusLine(
                        f[1], TxStatus.ACCEPTED_SETTLEMENT_COMPLETED if ok else TxStatus.REJECTED,
                        None if ok else f[9], None if ok else self.reasons.bank_text_for(f[9]),
                        f[2] or None, _yuan(int(f[3])), f[5])

            pinf = facts["header"].get("payment_info_id")
            self._write_staged(name, lambda out: write_pain002(out, h, status_lines(), version=self.scenario.reports.pain002_version,
                                                               original_payment_info_id=pinf, signer=signer), at)
            return name
        message_type = "camt.054.001.08" if kind == "camt.054" else "camt.053.001.08"
        h = NotificationHeader(report_id, at, bank.disbursement_account_number, message_type, report_id)

        def entries():
            batch = 0
            for i, f in enumerate(lines):
                if i % 1000 == 0:
                    batch += 1
                if returns:
                    reason = f[11] or self.scenario.reports.return_reason
                    yield EntryDetail(f[1], _yuan(int(f[3])), CreditDebit.CREDIT, True, reason,
                                      self.reasons.bank_text_for(reason), entry_reference=f"{report_id}R{batch}",
                                      booking_date=booking, value_date=booking, counterparty_name=f[4] or None,
                                      counterparty_account=f[5] or None)
                elif f[8] == "ACSC":
                    yield EntryDetail(f[1], _yuan(int(f[3])), CreditDebit.DEBIT, entry_reference=f"{report_id}B{batch}",
                                      booking_date=booking, value_date=booking, counterparty_name=f[4] or None,
                                      counterparty_account=f[5] or None)

        if kind == "camt.054":
            self._write_staged(name, lambda out: write_camt054(out, h, entries(), signer=signer), at)
        else:
            balance = from_fen(self.balance_fen)
            self._write_staged(name, lambda out: write_camt053(out, h, entries(), closing_balance=balance,
                                                               balance_date=booking, signer=signer), at)
        return name

    def _signer(self):
        if self.scheme.kind != "enveloped":
            return None
        from formats.signature.xmldsig import StreamingEnvelopedSigner

        return StreamingEnvelopedSigner(self.keys.sign_key.read_bytes(), self.keys.sign_cert.read_bytes())

    def _write_staged(self, name: str, write, at: dt.datetime) -> None:
        """Render into ``state/reports/<name>`` and sign it (detached schemes) beside it."""
        path = self.root / "state" / "reports" / name
        tmp = path.with_name("." + name + ".part")
        with open(tmp, "wb") as out:
            write(out)
        os.replace(tmp, path)
        suffix = SIGNATURE_SUFFIX.get(self.bank.signature)
        if suffix:
            if self.bank.signature == "cms":
                sig = self.scheme.sign(_chunks(path), self.keys.sign_key.read_bytes(), self.keys.sign_cert.read_bytes(),
                                       signing_time=at.astimezone(dt.timezone.utc))
            else:
                sig = self.scheme.sign(_chunks(path), self.keys.sign_key.read_text().strip(),
                                       self.keys.sign_cert.read_text().strip())
            _atomic_write(path.with_name(name + suffix), sig)

    def _stage(self, name: str, at: dt.datetime, duplicate: bool) -> None:
        self._order += 1
        self.pending.append((at.timestamp(), self._order, name))
        if duplicate:
            self._order += 1
            self.pending.append((at.timestamp() + self.scenario.reports.duplicate_after_seconds, self._order, name))
        self.pending.sort()

    # ------------------------------------------------------------------ refusing

    def _refuse(self, name: str, msg_id: str, sha: str, now: dt.datetime, code: str, detail: str | None,
                path: Path, *, receipt_name: str | None = None) -> Receipt:
        """Refuse a whole file: nothing is credited; a refusal report in the bank's format."""
        text = self.reasons.bank_text_for(code) + (f" ({detail})" if detail else "")
        report_id = self._new_msg_id(now)
        flat = next((k for k in self.bank.reports if k.startswith("flat:")), None)
        if flat is not None:
            report = f"{msg_id}_{report_id}.txt"
            count, total, unit = 0, 0, ""
            for unit, tx in self._readable_rows(name, path):
                count += 1
                total += to_fen(tx.amount)
            header = ResultFileHeader(now.date(), unit or self.bank.bank_code, count, from_fen(total), msg_id)
            rows = (ResultRow(i, tx, TxStatus.REJECTED, text[:60].strip())
                    for i, (_, tx) in enumerate(self._readable_rows(name, path), 1))
            self._write_staged(report, lambda out: write_results(out, self.flat_out[flat], header, rows, source=report), now)
        else:
            report = f"{report_id}.xml"
            h = StatusReportHeader(report_id, now, msg_id, "pain.001.001.09", TxStatus.REJECTED, code, text[:500])
            signer = self._signer()
            self._write_staged(report, lambda out: write_pain002(out, h, [], version=self.scenario.reports.pain002_version,
                                                                 signer=signer), now)
        self._stage(report, now, False)
        receipt = Receipt(name, sha, msg_id, now.isoformat(), "refused", text, code, (report,))
        self._store_receipt(receipt_name or name, receipt)
        return receipt

    def _readable_rows(self, name: str, path: Path) -> Iterator[tuple[str, CreditTransfer]]:
        """``(unit code, transfer)`` for whatever rows of a refused flat file can be read (unverified:
        only to answer each line; the sequence numbers are renumbered 1, 2, ...)."""
        if self.flat_in is None:
            return
        with open(path, "rb") as stream:
            try:
                reader = open_flat(stream, self.flat_in.instruction, source=name, collect=True, bank_code=self.bank.bank_code)
                unit = str((reader.header or {}).get("unit_code") or "")
                for tx in reader:
                    if isinstance(tx.amount, Decimal) and tx.amount > 0:
                        yield unit, tx
            except FormatError:
                return

    def _store_receipt(self, key: str, receipt: Receipt) -> None:
        if key == receipt.name:
            self.receipts[key] = receipt
        _atomic_write(self.inbox / "receipts" / f"{key}.json", receipt.to_json())

    # ------------------------------------------------------------------ outbox

    def next_due(self) -> float | None:
        """When the next staged report is due (clock seconds), or ``None``."""
        return self.pending[0][0] if self.pending else None

    def release_due(self) -> list[str]:
        """Move every report that is due into ``outbox/`` (temporary name, then rename); their names."""
        now = self.clock.seconds()
        out = []
        while self.pending and self.pending[0][0] <= now:
            _, _, name = self.pending.pop(0)
            src = self.root / "state" / "reports" / name
            suffix = SIGNATURE_SUFFIX.get(self.bank.signature)
            if suffix:
                _publish(src.with_name(name + suffix), self.outbox / (name + suffix))
            _publish(src, self.outbox / name)
            out.append(name)
        if out:
            self._save_state()
        return out

    def list_reports(self) -> list[str]:
        """Reports in the outbox not yet taken (signature files aside), sorted."""
        sig = tuple(SIGNATURE_SUFFIX.values())
        return sorted(p.name for p in self.outbox.iterdir()
                      if p.is_file() and not p.name.startswith(".") and not p.name.endswith(sig))

    def report_path(self, name: str) -> Path | None:
        """A released report by name (in the outbox or already archived)."""
        if not _NAME.fullmatch(name):
            return None
        for d in (self.outbox, self.outbox / "archive"):
            if (d / name).is_file():
                return d / name
        return None

    def report_signature(self, name: str) -> bytes | None:
        suffix = SIGNATURE_SUFFIX.get(self.bank.signature)
        p = self.report_path(name)
        if suffix is None or p is None:
            return None
        s = p.with_name(name + suffix)
        return s.read_bytes() if s.exists() else None

    def ack(self, name: str) -> bool:
        """The gateway has the report: it leaves the outbox for ``outbox/archive``. False if unknown."""
        if self.report_path(name) is None:
            return False
        src = self.outbox / name
        if src.is_file():
            suffix = SIGNATURE_SUFFIX.get(self.bank.signature)
            if suffix and src.with_name(name + suffix).exists():
                os.replace(src.with_name(name + suffix), self.outbox / "archive" / (name + suffix))
            os.replace(src, self.outbox / "archive" / name)
        return True

    def receipt_json(self, name: str) -> bytes | None:
        p = self.inbox / "receipts" / f"{name}.json"
        return p.read_bytes() if _NAME.fullmatch(name) and p.is_file() else None

    # ------------------------------------------------------------------ verification

    def verify_xml(self, data: bytes) -> bytes:
        """acmt.023 in, acmt.024 out. :raises FormatError: the request cannot be read."""
        req = read_acmt023(data, source="verify")
        results = tuple(self._verify_one(q.query_id, q.account, q.name, q.id_number) for q in req.queries)
        self.verify_counter += 1
        now = self.now()
        report = VerificationReport(f"V{self.bank.bank_code[:3]}{self._seed_tag}{now:%Y%m%d}{self.verify_counter:06d}",
                                    now, req.message_id, results)
        return write_acmt024(report, assigner=self.bank.name)

    def verify_json(self, data: bytes) -> bytes:
        """``{"queries": [{"query_id", "name", "account", "id_number"?}]}`` ->
        ``{"results": [{"query_id", "verified", "reason_code"}]}``. :raises BankError: bad request."""
        try:
            queries = json.loads(data.decode("utf-8"))["queries"]
            results = [self._verify_one(str(q["query_id"]), str(q["account"]), str(q["name"]), q.get("id_number"))
                       for q in queries]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BankError(f"not a verification request: {e}") from None
        body = {"results": [{"query_id": r.query_id, "verified": r.verified, "reason_code": r.reason_code,
                             "reason_text": r.reason_text} for r in results]}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _verify_one(self, query_id: str, account: str, name: str, id_number: str | None) -> VerificationResult:
        code = self.book.check(account, name, id_number)
        return VerificationResult(query_id, code is None, code, self.reasons.bank_text_for(code) if code else None)


# ---------------------------------------------------------------------- file helpers


def _layout(layouts: dict, name: str):
    """``config.layouts[name]``: already a FileLayout, or a raw mapping to build one from."""
    value = layouts[name]
    return value if hasattr(value, "instruction") else layout_from_mapping(value, source=name)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    for c in _chunks(path):
        h.update(c)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _publish(src: Path, dest: Path) -> None:
    """Put ``src`` at ``dest`` under a temporary name first, so a reader never sees half a file."""
    tmp = dest.with_name("." + dest.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
