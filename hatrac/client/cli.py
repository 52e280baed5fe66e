"""The ``hatrac-client`` argument parser and dispatcher.

Remote arguments are ``REMOTE:/path`` (a remote of ``remotes.conf``) or a
URL; see :mod:`.locations`. Exit codes: 0 ok, 1 failed, 2 usage, 3 not
found, 4 not allowed (401/403), 5 server unreachable or unavailable after
retries, 6 conflict (409/412), 130 interrupted.
"""

from __future__ import annotations

import argparse
from typing import Optional

from . import commands, session, settings
from .http import EXIT_USAGE, Connection, HatracError
from .locations import RemotePath, from_url, parse_location
from .output import Output

MiB = 1024 * 1024


def _size(text: str) -> int:
    units = {"k": 1024, "m": MiB, "g": 1024 * MiB}
    text = text.strip().lower().rstrip("ib")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    value = int(float(number) * factor)
    if value < 1:
        raise argparse.ArgumentTypeError("a size must be positive")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress, no remarks")
    group.add_argument("--ca-bundle", help="CA certificates (PEM) to trust for https")
    group.add_argument("--retries", type=int, default=5, help="retries of transient failures")
    group.add_argument("--retry-wait", type=float, default=0.5, help="first backoff (seconds)")
    group.add_argument(
        "--max-retry-wait", type=float, default=30.0, help="longest wait between retries (s)"
    )
    group.add_argument("--timeout", type=float, default=120.0, help="seconds between bytes")
    group.add_argument("--jobs", "-j", type=int, default=4, help="files at a time (recursive)")
    group.add_argument(
        "--streams", type=int, default=4, help="parallel streams per large file (put and get)"
    )
    group.add_argument(
        "--chunk-digest",
        choices=["md5", "sha256", "none"],
        default="md5",
        help="digest sent with each upload job chunk (Content-MD5 or Content-SHA256)",
    )
    group.add_argument("--chunk-size", type=_size, default=16 * MiB, help="upload job chunk size")
    group.add_argument(
        "--part-size", type=_size, default=32 * MiB, help="get: bytes per ranged request"
    )
    group.add_argument(
        "--threshold", type=_size, default=64 * MiB, help="files above this use an upload job"
    )
    group.add_argument(
        "--limit-rate", type=_size, help="at most this many bytes per second (e.g. 10M)"
    )
    group.add_argument("--no-resume", action="store_true", help="never reuse an open upload job")
    group.add_argument(
        "--fsync",
        action="store_true",
        help="get/sync: make each file durable on disk (fdatasync, then the directory) "
        "before reporting it done",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="hatrac-client",
        description="Copy, list and manage objects on a Hatrac server.",
        epilog="Remote paths: REMOTE:/path (see 'remote add') or http(s)://host/hatrac/path.",
    )
    commands_ = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands_.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands_.add_parser(name, help=help, parents=[common], description=help)

    p = command("remote", "name servers: remote add NAME URL | remote ls | remote rm NAME")
    p.add_argument("action", choices=["add", "ls", "rm"])
    p.add_argument("name", nargs="?")
    p.add_argument("url", nargs="?")
    p = command("login", "log in to a server (a session) or store an API token")
    p.add_argument("server", help="remote name or URL")
    p.add_argument("--user", "-u")
    p.add_argument("--password-stdin", action="store_true", help="read the secret from stdin")
    p.add_argument("--token", action="store_true", help="store an API token instead")
    p = command("logout", "end the stored session and forget the credential")
    p.add_argument("server")
    p = command("whoami", "show who the server takes you for")
    p.add_argument("server")
    p = command("ls", "list a namespace (or show an object)")
    p.add_argument("path")
    p.add_argument("-l", "--long", action="store_true", help="kind, size, type, time, version")
    p.add_argument("-r", "--recursive", action="store_true")
    p.add_argument("--versions", action="store_true", help="also list each object's versions")
    p = command("stat", "show an object's, version's or namespace's details")
    p.add_argument("path")
    p = command("get", "download an object or version (to a file or -), or -r a namespace")
    p.add_argument("source")
    p.add_argument("dest", nargs="?")
    p.add_argument("-r", "--recursive", action="store_true")
    p = command("put", "upload a file (or - for stdin), or -r a directory")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("-r", "--recursive", action="store_true")
    p.add_argument("-p", "--parents", action="store_true", help="create missing namespaces")
    p.add_argument("--content-type")
    p = command("mkdir", "create a namespace")
    p.add_argument("path")
    p.add_argument("-p", "--parents", action="store_true", help="parents too; no error if there")
    p = command("rm", "delete an object, a version, or -r a namespace")
    p.add_argument("path")
    p.add_argument("-r", "--recursive", action="store_true")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = command("mv", "rename an object (or one version) on the server, no bytes moved")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("-p", "--parents", action="store_true")
    p.add_argument("--copy-acls", action="store_true")
    p = command("versions", "list an object's versions")
    p.add_argument("path")
    p = command("acl", "acl show|set|add|remove PATH [ACCESS [ROLE ...]]")
    p.add_argument("action", choices=["show", "set", "add", "remove"])
    p.add_argument("path")
    p.add_argument("access", nargs="?")
    p.add_argument("roles", nargs="*")
    p = command("meta", "meta show PATH | meta set PATH FIELD VALUE | meta delete PATH FIELD")
    p.add_argument("action", choices=["show", "set", "delete"])
    p.add_argument("path")
    p.add_argument("field", nargs="?")
    p.add_argument("value", nargs="?")
    p = command("sync", "make DEST like SOURCE (directory <-> namespace), copying what differs")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--delete", action="store_true", help="delete what SOURCE lacks")
    p.add_argument("-n", "--dry-run", action="store_true", help="only say what would be done")
    p = command("jobs", "jobs ls PATH | jobs cancel PATH [JOB ...] (your open upload jobs)")
    p.add_argument("action", choices=["ls", "cancel"])
    p.add_argument("path")
    p.add_argument("job", nargs="*")
    return parser


class Runner:
    """Turns arguments into remotes and connections (one per server)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.remotes = settings.load_remotes()
        self.connections: dict[str, Connection] = {}
        self.output: Optional[Output] = None

    def remote(self, text: str) -> RemotePath:
        found = parse_location(text, self.remotes)
        if found is None:
            raise HatracError(
                f"{text!r} is not a remote path (REMOTE:/path or a URL)", exit_code=EXIT_USAGE
            )
        return found

    def server(self, text: str) -> RemotePath:
        if text in self.remotes:
            return from_url(self.remotes[text])
        return self.remote(text)

    def connect(self, target: RemotePath, stored: bool = True) -> Connection:
        if target.origin not in self.connections:
            args = self.args
            self.connections[target.origin] = Connection(
                target.origin,
                settings.credential_for(target.origin) if stored else None,
                ca_bundle=args.ca_bundle,
                retries=args.retries,
                retry_wait=args.retry_wait,
                timeout=args.timeout,
                pool=max(16, args.jobs * max(1, args.streams) + 4),
                limit_rate=args.limit_rate,
                on_retry=self.output.info if self.output else None,
                max_retry_wait=args.max_retry_wait,
            )
        return self.connections[target.origin]

    def run(self, output: Output) -> int:
        self.output = output
        args = self.args
        name = args.command
        if name == "remote":
            return session.remote(args.action, args.name, args.url, output)
        if name in ("login", "logout", "whoami"):
            conn = self.connect(self.server(args.server), stored=name != "login")
            if name == "login":
                return session.login(conn, output, args.user, args.password_stdin, args.token)
            return (
                session.logout(conn, output) if name == "logout" else session.whoami(conn, output)
            )
        if name in ("put", "get", "sync", "mv"):
            return self._two_ended(output)
        target = self.remote(args.path)
        handler = getattr(commands, "cmd_" + name)
        return handler(self.connect(target), target, args, output)

    def _two_ended(self, output: Output) -> int:
        args = self.args
        source = parse_location(args.source, self.remotes)
        dest = parse_location(args.dest, self.remotes) if args.dest else None
        if args.command == "mv":
            source, dest = self.remote(args.source), self.remote(args.dest)
            return commands.cmd_mv(self.connect(source), source, dest, args, output)
        if args.command == "put":
            if source is not None or dest is None:
                raise HatracError(
                    "put LOCAL REMOTE (a local file or -, then a remote)", exit_code=EXIT_USAGE
                )
            return commands.cmd_put(self.connect(dest), args.source, dest, args, output)
        if args.command == "get":
            if source is None or dest is not None:
                raise HatracError(
                    "get REMOTE [LOCAL] (a remote, then a local path or -)", exit_code=EXIT_USAGE
                )
            return commands.cmd_get(self.connect(source), source, args.dest, args, output)
        if (source is None) == (dest is None):
            raise HatracError(
                "sync needs one local directory and one remote namespace", exit_code=EXIT_USAGE
            )
        remote = source if source is not None else dest
        local_source = args.source if source is None else source
        local_dest = args.dest if dest is None else dest
        return commands.cmd_sync(self.connect(remote), local_source, local_dest, args, output)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    output = Output(json_lines=args.json, quiet=args.quiet)
    runner = None
    try:
        runner = Runner(args)
        return runner.run(output)
    except HatracError as error:
        output.error(str(error), error.as_json())
        return error.exit_code
    except ValueError as error:  # a bad remotes.conf, an unencodable name
        output.error(str(error))
        return EXIT_USAGE
    except OSError as error:
        output.error(str(error))
        return 1
    except KeyboardInterrupt:
        output.error("interrupted")
        return 130
    finally:
        if runner is not None:
            for conn in runner.connections.values():
                conn.close()
