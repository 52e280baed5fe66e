"""Bad upstream input is reported clearly; the import goes on with the rest, never crashes.

Covers: a database that is not upstream's (or of an unknown generation),
rows violating upstream's own constraints, version ids and names our URL
rules refuse, two spellings of one name, odd ACL role strings, ACLs a kind
cannot have, unknown metadata keys and malformed digests, bytes missing or of
the wrong size, and an unreadable upstream configuration.
"""

from __future__ import annotations

import json

import pytest
from clients import FlaskProtocolClient
from deployment import Deployment

import hatrac
from hatrac.cli import main
from hatrac.upstream import import_site, load_site


@pytest.fixture(scope="module")
def bad(postgres, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    d = Deployment(postgres, root, root_acls={"owner": ["admin"], "subtree-read": ["*"]})
    d.namespace("/ns", subtree_owner=["alice"])
    good = d.version("/ns/good", b"a good object among bad ones")
    # rows upstream's own constraints should have prevented
    d.sql("ALTER TABLE hatrac.version DROP CONSTRAINT version_check")
    d.sql(
        "INSERT INTO hatrac.version (nameid, version, nbytes, is_deleted) "
        "VALUES (%s, NULL, 3, false)",
        (d.ids["/ns/good"],),
    )
    d.sql("INSERT INTO hatrac.name (name, subtype, is_deleted) VALUES ('/ns/weird', 7, false)")
    d.sql("INSERT INTO hatrac.name (name, subtype, is_deleted) VALUES ('no-slash', 1, false)")
    d.sql("INSERT INTO hatrac.name (name, subtype, is_deleted) VALUES ('/nowhere/child', 1, false)")
    orphan = d.sql("SELECT id FROM hatrac.name WHERE name = '/nowhere/child'")[0][0]
    d.sql(
        "INSERT INTO hatrac.version (nameid, version, nbytes, is_deleted, metadata) "
        "VALUES (%s, 'ORPHANVERSIONAAAAAAAAAAAAA', 1, false, '{}')",
        (orphan,),
    )
    # a version id our URLs refuse (a control character), and a name they refuse
    d.object("/ns/ctl")
    d.sql(
        "INSERT INTO hatrac.version (nameid, version, nbytes, is_deleted, metadata) "
        "VALUES (%s, %s, 0, false, '{}')",
        (d.ids["/ns/ctl"], "bad\x01id"),
    )
    d.version("/ns/%FF", b"not utf-8")
    # two spellings of one name
    d.version("/ns/caf%C3%A9", b"upper-case escapes")
    d.version("/ns/caf%c3%a9", b"lower-case escapes")
    # ACLs: an odd role string, and an ACL an object cannot have
    d.version("/ns/acl", b"acl", read=["evil\nrole", "https://auth.globus.org/x"])
    d.sql("UPDATE hatrac.name SET \"create\" = %s WHERE name = '/ns/acl'", (["bob"],))
    # metadata: an unknown key and a digest that is not hex
    d.version(
        "/ns/meta", b"meta", digests=False, extra_metadata={"x-color": "red", "content-md5": "zz"}
    )
    # bytes of the wrong size
    wrong = d.version("/ns/wrong-size", b"0123456789")
    d.path_of("/ns/wrong-size", wrong).write_bytes(b"0123")
    ours = tmp_path_factory.mktemp("ours-bad")
    report, config = import_site(
        load_site(d.config()), "sqlite:" + str(ours / "db.sqlite3"), str(ours / "data")
    )
    app = hatrac.create_app(config)
    app.testing = True
    yield {
        "report": report,
        "config": config,
        "client": FlaskProtocolClient(app),
        "good": good,
        "d": d,
    }
    app.extensions["hatrac"].close()
    d.close()


def _problems(report, kind):
    return [p for p in report.problems if p["kind"] == kind]


def test_constraint_violations_are_reported_and_skipped(bad):
    report = bad["report"]
    details = json.dumps(_problems(report, "bad-row"))
    assert "without a version id" in details
    assert "subtype 7" in details
    assert "no-slash" in details
    assert "/nowhere/child" in json.dumps(_problems(report, "orphan-name"))
    assert "ORPHANVERSION" in json.dumps(_problems(report, "orphan-version"))


def test_the_rest_is_imported(bad):
    client = bad["client"]
    assert client.get("/hatrac/ns/good").body == b"a good object among bad ones"
    assert client.get(f"/hatrac/ns/good:{bad['good']}").status == 200


def test_refused_ids_and_names_are_reported_but_kept(bad):
    report = bad["report"]
    assert "bad\\x01id" in _problems(report, "version-refused-by-our-urls")[0]["where"]
    refused = _problems(report, "name-refused-by-our-urls")
    assert any("%FF" in p["where"] and "not UTF-8" in p["detail"] for p in refused)
    # served all the same: the written config accepts such segments
    assert bad["config"]["legacy_names"] is True
    assert bad["client"].get("/hatrac/ns/%FF").body == b"not utf-8"
    listing = bad["client"].get("/hatrac/ns", headers={"Accept": "text/uri-list"})
    assert "/hatrac/ns/%FF" in listing.text.split()


def test_two_spellings_of_one_name(bad):
    collisions = _problems(bad["report"], "name-collision")
    assert len(collisions) == 1 and "caf%c3%a9" in collisions[0]["where"]
    # the first spelling's bytes are served; the other's versions were not merged into it
    assert bad["client"].get("/hatrac/ns/caf%C3%A9").body == b"upper-case escapes"
    assert "orphan-version" in {p["kind"] for p in bad["report"].problems}


def test_acl_problems(bad):
    details = json.dumps(_problems(bad["report"], "acl"))
    assert "evil\\\\nrole" in details and "kept verbatim" in details
    assert "'create' is not one a object has" in details


def test_metadata_problems(bad):
    details = json.dumps(_problems(bad["report"], "metadata"))
    assert "x-color" in details
    assert "content-md5 'zz'" in details
    reply = bad["client"].get("/hatrac/ns/meta")
    assert reply.status == 200 and "Content-MD5" not in reply.headers


def test_bytes_of_the_wrong_size(bad):
    mismatch = _problems(bad["report"], "size-mismatch")
    assert len(mismatch) == 1 and "10 bytes, 4 are stored" in mismatch[0]["detail"]


def test_not_an_upstream_database(postgres, tmp_path, capsys):
    postgres.psql("CREATE DATABASE not_upstream")
    config = tmp_path / "hatrac_config.json"
    config.write_text(json.dumps({"database_dsn": postgres.dsn(database="not_upstream")}))
    assert main(["import-upstream", str(config), "--dry-run"]) == 2
    assert "no schema 'hatrac'" in capsys.readouterr().err


def test_unknown_schema_generation(postgres, tmp_path, capsys):
    d = Deployment(postgres, tmp_path)
    d.sql("ALTER TABLE hatrac.version DROP COLUMN nbytes")
    config = tmp_path / "hatrac_config.json"
    config.write_text(json.dumps(d.config()))
    d.close()
    assert main(["import-upstream", str(config), "--dry-run"]) == 2
    assert "hatrac.version lacks column(s) nbytes" in capsys.readouterr().err


def test_unreadable_upstream_config(tmp_path, capsys):
    config = tmp_path / "hatrac_config.json"
    config.write_text("{not json")
    assert main(["import-upstream", str(config), "--dry-run"]) == 2
    assert "is not JSON" in capsys.readouterr().err
    config.write_text(json.dumps({"storage_backend": "amazons3", "database_dsn": "x"}))
    assert main(["import-upstream", str(config), "--dry-run"]) == 2
    assert "s3_config" in capsys.readouterr().err


def test_our_database_unreachable(bad, tmp_path, capsys):
    config = tmp_path / "upstream.json"
    config.write_text(json.dumps(bad["d"].config()))
    unreachable = "host=127.0.0.1 port=1 dbname=x connect_timeout=2"
    assert main(["import-upstream", str(config), "--database-dsn", unreachable]) == 1
    err = capsys.readouterr().err
    assert "stopped" in err and "running the same command again resumes" in err
