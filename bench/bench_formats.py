"""Benchmark of the ISO 20022 codecs: time and peak memory per case, each in a fresh process.

    python bench/bench_formats.py [--sizes 10000,100000,1000000]

Cases, for every size N:

* ``pain001_ours``   — write N transactions with ``write_pain001`` to a file, signed with the
  ``StreamingEnvelopedSigner`` when available, while an ``xmllint --stream`` child validates the
  same bytes against the official XSD on the second core (``formats.xsd.XmllintTee``). Time is
  generate+sign+validate (wall).
* ``pain001_ours_inproc`` — the same, validated afterwards in-process (``safe_iterparse``).
* ``pain001_sepaxml`` — ``sepaxml`` building the same N transactions (export without
  validation), for comparison (skipped above 100k: it holds the whole tree).
* ``pain002_parse`` / ``camt054_parse`` — read and XSD-validate an N-entry file (written
  beforehand in another process) with ``open_pain002`` / ``open_camt054``, as the gateway
  does: a file longer than one read is validated by an ``xmllint --stream`` child on the
  second core while the reader parses (``formats.xsd.OfficialXsd``).

Peak RSS is the child's own ``ru_maxrss``; ``memory_mb`` adds the peak RSS of the ``xmllint``
validator it runs, sampled from ``/proc`` while it runs (``bench.targets.children_peak_mb``; its
``RUSAGE_CHILDREN`` figure would be the RSS of the Python that spawned it). Both run at once, so
the sum bounds the pair's peak. ``cpu_s`` is the CPU time of the same span, the
child's own plus its waited-for children's (the ``xmllint`` validator): on a loaded machine the
wall times (and the ratio to sepaxml, which needs the second core free for ``xmllint``) stretch,
CPU times much less. Results go to ``bench/results/formats.json``.
Targets (issue 3), each in the table as met or MISSED and in the JSON; a missed one exits 1:

* ``pain001_ours`` (the pipeline under target; ``pain001_ours_inproc`` is shown beside it for
  comparison) at 100k: wall time at most 1/3 of ``pain001_sepaxml``'s for the same 100k;
* ``memory_mb`` at most 64 MB at 10k, 100k and 1M for ``pain001_ours`` (with its ``xmllint``) and
  both parsers;
* ``pain002_parse`` and ``camt054_parse`` at 100k: at least 50,000 entries/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from bench.targets import Peak, at_least, at_most, children_peak_mb, finish  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results" / "formats.json"
RATIO_MAX, RATIO_AT = 1 / 3, 100_000  # pain001_ours / pain001_sepaxml, wall time
MEMORY_MB_MAX, MEMORY_AT = 64.0, (10_000, 100_000, 1_000_000)
MEMORY_CASES = ("pain001_ours", "pain002_parse", "camt054_parse")
PARSE_MIN, PARSE_AT = 50_000, 100_000  # entries/s


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (xmllint)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- cases (run in a child)


def _signer():
    try:
        from formats.signature.keys import make_leaf, make_test_ca
        from formats.signature.xmldsig import StreamingEnvelopedSigner
    except ImportError:  # pragma: no cover
        return None
    ca_key, ca_cert = make_test_ca("bench CA")
    key, cert = make_leaf(ca_key, ca_cert, "bench")
    return StreamingEnvelopedSigner(key, cert)


def case_pain001_ours(n: int, workdir: pathlib.Path) -> dict:
    """Generate + sign, validated concurrently by ``xmllint --stream`` (``XmllintTee``)."""
    from formats.iso20022.pain001 import write_pain001
    from formats.iso20022.testing import sample_credit_transfers, sample_payment_header
    from formats.xsd import XmllintTee, xsd_path

    signer = _signer()
    xsd = xsd_path("pain.001.001.09")
    path = workdir / f"pain001-{n}.xml"
    c0, t0 = _cpu(), time.perf_counter()
    with Peak(children_peak_mb) as xmllint, open(path, "wb") as out, XmllintTee(out, xsd, source=str(path)) as sink:
        result = write_pain001(sink, sample_payment_header(n), sample_credit_transfers(n), signer=signer)
    t1, c1 = time.perf_counter(), _cpu()
    assert result.number_of_transactions == n
    assert xmllint.mb > 0, "the xmllint validator's memory was not seen"
    return {"seconds": t1 - t0, "cpu_s": c1 - c0, "bytes": result.bytes_written, "signed": result.signed,
            "validator": "xmllint --stream", "validator_peak_rss_mb": xmllint.mb}


def case_pain001_ours_inproc(n: int, workdir: pathlib.Path) -> dict:
    """Generate + sign, then validate in-process (``safe_iterparse`` with the schema)."""
    from formats.iso20022.pain001 import write_pain001
    from formats.iso20022.testing import sample_credit_transfers, sample_payment_header
    from formats.xmlsafe import release, safe_iterparse
    from formats.xsd import schema_for

    signer = _signer()
    schema = schema_for("pain.001.001.09")
    path = workdir / f"pain001-{n}.xml"
    c0, t0 = _cpu(), time.perf_counter()
    with open(path, "wb") as out:
        result = write_pain001(out, sample_payment_header(n), sample_credit_transfers(n), signer=signer)
    t1 = time.perf_counter()
    count = 0
    with open(path, "rb") as f:
        for _, el in safe_iterparse(f, source=str(path), tag="{*}CdtTrfTxInf", schema=schema, max_bytes=1 << 40):
            count += 1
            release(el)
    t2, c2 = time.perf_counter(), _cpu()
    assert count == n
    return {"seconds": t2 - t0, "cpu_s": c2 - c0, "generate_sign_s": t1 - t0, "validate_s": t2 - t1, "bytes": result.bytes_written,
            "signed": result.signed, "validator": "in-process"}


def case_pain001_sepaxml(n: int, workdir: pathlib.Path) -> dict:
    from sepaxml import SepaTransfer

    c0, t0 = _cpu(), time.perf_counter()
    config = {"name": "某县财政局", "IBAN": "NL50BANK1234567890", "BIC": "BANKNL2A", "batch": True, "currency": "EUR"}
    sepa = SepaTransfer(config, schema="pain.001.001.09", clean=False)
    for i in range(1, n + 1):
        sepa.add_payment({"name": "张三", "IBAN": "NL50BANK1234567890", "BIC": "BANKNL2A", "amount": 10000 + i % 50000,
                          "execution_date": dt.date(2026, 11, 3), "description": "耕地地力保护补贴 2026-11",
                          "endtoend_id": f"E{i:010d}"})
    data = sepa.export(validate=False)
    return {"seconds": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "bytes": len(data)}


def _prepare(kind: str, n: int, workdir: pathlib.Path) -> pathlib.Path:
    path = workdir / f"{kind}-{n}.xml"
    if path.exists():
        return path
    from formats.iso20022 import testing as t

    with open(path, "wb") as out:
        if kind == "pain002":
            from formats.iso20022.pain002 import write_pain002

            write_pain002(out, t.sample_status_header(n), t.sample_status_lines(n))
        else:
            from formats.iso20022.camt054 import write_camt054

            write_camt054(out, t.sample_notification_header(), t.sample_entries(n))
    return path


def case_pain002_parse(n: int, workdir: pathlib.Path) -> dict:
    from formats.iso20022.pain002 import open_pain002

    path = workdir / f"pain002-{n}.xml"
    c0, t0 = _cpu(), time.perf_counter()
    with Peak(children_peak_mb) as xmllint, open(path, "rb") as f:
        count = sum(1 for _ in open_pain002(f, source=str(path)))
    secs, cpu = time.perf_counter() - t0, _cpu() - c0
    assert count == n
    return {"seconds": secs, "cpu_s": cpu, "entries_per_s": n / secs, "entries_per_cpu_s": n / cpu,
            "validator": "xmllint --stream" if xmllint.mb else "in-process", "validator_peak_rss_mb": xmllint.mb}


def case_camt054_parse(n: int, workdir: pathlib.Path) -> dict:
    from formats.iso20022.camt054 import open_camt054

    path = workdir / f"camt054-{n}.xml"
    c0, t0 = _cpu(), time.perf_counter()
    with Peak(children_peak_mb) as xmllint, open(path, "rb") as f:
        count = sum(1 for _ in open_camt054(f, source=str(path)))
    secs, cpu = time.perf_counter() - t0, _cpu() - c0
    assert count == n
    return {"seconds": secs, "cpu_s": cpu, "entries_per_s": n / secs, "entries_per_cpu_s": n / cpu,
            "validator": "xmllint --stream" if xmllint.mb else "in-process", "validator_peak_rss_mb": xmllint.mb}


CASES = {
    "pain001_ours": case_pain001_ours,
    "pain001_ours_inproc": case_pain001_ours_inproc,
    "pain001_sepaxml": case_pain001_sepaxml,
    "pain002_parse": case_pain002_parse,
    "camt054_parse": case_camt054_parse,
}


# --------------------------------------------------------------------------- driver


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if proc.returncode != 0:
        raise SystemExit(f"case {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--full", action="store_true", help="also 1,000,000 (the default sizes include it)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.prepare:
        _prepare(args.prepare, args.n, pathlib.Path(args.workdir))
        print(json.dumps({}))
        return 0
    if args.case:
        result = CASES[args.case](args.n, pathlib.Path(args.workdir))
        result["peak_rss_mb"] = _rss_mb()
        print(json.dumps(result))
        return 0

    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | ({1_000_000} if args.full else set()))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ykt-bench-") as tmp:
        for n in sizes:
            for kind in ("pain002", "camt054"):
                _child(["--prepare", kind, "--n", str(n), "--workdir", tmp])
            for case in CASES:
                if case == "pain001_sepaxml" and n > 100_000:
                    continue
                r = _child(["--case", case, "--n", str(n), "--workdir", tmp])
                memory = round(r["peak_rss_mb"] + r.get("validator_peak_rss_mb", 0), 1)
                rows.append({"case": case, "n": n, **r, "memory_mb": memory})
                for f in pathlib.Path(tmp).glob("pain001-*.xml"):
                    f.unlink()
    by = {(r["case"], r["n"]): r for r in rows}
    for n in sizes:
        theirs = by.get(("pain001_sepaxml", n))
        for case in ("pain001_ours", "pain001_ours_inproc"):
            ours = by.get((case, n))
            if ours and theirs:
                ours["ratio_to_sepaxml"] = ours["seconds"] / theirs["seconds"]
                ours["cpu_ratio_to_sepaxml"] = ours["cpu_s"] / theirs["cpu_s"]
    print(f"{'case':<21}{'N':>10}{'seconds':>10}{'CPU s':>8}{'memory MB':>11}{'per s':>12}{'vs sepaxml':>12}")
    for r in rows:
        per_s = r.get("entries_per_s") or r["n"] / r["seconds"]
        ratio = f"{r['ratio_to_sepaxml']:.2f}" if "ratio_to_sepaxml" in r else ""
        print(f"{r['case']:<21}{r['n']:>10}{r['seconds']:>10.2f}{r['cpu_s']:>8.2f}{r['memory_mb']:>11.1f}"
              f"{per_s:>12,.0f}{ratio:>12}")

    def measured(case: str, n: int, key: str):
        value = by.get((case, n), {}).get(key)
        return None if value is None else round(value, 3)

    targets = [at_most(f"pain001_ours {RATIO_AT:,}: time / sepaxml's", measured("pain001_ours", RATIO_AT,
                                                                               "ratio_to_sepaxml"), round(RATIO_MAX, 3))]
    targets += [at_most(f"{case} {n:,}: peak memory", measured(case, n, "memory_mb"), MEMORY_MB_MAX, "MB")
                for case in MEMORY_CASES for n in MEMORY_AT]
    targets += [at_least(f"{case} {PARSE_AT:,}: parse + validate", measured(case, PARSE_AT, "entries_per_s"),
                         PARSE_MIN, "entries/s") for case in ("pain002_parse", "camt054_parse")]
    return finish("formats", targets, {"python": sys.version.split()[0], "rows": rows}, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
