"""The pages and API server of a production host, as the Procfile, the systemd unit and nginx's
configuration start it: granian's WSGI workers, a killed worker respawned (without
``--respawn-failed-workers`` granian exits when one worker dies), the proxy's connections kept alive
and dropped by nginx before granian drops them.
The fault tests (``tests/faults``) run the same command and kill its workers."""

import re
import shlex
from pathlib import Path

from tests.processes import pages_server_args, procfile_command

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> dict[str, list[str]]:
    unit = (ROOT / "deploy" / "systemd" / "market-pages.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=/bin/sh -c '(.+)'$", unit, re.M)
    return {
        "Procfile": procfile_command("pages"),
        "market-pages.service": shlex.split(exec_start.removeprefix("exec ")),
    }


def test_the_procfile_and_the_unit_serve_pages_with_granian_respawning_killed_workers():
    commands = _commands()
    for where, args in commands.items():
        assert Path(args[0]).name == "granian", where
        assert args[-1] == "market.wsgi:application", where
        assert args[args.index("--interface") + 1] == "wsgi", where
        assert "--respawn-failed-workers" in args, where
        assert re.fullmatch(r"8001|\$\{PAGES_PORT:-8001\}", args[args.index("--port") + 1]), where
        # a thread that ends leaves its database connection to the garbage collector: threads live long
        assert int(args[args.index("--blocking-threads-idle-timeout") + 1]) >= 300, where
    flags = {where: sorted(a for a in args if a.startswith("--")) for where, args in commands.items()}
    assert flags["Procfile"] == flags["market-pages.service"]


def test_nginx_keeps_its_connections_to_the_pages_server_alive():
    conf = (ROOT / "deploy" / "nginx" / "market.conf").read_text()
    upstream = re.search(r"upstream market_pages \{(.*?)\}", conf, re.S).group(1)
    assert re.search(r"^\s*keepalive \d+;", upstream, re.M)
    # granian closes a connection idle for about 30 s: nginx must drop it first, or reuse a closed one
    assert int(re.search(r"^\s*keepalive_timeout (\d+)s;", upstream, re.M).group(1)) < 30
    location = re.search(r"location / \{(.*?)\}", conf, re.S).group(1)
    assert "proxy_http_version 1.1;" in location and 'proxy_set_header Connection "";' in location


def test_the_servers_the_tests_start_are_the_procfiles_with_their_port_and_sizes():
    args = pages_server_args(4321, workers=3, threads=5, extra=("--backlog", "512"))
    procfile = _commands()["Procfile"]
    assert args[1:3] == ["-m", "granian"] and args[-1] == procfile[-1]
    assert [args[args.index(f) + 1] for f in ("--port", "--workers", "--blocking-threads")] == [
        "4321",
        "3",
        "5",
    ]
    assert set(procfile[1:-1]) - {"${PAGES_PORT:-8001}", "${WEB_CONCURRENCY:-4}", "2"} <= set(args)
    assert args[-3:-1] == ["--backlog", "512"]
