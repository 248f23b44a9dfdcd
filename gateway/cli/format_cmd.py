"""``ykt format …``: look at, check, sign and verify bank files by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import io
import json
from decimal import Decimal
from pathlib import Path

import click

from formats.errors import FormatError, UnsupportedMessage
from gateway.errors import YktError

XML_READERS = {
    "pain.001": "formats.iso20022.pain001:open_pain001",
    "pain.002": "formats.iso20022.pain002:open_pain002",
    "camt.054": "formats.iso20022.camt054:open_camt054",
    "camt.053": "formats.iso20022.camt053:open_camt053",
}


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (Decimal, dt.date, dt.datetime)):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def _load(dotted: str):
    import importlib

    module, name = dotted.split(":")
    return getattr(importlib.import_module(module), name)


def _validation(kind: str) -> str:
    """Which checks the reader of ``kind`` applies: the official XSD it validates against, the
    structural checks of a message no package ships an XSD for, or a flat-file layout."""
    from formats.xsd import OFFICIAL_XSDS

    if kind.startswith("flat"):  # "flat:<layout>:<part>" once read, "flatfile" as detected
        layout = kind.split(":")[1] if ":" in kind else "each configured layout"
        return f"layout {layout}: fields, encoding, control count and sum"
    if kind in OFFICIAL_XSDS:
        return f"official XSD {kind}.xsd (package {OFFICIAL_XSDS[kind][0]})"
    return f"structural checks, no official XSD for {kind}"


def _open(path: Path, data: bytes, ctx, layout: str | None):
    """(kind, header, iterator of records) for any file we read; raises FormatError."""
    from formats.iso20022.detect import detect

    kind = detect(data[:4096])
    for prefix, dotted in XML_READERS.items():
        if kind.startswith(prefix):
            reader = _load(dotted)(io.BytesIO(data), source=path.name)
            return kind, reader.header, reader
    if kind.startswith("acmt.023") or kind.startswith("acmt.024"):
        fn = _load("formats.iso20022.acmt:read_acmt023" if kind.startswith("acmt.023") else
                   "formats.iso20022.acmt:read_acmt024")
        doc = fn(data, source=path.name)
        return kind, {"message_id": doc.message_id}, iter(getattr(doc, "queries", None) or doc.results)
    if kind == "flatfile":
        from formats.flatfile.reader import open_flat

        cfg = ctx.config()
        names = [layout] if layout else sorted(cfg.layouts)
        errors: list[FormatError] = []
        for name in names:
            lay = cfg.layouts.get(name)
            if lay is None:
                raise YktError(f"unknown layout {name!r}; known: {', '.join(sorted(cfg.layouts))}")
            for part in ("instruction", "result"):
                try:
                    r = open_flat(io.BytesIO(data), getattr(lay, part), source=path.name, reasons=cfg.reason_codes)
                    records = list(r)
                    return f"flat:{name}:{part}", getattr(r, "header", None), iter(records)
                except FormatError as e:
                    errors.append(e)
        if not errors:
            raise YktError("no flat-file layout is configured")
        # the reading that got furthest into the file is the one the file was meant for
        raise max(errors, key=lambda e: e.line or 0)
    raise YktError(f"{path}: not a file type yikatong reads (detected {kind!r})", zh="无法识别的文件类型")


@click.group("format")
def group() -> None:
    """Inspect, validate, sign and verify bank files (ISO 20022 and flat files)."""


@group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layout", help="Flat-file layout name (default: try each configured layout).")
@click.option("--limit", default=20, show_default=True, help="Records to print (0 = all).")
@click.pass_obj
def show_cmd(ctx, file: Path, layout: str | None, limit: int) -> None:
    """Detect FILE's format, parse it and print the model (header and records)."""
    data = file.read_bytes()
    kind, header, records = _open(file, data, ctx, layout)
    shown, total = [], 0
    for rec in records:
        total += 1
        if not limit or total <= limit:
            shown.append(_jsonable(rec))
    out = {"file": str(file), "format": kind, "validation": _validation(kind), "header": _jsonable(header),
           "records": total, "shown": shown}
    if ctx.json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"{file}: {kind}, {total} record(s); checked: {out['validation']}")
    click.echo(json.dumps(out["header"], ensure_ascii=False, indent=2))
    for rec in shown:
        click.echo(json.dumps(rec, ensure_ascii=False))
    if limit and total > limit:
        click.echo(f"… {total - limit} more (use --limit 0)")


@group.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layout", help="Flat-file layout name.")
@click.pass_obj
def validate_cmd(ctx, file: Path, layout: str | None) -> None:
    """Check FILE against its XSD, layout and control totals; exit 1 with the findings.

    Says which checks were applied: the official XSD, or structural checks where no package
    ships one (pain.002.001.10, acmt), or the flat-file layout."""
    from formats.iso20022.detect import detect

    data = file.read_bytes()
    try:
        kind, _header, records = _open(file, data, ctx, layout)
        count = sum(1 for _ in records)
    except FormatError as e:
        detected = detect(data[:4096])
        if detected == "flatfile" and layout:
            detected = f"flat:{layout}"
        applied = None if isinstance(e, UnsupportedMessage) else _validation(detected)
        ctx.emit(f"INVALID {e}" + (f" (checked: {applied})" if applied else ""),
                 {"file": str(file), "valid": False, "validation": applied, "error": e.as_dict()})
        raise SystemExit(1)
    applied = _validation(kind)
    ctx.emit(f"valid: {file} ({kind}, {count} record(s); checked: {applied})",
             {"file": str(file), "valid": True, "format": kind, "validation": applied, "records": count})


@group.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Private key (PEM; for sm2 a file holding the hex key).")
@click.option("--cert", "cert_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Certificate (PEM; for sm2 the hex public key).")
@click.option("--scheme", type=click.Choice(["cms", "xmldsig", "sm2"]), default="cms", show_default=True)
@click.option("--out", "out_path", type=click.Path(path_type=Path),
              help="Where to write (default: FILE.p7s / FILE.sm2, or FILE.signed.xml for xmldsig).")
@click.pass_obj
def sign_cmd(ctx, file: Path, key_path: Path, cert_path: Path, scheme: str, out_path: Path | None) -> None:
    """Sign FILE: a detached signature beside it (cms, sm2) or an enveloped XML signature (xmldsig)."""
    from formats.signature import get_scheme

    s = get_scheme(scheme)
    key, cert = key_path.read_bytes(), cert_path.read_bytes()
    if scheme == "sm2":
        key, cert = key.strip(), cert.strip()
    data = file.read_bytes()
    if s.kind == "enveloped":
        result = s.sign(data, key, cert)
        out_path = out_path or file.with_suffix(".signed.xml")
    else:
        kw = {"signing_time": dt.datetime.now(dt.timezone.utc)} if scheme == "cms" else {}
        result = s.sign([data], key, cert, **kw)
        out_path = out_path or file.with_name(file.name + (".p7s" if scheme == "cms" else ".sm2"))
    out_path.write_bytes(result)
    ctx.emit(f"signed ({scheme}): {out_path}", {"file": str(file), "signature": str(out_path), "scheme": scheme})


@group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cert", "cert_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="The pinned certificate (PEM) or SM2 public key (hex) the file must be signed with.")
@click.option("--signature", "sig_path", type=click.Path(path_type=Path),
              help="Detached signature (default: FILE.p7s or FILE.sm2 if present; else enveloped XML).")
@click.pass_obj
def verify_cmd(ctx, file: Path, cert_path: Path, sig_path: Path | None) -> None:
    """Exit 0 only if FILE's signature is valid for the given certificate (or key)."""
    from formats.signature import get_scheme

    data = file.read_bytes()
    pinned = cert_path.read_bytes()
    if sig_path is None:
        for ext in ("p7s", "sm2"):
            if file.with_name(f"{file.name}.{ext}").exists():
                sig_path = file.with_name(f"{file.name}.{ext}")
    try:
        if sig_path is not None:
            scheme = "sm2" if sig_path.suffix == ".sm2" else "cms"
            get_scheme(scheme).verify([data], sig_path.read_bytes(), pinned.strip() if scheme == "sm2" else pinned,
                                      source=file.name)
        else:
            scheme = "xmldsig"
            get_scheme("xmldsig").verify(data, pinned, source=file.name)
    except FormatError as e:
        ctx.emit(f"NOT VALID ({type(e).__name__}): {e}",
                 {"file": str(file), "valid": False, "error": e.as_dict()})
        raise SystemExit(1)
    ctx.emit(f"valid signature ({scheme}) by the pinned key: {file}", {"file": str(file), "valid": True,
                                                                        "scheme": scheme})
