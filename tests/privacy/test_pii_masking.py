"""Masking rules [Art. 30-35; Art. 25 隐私保护规范]: what the public and unauthorised roles see."""

import pytest

from gateway.privacy import MaskingRules, PiiConfigError, mask_account, mask_id, mask_name

DEFAULT = MaskingRules()


@pytest.mark.parametrize("name, masked", [
    ("张", "*"),            # one character: nothing of it is shown
    ("张伟", "张*"),         # two: the surname stays
    ("杨秀英", "杨*英"),     # three: the middle character
    ("欧阳小明", "欧**明"),  # four: both middle characters
    (" 李娜 ", "李*"),       # surrounding blanks are not characters of the name
    ("阿依古丽·买买提", "阿******提"),
])
def test_names_of_one_to_four_characters(name, masked):
    assert DEFAULT.name(name) == masked
    assert mask_name(name) == masked  # the module-level function agrees with the default rules
    assert len(DEFAULT.name(name)) == len(name.strip())


@pytest.mark.parametrize("id_number, masked", [
    ("50023619650312101X", "500236********101X"),
    ("500236196503121019", "500236********1019"),
    ("123456789", "*********"),  # too short to keep 6 + 4: all masked
])
def test_id_first_six_last_four(id_number, masked):
    assert DEFAULT.id(id_number) == masked == mask_id(id_number)


@pytest.mark.parametrize("account, masked", [
    ("6217000100000000017", "***************0017"),
    ("6217 0001 0000 0000 017", "***************0017"),
    ("1234", "****"),
])
def test_account_last_four(account, masked):
    assert DEFAULT.account(account) == masked == mask_account(account)


def test_shipped_config_gives_the_defaults(config_dir):
    assert MaskingRules.load(config_dir) == DEFAULT


def test_rules_come_from_config(tmp_path):
    (tmp_path / "disclosure.toml").write_text(
        '[masking]\nid = { head = 3, tail = 2 }\nname = { keep_first = 0, keep_last = 1 }\n'
        'account = { head = 4, tail = 3 }\nmask_char = "×"\n', encoding="utf-8")
    r = MaskingRules.load(tmp_path)
    assert r.id("50023619650312101X") == "500×××××××××××××1X"
    assert [r.name(n) for n in ("张", "张伟", "杨秀英", "欧阳小明")] == ["×", "×伟", "××英", "×××明"]
    assert r.account("6217000100000000017") == "6217××××××××××××017"


def test_missing_file_means_defaults(tmp_path):
    assert MaskingRules.load(tmp_path) == DEFAULT


@pytest.mark.parametrize("toml", [
    '[masking]\nid = { head = 6, tail = 4, middle = 1 }\n',
    '[masking]\nphone = { tail = 4 }\n',
    '[masking]\nname = { keep_first = -1 }\n',
    '[masking]\nname = { keep_first = "1" }\n',
    '[masking]\nmask_char = "**"\n',
    '[masking\n',
])
def test_bad_rules_are_refused_with_the_key(tmp_path, toml):
    (tmp_path / "disclosure.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(PiiConfigError, match="disclosure.toml"):
        MaskingRules.load(tmp_path)
