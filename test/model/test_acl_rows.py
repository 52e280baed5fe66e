"""ACL columns as the directory returns them: parsed once per text, shared, unchangeable."""

import json

import pytest

from hatrac.model.directory.rows import acls_of as _acls

TEXT = json.dumps({"owner": ["alice"], "read": ["*"], "subtree-read": []})


def test_rows_of_one_text_share_acls_equal_to_plain_ones():
    acls = _acls(TEXT)
    assert _acls(TEXT) is acls
    assert acls == {"owner": ["alice"], "read": ["*"], "subtree-read": []}
    assert json.loads(json.dumps(acls)) == json.loads(TEXT)
    copy = dict(acls)
    copy["owner"] = [*copy["owner"], "bob"]  # a copy may change: the shared ones do not
    assert _acls(TEXT)["owner"] == ["alice"]


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.__setitem__("owner", []),
        lambda a: a.update(read=[]),
        lambda a: a.pop("read"),
        lambda a: a["owner"].append("mallory"),
        lambda a: a["read"].__setitem__(0, "x"),
        lambda a: a["owner"].extend(["x"]),
    ],
)
def test_shared_acls_refuse_changes(change):
    with pytest.raises(TypeError):
        change(_acls(TEXT))
    assert _acls(TEXT) == json.loads(TEXT)
