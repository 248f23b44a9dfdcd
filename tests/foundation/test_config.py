"""Config as data: the shipped example loads; a broken one gets one clear message per problem, all in one run."""

import shutil
from decimal import Decimal

import pytest
from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.config import check, load
from gateway.config.model import HttpsTransport, SftpTransport
from gateway.errors import ConfigError


def test_shipped_example_loads(config_dir):
    cfg = load(config_dir)
    assert set(cfg.counties) == {"500236", "500241"}
    assert len(cfg.banks) == 3
    assert isinstance(cfg.banks["icbc-cq"].transport, HttpsTransport)
    assert isinstance(cfg.banks["cqrcb-fj"].transport, SftpTransport)
    assert cfg.banks["cqrcb-fj"].layout_name == "rcb_pipe"
    assert cfg.policies["GDDL"].standard == Decimal("2000.00")
    assert cfg.banks["psbc-xs"].sla.credit_working_days == 1  # Art. 20
    assert {b.id for b in cfg.banks_for_county("500241")} == {"icbc-cq", "psbc-xs"}


def test_cli_check_ok(config_dir):
    out = CliRunner().invoke(cli, ["config", "check", str(config_dir)])
    assert out.exit_code == 0, out.output
    assert "configuration OK" in out.output


@pytest.fixture
def broken(tmp_path, config_dir):
    d = tmp_path / "config"
    shutil.copytree(config_dir, d)
    banks = (d / "banks.toml").read_text(encoding="utf-8")
    # a bank missing its transport
    start = banks.index('id = "psbc-xs"')
    t = banks.index("transport = {", start)
    banks = banks[:t] + banks[banks.index("\n", t) + 1:]
    # an unknown county code
    banks = banks.replace('counties = ["500236"]', 'counties = ["500299"]', 1)
    (d / "banks.toml").write_text(banks, encoding="utf-8")
    pol = (d / "policies.toml").read_text(encoding="utf-8")
    pol = pol.replace('standard = "800.00"', 'standard = "abc"')  # an amount of "abc"
    pol = pol.replace('code = "CJLT"', 'code = "GDDL"')  # a duplicate policy code
    (d / "policies.toml").write_text(pol, encoding="utf-8")
    return d


def test_broken_config_reports_every_problem(broken):
    cfg, problems = check(broken)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert cfg is None
    expected = [
        ("banks.toml: bank[2].transport", "is missing"),
        ("banks.toml: bank[0].counties[0]", "unknown county code '500299'"),
        ("policies.toml: policy[1].standard", "'abc'"),
        ("policies.toml: policy[3].code", "duplicate policy 'GDDL'"),
    ]
    for where, what in expected:
        assert any(where in e and what in e for e in errors), (where, what, errors)
    assert len(errors) == len(expected), errors
    with pytest.raises(ConfigError) as exc:
        load(broken)
    assert len(exc.value.problems) == len(expected)


def test_cli_check_broken_exit_1_no_traceback(broken):
    out = CliRunner().invoke(cli, ["config", "check", str(broken)])
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    for fragment in ("transport: is missing", "500299", "'abc'", "duplicate policy"):
        assert fragment in out.output


@pytest.mark.parametrize("edit, fragment", [
    (("banks.toml", 'signature = "xmldsig"', 'signature = "md5"'), "bank[1].signature: 'md5' is not one of"),
    (("banks.toml", 'cutoff = "16:00"', 'cutoff = "4pm"'), "bank[1].cutoff: must be a time of day"),
    (("banks.toml", 'bank_code = "102653000019"', 'bank_code = "10265"'), "CNAPS bank code has 12 digits"),
    (("policies.toml", 'standard = "90.00"', "standard = 90.5"), "never as a float"),
    (("policies.toml", 'exclusive_with = ["DB"]', 'exclusive_with = []'), "'TK' does not list 'DB' back"),
    (("policies.toml", 'must_be_on = ["disabled"]', 'must_be_on = ["dead"]'), "unknown list 'dead'"),
    (("counties.toml", 'code = "500241"', 'code = "5002"'), "county code has 6 digits"),
    (("policies.toml", 'frequency = "yearly"', 'frequncy = "yearly"'), "frequncy: is not a known setting"),
    (("banks.toml", "[[bank]]", "[[bank]\n"), "not valid TOML"),
])
def test_single_problems(tmp_path, config_dir, edit, fragment):
    d = tmp_path / "config"
    shutil.copytree(config_dir, d)
    name, old, new = edit
    text = (d / name).read_text(encoding="utf-8")
    assert old in text
    (d / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    cfg, problems = check(d)
    assert cfg is None
    assert any(fragment in str(p) for p in problems), [str(p) for p in problems]
