"""pip-audit over the installed environment (issue 8, security): no known vulnerability in any
installed distribution except those documented in ``pip-audit-ignore.txt`` (run by ``make audit``) (an id and a reason a
line). The lookup uses PyPI's vulnerability data (``-s pypi``: ``https://pypi.org/pypi/<name>/<version>/json``,
fed from the OSV advisory database). Our own package is installed editable and is skipped.

A lookup that cannot be made is a failure with the reason, never a pass: pip-audit reports a
distribution it could not look up as *skipped* and still says "No known vulnerabilities found", so
this test fails when any distribution other than our own was not actually audited."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IGNORE_FILE = HERE / "pip-audit-ignore.txt"
OWN_PACKAGE = "recycle-market"
ID = re.compile(r"^(PYSEC-\d{4}-\d+|GHSA(-[0-9a-z]{4}){3}|CVE-\d{4}-\d+|OSV-\d{4}-\d+)$", re.I)


def documented_exceptions() -> dict[str, str]:
    """{vulnerability id: reason} from the ignore file; a malformed line fails the test."""
    exceptions = {}
    for number, raw in enumerate(IGNORE_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        vuln_id, _, reason = line.partition(" ")
        assert ID.match(vuln_id), f"{IGNORE_FILE.name}:{number}: {vuln_id!r} is not an advisory id"
        assert len(reason.strip()) >= 10, f"{IGNORE_FILE.name}:{number}: {vuln_id} needs a reason"
        exceptions[vuln_id.upper()] = reason.strip()
    return exceptions


def _probe() -> str:
    """What pypi.org answers for pip's project and release addresses, to say why the lookup failed."""
    from importlib.metadata import version
    from urllib.error import HTTPError, URLError
    from urllib.request import urlopen

    answers = []
    for url in ("https://pypi.org/pypi/pip/json", f"https://pypi.org/pypi/pip/{version('pip')}/json"):
        try:
            with urlopen(url, timeout=15) as response:  # a fixed https address
                answers.append(f"{url} answers {response.status}")
        except HTTPError as exc:
            answers.append(f"{url} answers {exc.code}")
        except URLError as exc:
            answers.append(f"{url} is unreachable ({exc.reason})")
    return "; ".join(answers) + "."


def test_the_ignore_file_documents_every_exception():
    documented_exceptions()


def test_no_undocumented_vulnerability_in_the_installed_environment(tmp_path):
    exceptions = documented_exceptions()
    report = tmp_path / "pip-audit.json"
    command = [sys.executable, "-m", "pip_audit", "--vulnerability-service", "pypi", "--skip-editable"]
    command += ["--progress-spinner", "off", "--timeout", "30", "--format", "json", "--output", str(report)]
    for vuln_id in exceptions:
        command += ["--ignore-vuln", vuln_id]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if not report.exists() or not report.read_text().strip():
        pytest.fail(
            f"pip-audit could not run its lookup against PyPI (exit {result.returncode}):\n"
            f"{result.stderr.strip()[-2000:]}",
            pytrace=False,
        )
    dependencies = json.loads(report.read_text())["dependencies"]

    not_audited = [
        f"{dep['name']}: {dep['skip_reason']}"
        for dep in dependencies
        if dep.get("skip_reason") and dep["name"] != OWN_PACKAGE
    ]
    if not_audited:
        pytest.fail(
            f"the vulnerability lookup is impossible: {len(not_audited)} of {len(dependencies)} installed "
            "distributions were not audited, so the audit proves nothing. pip-audit's PyPI service reads "
            "https://pypi.org/pypi/<name>/<version>/json for each one; a 'not found on PyPI' reason means "
            "that address did not answer from this machine (a proxy or mirror that serves only "
            f"/pypi/<name>/json, or no network). {_probe()}\nFirst ones:\n  " + "\n  ".join(not_audited[:15]),
            pytrace=False,
        )

    found = []
    for dep in dependencies:
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"].upper(), *(alias.upper() for alias in vuln.get("aliases", []))}
            if ids & set(exceptions):
                continue
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            found.append(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    assert not found, (
        "vulnerable dependencies: upgrade them, or document why one does not affect the market in "
        f"{IGNORE_FILE.relative_to(ROOT)}:\n  " + "\n  ".join(found)
    )
    assert result.returncode == 0, result.stdout + result.stderr
