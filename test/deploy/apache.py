"""A private Apache HTTPD with mod_wsgi serving Hatrac, for end-to-end tests.

Nothing is mocked: Debian's ``apache2`` runs as a non-default instance owned
by the test (its own ServerRoot, config file, pid file and logs in a temp
directory, ``Listen`` on a free loopback port, ``apache2 -f CONF
-DFOREGROUND``). The Hatrac part of the config is the output of ``hatrac
apache-config``, i.e. exactly what docs/install.md tells admins to install.
Authentication happens in Apache: ``mod_authn_file`` checks Basic
credentials against an htpasswd file ({SHA} entries written here), so
``REMOTE_USER`` really comes from Apache; groups come from a ``RewriteMap``
text file, copied into the ``HATRAC_GROUPS`` variable by a ``RewriteRule``.

When the tests run as root, the daemon processes run as ``www-data`` (the
account Debian's Apache uses), which must read the virtual environment and
owns the data directory.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import requests
from servers import free_port, wait_for_port

MODULES = Path("/usr/lib/apache2/modules")
NEEDED_MODULES = [
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authn_file_module", "mod_authn_file.so"),
    ("auth_basic_module", "mod_auth_basic.so"),
    ("rewrite_module", "mod_rewrite.so"),
    ("env_module", "mod_env.so"),
    ("wsgi_module", "mod_wsgi.so"),
]


def apache_unavailable() -> Optional[str]:
    """Why the Apache tests cannot run here (None when they can)."""
    if shutil.which("apache2") is None and not Path("/usr/sbin/apache2").exists():
        return "Debian's apache2 is not installed (scripts/test.sh installs it)"
    if not (MODULES / "mod_wsgi.so").exists():
        return "libapache2-mod-wsgi-py3 is not installed (scripts/test.sh installs it)"
    from hatrac.cli.deploy import mod_wsgi_python

    built = mod_wsgi_python()
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    if built and built != mine:
        return (
            f"mod_wsgi embeds Python {built} but the tests run on Python {mine}; create .venv "
            "with /usr/bin/python3 (PYTHON=/usr/bin/python3 scripts/test.sh)"
        )
    return None


def sha_entry(user: str, password: str) -> str:
    """An htpasswd line in Apache's {SHA} format (no htpasswd binary needed)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


class ApacheServer:
    """Apache + mod_wsgi + Hatrac on a loopback port, with Basic users and groups."""

    def __init__(self, config: dict, users: dict[str, str], groups: dict[str, list[str]]):
        self.directory = Path(tempfile.mkdtemp(prefix="hatrac-apache-", dir="/tmp"))
        os.chmod(self.directory, 0o755)
        self.port = free_port()
        self.users = dict(users)
        self.groups = groups
        self.process: Optional[subprocess.Popen] = None
        self.data = self.directory / "data"
        self.data.mkdir()
        self.run = self.directory / "run"
        self.run.mkdir()
        self.account: Optional[str] = None
        if os.geteuid() == 0:
            self.account = "www-data"
            entry = pwd.getpwnam(self.account)
            for path in (self.data, self.run):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        config = dict(config)
        config.setdefault("data_directory", str(self.data))
        self.config_path = self.directory / "hatrac_config.json"
        self.config_path.write_text(json.dumps(config))
        self.config_path.chmod(0o644)
        self.htpasswd = self.directory / "htpasswd"
        self.htpasswd.write_text("".join(sha_entry(u, p) for u, p in self.users.items()))
        self.groups_map = self.directory / "groups.map"
        self.groups_map.write_text(
            "".join(f"{user} {';'.join(roles)}\n" for user, roles in groups.items() if roles)
        )
        self.conf = self.directory / "apache2.conf"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_user(self, user: str, password: str) -> None:
        """Add an htpasswd entry (mod_authn_file reads the file on every request)."""
        self.users[user] = password
        with open(self.htpasswd, "a") as out:
            out.write(sha_entry(user, password))

    def hatrac_part(self) -> str:
        from hatrac.cli.deploy import render

        account = self.account or pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(pwd.getpwnam(account).pw_gid).gr_name
        return render(
            str(self.config_path),
            user=account,
            group=group,
            home=str(self.data),
            processes=2,
            threads=8,
            socket_prefix=str(self.run / "wsgi"),
            with_authn=True,
        )

    def write_config(self) -> None:
        d = self.directory
        loads = "".join(f"LoadModule {name} {MODULES / so}\n" for name, so in NEEDED_MODULES)
        user = f"User {self.account}\nGroup {self.account}\n" if self.account else ""
        self.conf.write_text(
            f"""ServerRoot "{d}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile {d}/apache2.pid
DefaultRuntimeDir {self.run}
Mutex file:{self.run} default
ErrorLog {d}/error.log
LogLevel warn
LogFormat "%h %u \\"%r\\" %>s %b" brief
CustomLog {d}/access.log brief
{user}{loads}
StartServers 1
ServerLimit 2
MinSpareThreads 5
MaxSpareThreads 50
ThreadsPerChild 25
MaxRequestWorkers 50
Timeout 120

{self.hatrac_part()}

# Authentication in Apache (mod_authn_file, Basic), optional per request;
# groups from a RewriteMap keyed by the authenticated user.
RewriteMap hatracgroups txt:{self.groups_map}
<Location /hatrac>
    AuthType Basic
    AuthName "Hatrac test"
    AuthBasicProvider file
    AuthUserFile {self.htpasswd}
    <If "-n req('Authorization')">
        Require valid-user
    </If>
    RewriteEngine On
    RewriteCond ${{hatracgroups:%{{REMOTE_USER}}|}} ^(.+)$
    RewriteRule .* - [E=HATRAC_GROUPS:%1]
    # test only: extra groups named by a request header, to replay protocol tests
    # that give a user ad-hoc groups (never do this in production)
    RewriteCond %{{HTTP:X-Test-Groups}} ^(.+)$
    RewriteRule .* - [E=HATRAC_GROUPS:%1]
</Location>
"""
        )

    def start(self) -> ApacheServer:
        self.write_config()
        check = subprocess.run(
            ["apache2", "-t", "-f", str(self.conf)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"apache2 -t failed:\n{check.stderr}\n{self.conf.read_text()}")
        environment = dict(os.environ, APACHE_RUN_DIR=str(self.run), LANG="C")
        environment.pop("HATRAC_CONFIG", None)
        self.process = subprocess.Popen(
            ["apache2", "-f", str(self.conf), "-DFOREGROUND"],
            stdout=open(self.directory / "stdout.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
        )
        wait_for_port(self.port, process=self.process)
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = requests.get(self.url + "/hatrac-health/ready", timeout=10)
                if reply.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("Apache/Hatrac did not become ready:\n" + self.log())
            time.sleep(0.2)
        return self

    def log(self) -> str:
        try:
            return (self.directory / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run(
                ["apache2", "-f", str(self.conf), "-k", "stop"], capture_output=True, timeout=30
            )
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # mod_wsgi daemons included
            except ProcessLookupError:
                pass
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
