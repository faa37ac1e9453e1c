"""``python -m benchmarks.legacy_suites``: run django-jaiminho's and django-outbox-pattern's own
test suites against pgoutbox, with only their imports and settings changed, and count.

Their code is fetched at run time into a scratch directory and never kept in this repository:

- django-jaiminho: the wheel from the package index (its tests ship inside it). The wheel
  leaves out the test project's ``send.py`` (the decorated functions the tests call);
  ``--jaiminho-repo`` (a checkout or a bare git directory of django-jaiminho) supplies it;
  without it, the test modules importing it cannot even be collected and are not counted.
- django-outbox-pattern: its tests are not in the sdist, so they come from
  ``--outbox-pattern-repo`` (a checkout or a bare git directory); without it that suite is
  reported as not run.

The library packages themselves are deleted; every ``jaiminho.<module>`` becomes
``pgoutbox.compat.jaiminho.<module>`` and every ``django_outbox_pattern.<module>``
``pgoutbox.compat.outbox_pattern.<module>`` (in imports and in the dotted strings given to
``mock.patch``), as a user switching would ``sed`` them. Settings point at the real PostgreSQL
and RabbitMQ (``PG*``, ``STOMP_*`` environment variables, local defaults). The suites run in a
scratch virtualenv with ``pgoutbox[legacy-suites]`` installed from this checkout.

Each test is counted against the tests the library itself collects, so a test module that no
longer imports after the switch counts each of its tests ("import error"). A second pass defers
every name pgoutbox lacks to the tests that use it, to see what the others reveal. Prints the
counts and writes them, with every test's outcome, its first error in the second pass, and why
each group of tests does not pass (``WHY``), to
``benchmarks/results/legacy-suites-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
JAIMINHO_VERSION = "2.2.1"


@dataclass(frozen=True)
class Suite:
    """One replaced library: its package name, pgoutbox's counterpart, how pytest runs it."""

    name: str
    package: str
    counterpart: str
    settings_module: str
    test_paths: tuple[str, ...]


JAIMINHO = Suite(
    name="django-jaiminho",
    package="jaiminho",
    counterpart="pgoutbox.compat.jaiminho",
    settings_module="jaiminho_django_test_project.settings",
    test_paths=("jaiminho/tests", "jaiminho_django_test_project"),
)
OUTBOX_PATTERN = Suite(
    name="django-outbox-pattern",
    package="django_outbox_pattern",
    counterpart="pgoutbox.compat.outbox_pattern",
    settings_module="tests.settings",
    test_paths=("tests",),
)


def rewrite_imports(source: str, suite: Suite) -> str:
    """Point every ``<package>.<module>`` (and ``from <package> import``) at pgoutbox's
    counterpart, leaving the suite's own ``<package>.tests`` alone."""
    package = re.escape(suite.package)
    dotted = re.compile(rf"(?<![\w.]){package}\.(?!tests\b)")
    source = dotted.sub(f"{suite.counterpart}.", source)
    return re.sub(rf"\bfrom {package} import\b", f"from {suite.counterpart} import", source)


def rewrite_tree(root: Path, suite: Suite) -> None:
    for path in root.rglob("*.py"):
        text = path.read_text()
        rewritten = rewrite_imports(text, suite)
        if rewritten != text:
            path.write_text(rewritten)


MISSING_MODULE = '''"""Written by pgoutbox's legacy_suites.py: a name pgoutbox lacks, failing
the test that uses it rather than the whole module."""


class MissingName:
    def __init__(self, name, error):
        self._name, self._error = name, error

    def _fail(self, *args, **kwargs):
        raise AttributeError(f"pgoutbox lacks {self._name}: {self._error}")

    __call__ = _fail

    def __getattr__(self, attribute):
        self._fail()

    def __mro_entries__(self, bases):
        self._fail()
'''


def defer_missing_names(root: Path, suite: Suite) -> None:
    """Make each module-level ``from <counterpart>... import name`` that fails bind a
    ``MissingName``, so a module importing a name pgoutbox lacks still runs the tests that
    never touch it."""
    (root / "_pgoutbox_missing.py").write_text(MISSING_MODULE)
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        changed = False
        for index, statement in enumerate(tree.body):  # a test's own imports stay as they are
            if isinstance(statement, ast.ImportFrom) and (statement.module or "").startswith(
                suite.counterpart
            ):
                tree.body[index] = deferred_import(statement)
                changed = True
        if changed:
            path.write_text(ast.unparse(ast.fix_missing_locations(tree)))


def deferred_import(statement: ast.ImportFrom) -> ast.stmt:
    fallback = "\n".join(
        f"    {alias.asname or alias.name} = MissingName({alias.name!r}, str(exc))"
        for alias in statement.names
    )
    [replacement] = ast.parse(
        f"try:\n    {ast.unparse(statement)}\nexcept ImportError as exc:\n"
        f"    from _pgoutbox_missing import MissingName\n{fallback}"
    ).body
    return replacement


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def copy_repository(source: Path, target: Path) -> None:
    """A checkout is copied; a bare git directory is exported at its HEAD."""
    if (source / "HEAD").is_file() and not (source / ".git").exists():
        tar = target.parent / f"{target.name}.tar"
        run("git", "-C", source, "archive", "--format=tar", f"--output={tar}", "HEAD")
        target.mkdir(parents=True)
        run("tar", "-xf", tar, "-C", target)
        tar.unlink()
    else:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".git", "*.pyc"))


def make_venv(workdir: Path) -> Path:
    """A scratch virtualenv with this checkout's pgoutbox and the suites' test requirements."""
    venv = workdir / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        run(sys.executable, "-m", "venv", venv)
        run(python, "-m", "pip", "install", "-q", "-e", f"{ROOT}[legacy-suites]")
    return python


def jaiminho_source(workdir: Path, python: Path, repository: Path | None) -> Path:
    """django-jaiminho's wheel, unpacked, with our settings for its test project."""
    target = workdir / "django-jaiminho"
    if target.exists():
        shutil.rmtree(target)
    download = workdir / "download"
    run(
        python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
        "-d", download, f"django-jaiminho=={JAIMINHO_VERSION}",
    )  # fmt: skip
    [wheel] = download.glob(f"django_jaiminho-{JAIMINHO_VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    project = target / "jaiminho_django_test_project"
    if repository is not None:
        checkout = workdir / "django-jaiminho-repository"
        if checkout.exists():
            shutil.rmtree(checkout)
        copy_repository(repository, checkout)
        shutil.copy(checkout / "jaiminho_django_test_project" / "send.py", project / "send.py")
    (project / "__init__.py").write_text("")
    (project / "urls.py").write_text(JAIMINHO_URLS)
    return target


def outbox_pattern_source(workdir: Path, repository: Path) -> Path:
    target = workdir / "django-outbox-pattern"
    if target.exists():
        shutil.rmtree(target)
    copy_repository(repository, target)
    return target


def settings_path(source: Path, suite: Suite) -> Path:
    return source / (suite.settings_module.replace(".", "/") + ".py")


def switch_to_pgoutbox(source: Path, suite: Suite) -> None:
    """What a user switching does: delete the library, point the imports and settings at
    pgoutbox."""
    package = source / suite.package
    keep = {"tests"} if (package / "tests").is_dir() else set()
    for child in package.iterdir():
        if child.name in keep:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    if keep:
        (package / "__init__.py").write_text("")
    else:
        package.rmdir()
    rewrite_tree(source, suite)
    settings_path(source, suite).write_text(suite_settings(suite, "pgoutbox"))


def suite_settings(suite: Suite, app: str) -> str:
    template = JAIMINHO_SETTINGS if suite is JAIMINHO else OUTBOX_PATTERN_SETTINGS
    return template.replace("{app}", app)


def environment(source: Path, suite: Suite) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": suite.settings_module,
        "PYTHONPATH": str(source),
        "PGOUTBOX_LEGACY_DB": f"test_legacy_{suite.package}_{os.getpid()}",
    }


def collect_ids(source: Path, suite: Suite, python: Path) -> list[str]:
    """The suite's test ids as its own library collects them, so that a module that no longer
    imports after the switch still counts each of its tests."""
    settings_path(source, suite).write_text(suite_settings(suite, suite.package))
    done = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only",
         "-o", "addopts=", "--rootdir", str(source), *suite.test_paths],
        cwd=source, env=environment(source, suite), capture_output=True, text=True,
    )  # fmt: skip
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    if not ids:
        raise SystemExit(f"{suite.name}: collected no tests\n{done.stdout}\n{done.stderr}")
    return [junit_name(node_id) for node_id in ids]


def junit_name(node_id: str) -> str:
    """``a/b/test_x.py::TestY::test_z[1]`` → ``a.b.test_x.TestY::test_z[1]``, the JUnit
    classname and name."""
    path, *classes, name = node_id.split("::")
    module = path.removesuffix(".py").replace("/", ".")
    return f"{'.'.join([module, *classes])}::{name}"


def run_suite(suite: Suite, source: Path, python: Path, workdir: Path) -> dict[str, Any]:
    """Collect with the library, switch to pgoutbox, run; then run again with every name
    pgoutbox lacks deferred to the tests that use it (:func:`defer_missing_names`)."""
    expected = collect_ids(source, suite, python)
    switch_to_pgoutbox(source, suite)
    strict = run_pytest(suite, source, python, workdir, "strict")
    defer_missing_names(source, suite)
    lenient = run_pytest(suite, source, python, workdir, "lenient")
    outcomes = {name: strict["ran"].get(name, ("import error", ""))[0] for name in expected}
    per_test = {name: lenient["ran"].get(name, ("import error", "")) for name in expected}
    return {
        "total": len(outcomes),
        "counts": dict(sorted(Counter(outcomes.values()).items())),
        "not_passing_by_reason": reasons(suite, outcomes),
        "import_errors": import_errors(strict["output"]),
        "deferred_names": {
            "what": "names pgoutbox lacks fail only the tests that use them",
            "counts": dict(sorted(Counter(o for o, _ in per_test.values()).items())),
            "failures_by_error": failures_by_error(per_test),
        },
        "not_collected_by_the_library": sorted(set(strict["ran"]) - set(expected)),
        "tests": dict(sorted(outcomes.items())),
        "tests_with_deferred_names": {n: o for n, (o, _) in sorted(per_test.items())},
    }


def run_pytest(
    suite: Suite, source: Path, python: Path, workdir: Path, label: str
) -> dict[str, Any]:
    report = workdir / f"{suite.package}-{label}.xml"
    command = [
        str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header",
        "-o", "addopts=", "-o", "filterwarnings=", "--continue-on-collection-errors",
        "--timeout=60", f"--junitxml={report}", "--rootdir", str(source), *suite.test_paths,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=source, env=environment(source, suite), capture_output=True, text=True
    )
    (workdir / f"{suite.package}-{label}.log").write_text(done.stdout + done.stderr)
    return {"ran": read_junit(report), "output": done.stdout}


def failures_by_error(per_test: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """{the first line of the error: the tests that failed with it}, most frequent first."""
    groups: dict[str, list[str]] = {}
    for name, (outcome, message) in per_test.items():
        if outcome in ("failed", "error"):
            groups.setdefault(message or outcome, []).append(name)
    return dict(sorted(groups.items(), key=lambda item: -len(item[1])))


def module_of(name: str) -> str:
    """``a.b.test_x.TestY::test_z`` → ``a.b.test_x``."""
    dotted = name.split("::")[0]
    return ".".join(part for part in dotted.split(".") if not part[:1].isupper())


def reasons(suite: Suite, outcomes: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The tests that do not pass, grouped by why (:data:`WHY`), with their modules."""
    groups: dict[str, dict[str, Any]] = {}
    for name, outcome in outcomes.items():
        if outcome == "passed":
            continue
        module = module_of(name)
        why = WHY[suite.name].get(module, "not classified")
        group = groups.setdefault(why, {"count": 0, "modules": {}})
        group["count"] += 1
        group["modules"][module] = group["modules"].get(module, 0) + 1
    return dict(sorted(groups.items(), key=lambda item: -item[1]["count"]))


def import_errors(output: str) -> dict[str, str]:
    """{test module: the error that stopped its import} from pytest's output."""
    errors: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        collecting = re.match(r"_+ ERROR collecting (\S+) _+$", line)
        if collecting:
            current = collecting.group(1)
        elif line.startswith(("___", "===")):
            current = None  # the next section is not this module's
        elif current and line.startswith("E   "):
            errors[current] = line[4:].strip()[:300]
    return errors


def read_junit(report: Path) -> dict[str, tuple[str, str]]:
    """{test: (passed | failed | error | skipped, first line of the error)} from pytest's
    JUnit XML (collection errors, reported as test cases without a class, are left out)."""
    outcomes: dict[str, tuple[str, str]] = {}
    if not report.exists():
        return outcomes
    for case in ElementTree.parse(report).iter("testcase"):
        if not case.get("classname"):
            continue  # a module that failed to import
        name = f"{case.get('classname')}::{case.get('name')}"
        for outcome in ("error", "failure", "skipped"):
            element = case.find(outcome)
            if element is not None:
                message = (element.get("message") or "").strip().splitlines()
                outcomes[name] = (outcome.replace("failure", "failed"), first_line(message))
                break
        else:
            outcomes[name] = ("passed", "")
    return outcomes


def first_line(lines: list[str]) -> str:
    """The error, without the memory addresses and ids that make equal errors differ."""
    text = lines[0][:240] if lines else ""
    return re.sub(r"0x[0-9a-f]+|[0-9a-f]{8}-[0-9a-f-]{27}", "…", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jaiminho-repo", type=Path, help="django-jaiminho checkout or git dir")
    parser.add_argument(
        "--outbox-pattern-repo", type=Path, help="django-outbox-pattern checkout or git dir"
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--label", default="", help="a note stored with the results")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pgoutbox-legacy-suites-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        python = make_venv(workdir)
        results: dict[str, Any] = {}
        source = jaiminho_source(workdir, python, args.jaiminho_repo)
        results[JAIMINHO.name] = {
            "version": JAIMINHO_VERSION,
            "send_py_from": str(args.jaiminho_repo) if args.jaiminho_repo else None,
            **run_suite(JAIMINHO, source, python, workdir),
        }
        if args.outbox_pattern_repo is None:
            results[OUTBOX_PATTERN.name] = {"not_run": "no --outbox-pattern-repo given"}
        else:
            source = outbox_pattern_source(workdir, args.outbox_pattern_repo)
            results[OUTBOX_PATTERN.name] = run_suite(OUTBOX_PATTERN, source, python, workdir)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    for name, result in results.items():
        counts = result.get("counts")
        if counts is None:
            print(f"{name}: not run ({result['not_run']})")
        else:
            shown = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
            print(f"{name}: {counts.get('passed', 0)} of {result['total']} passed ({shown})")
            for why, group in result["not_passing_by_reason"].items():
                print(f"  {group['count']:4d}  {why}")
            deferred = result["deferred_names"]["counts"]
            shown = ", ".join(f"{n} {outcome}" for outcome, n in deferred.items())
            print(f"  with missing names deferred to the tests that use them: {shown}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for previous in RESULTS.glob("legacy-suites-*.json"):
        previous.unlink()  # as every benchmark does: the newest run replaces the last one
    path = RESULTS / f"legacy-suites-{stamp}.json"
    path.write_text(json.dumps({"label": args.label, "suites": results}, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT)}")
    return 0


# Why a test of theirs does not pass against pgoutbox, per test module (after the switch, a
# module that imports a name pgoutbox does not provide fails as a whole). "by design": the
# behaviour tested is one pgoutbox deliberately does not have; "internals": the test reaches
# into the library's private modules, models or module globals, which a user's code does not.
PICKLED_EVENTS = (
    "by design: asserts on jaiminho.models.Event rows, which hold dill-pickled functions; "
    "pgoutbox stores an import path and JSON arguments, and importing Event raises an "
    "ImportError naming pgoutbox.models.OutboxEvent"
)
SETTINGS_AT_IMPORT = (
    "by design: reloads jaiminho.settings, read once at import; pgoutbox validates settings "
    "into one frozen object at start-up and follows override_settings"
)
POLLING_PUBLISHER = (
    "by design: tests django_outbox_pattern's polling publisher (its settings module, "
    "Published rows' status and retry counts, ExceededSendAttemptsException, mocks of the "
    "publish command's module and logger); pgoutbox's relay is woken by NOTIFY, waits for "
    "broker receipts, and keeps no Published rows"
)
UNPREFIXED_DESTINATIONS = (
    "by design: decorates with destinations without a leading '/' ('queue', 'destination'), "
    "which @publish refuses when the model is decorated, then reads the event back with "
    "Published.objects.first(): pgoutbox keeps no Published rows to query"
)
OUTBOX_PATTERN_INTERNALS = (
    "internals: imports django_outbox_pattern's settings module, choices, Received model or "
    "private consumer functions"
)
MOCKED_GLOBALS = (
    "internals: patches the subscribe module's globals (factory_consumer, import_string, "
    "signal, os._exit), Command._start and the 'django_outbox_pattern' logger"
)
WHY: dict[str, dict[str, str]] = {
    JAIMINHO.name: {
        "jaiminho.tests.test_admin": PICKLED_EVENTS,
        "jaiminho.tests.test_models": PICKLED_EVENTS,
        "jaiminho_django_test_project.tests.test_admin": PICKLED_EVENTS,
        "jaiminho_django_test_project.tests.test_send": PICKLED_EVENTS,
        "jaiminho_django_test_project.tests_functional.test_send_to_outbox": PICKLED_EVENTS,
        "jaiminho_django_test_project.tests.management.commands.test_validate_event_cleaner": (
            PICKLED_EVENTS
        ),
        "jaiminho_django_test_project.tests.management.commands.test_validate_relay_events": (
            PICKLED_EVENTS
        ),
        "jaiminho.tests.test_settings": SETTINGS_AT_IMPORT,
        "jaiminho.tests.test_errors": (
            "internals: jaiminho.errors.is_non_retryable, a private helper (pgoutbox: the "
            "NON_RETRYABLE_EXCEPTIONS setting)"
        ),
        "jaiminho.tests.test_jaiminho": (
            "internals: imports jaiminho.admin, .apps and .views, modules of jaiminho's own "
            "Django app (pgoutbox's app is 'pgoutbox')"
        ),
    },
    OUTBOX_PATTERN.name: {
        "tests.unit.test_producer": POLLING_PUBLISHER,
        "tests.integration.test_producer": POLLING_PUBLISHER,
        "tests.unit.test_publish_command": POLLING_PUBLISHER,
        "tests.integration.test_publish_command": POLLING_PUBLISHER,
        "tests.unit.test_publish_decorator": UNPREFIXED_DESTINATIONS,
        "tests.unit.test_models": OUTBOX_PATTERN_INTERNALS,
        "tests.unit.test_consumer": OUTBOX_PATTERN_INTERNALS,
        "tests.integration.test_consumer": OUTBOX_PATTERN_INTERNALS,
        "tests.unit.test_payload": (
            "internals: builds Payload(connection, body, headers, Received()) by hand with "
            "django_outbox_pattern's Received model"
        ),
        "tests.unit.test_subscribe_command": MOCKED_GLOBALS,
        "tests.integration.test_subscribe_command": MOCKED_GLOBALS,
    },
}


# The suites' settings, written into their trees: "{app}" is the library (to collect) or
# "pgoutbox" (to run). Services come from the same environment variables as pgoutbox's tests.
SERVICES = """import os

_DB = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("PGPORT", "5432"),
    "USER": os.environ.get("PGUSER", "postgres"),
    "PASSWORD": os.environ.get("PGPASSWORD", ""),
    "NAME": "postgres",
}
_TEST_DB = os.environ["PGOUTBOX_LEGACY_DB"]
_STOMP_HOST = os.environ.get("STOMP_HOST", "127.0.0.1")
_STOMP_PORT = int(os.environ.get("STOMP_PORT", "61613"))
_STOMP_USER = os.environ.get("STOMP_USER", "guest")
_STOMP_PASSCODE = os.environ.get("STOMP_PASSCODE", "guest")
_STOMP_VHOST = os.environ.get("STOMP_VHOST", "/")
"""

JAIMINHO_SETTINGS = (
    '"""django-jaiminho\'s test project settings, written by pgoutbox\'s legacy_suites.py."""\n'
    + SERVICES
    + """
SECRET_KEY = "legacy-suites"
DEBUG = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "{app}",
    "jaiminho_django_test_project.app",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "jaiminho_django_test_project.urls"
_PROCESSORS = [
    f"django.{module}.context_processors.{name}"
    for module, name in [("template", "request"), ("contrib.auth", "auth")]
] + ["django.contrib.messages.context_processors.messages"]
_OPTIONS = {"context_processors": _PROCESSORS}
_BACKEND = "django.template.backends.django.DjangoTemplates"
TEMPLATES = [{"BACKEND": _BACKEND, "APP_DIRS": True, "OPTIONS": _OPTIONS}]
DATABASES = {
    "default": {**_DB, "TEST": {"NAME": _TEST_DB}},
    "secondary": {**_DB, "TEST": {"NAME": _TEST_DB + "_secondary"}},
}
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
JAIMINHO_CONFIG = {"PERSIST_ALL_EVENTS": False}
PGOUTBOX = {
    "STOMP_HOSTS": [(_STOMP_HOST, _STOMP_PORT)],
    "STOMP_USERNAME": _STOMP_USER,
    "STOMP_PASSCODE": _STOMP_PASSCODE,
    "STOMP_VHOST": _STOMP_VHOST,
    "FUNCTION_MODULES": ["jaiminho_django_test_project.send"],
}
"""
)

JAIMINHO_URLS = """from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
"""

OUTBOX_PATTERN_SETTINGS = (
    '"""django-outbox-pattern\'s test settings, written by pgoutbox\'s legacy_suites.py."""\n'
    + SERVICES
    + """
SECRET_KEY = "django-insecure"
DEBUG = False
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "{app}",
]
DATABASES = {"default": {**_DB, "TEST": {"NAME": _TEST_DB}}}
DJANGO_OUTBOX_PATTERN = {
    "DEFAULT_STOMP_HOST_AND_PORTS": [(_STOMP_HOST, _STOMP_PORT)],
    "DEFAULT_STOMP_USERNAME": _STOMP_USER,
    "DEFAULT_STOMP_PASSCODE": _STOMP_PASSCODE,
    "DEFAULT_STOMP_VHOST": _STOMP_VHOST,
}
USE_TZ = False
"""
)


if __name__ == "__main__":
    sys.exit(main())
