"""The `cds` command: serve, migrate, check, feedback, report, review, catalog, replay, validate."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cds import __version__
from cds.errors import ConfigError
from cds.settings import Settings
from cds.store import open_configured
from cds.tools.common import (
    day_arg,
    printable,
    rate_arg,
    settings_or_exit,
)

DESCRIPTION = """\
CDS Hooks 2.0 service for metastatic breast cancer with bone metastases.

Configuration comes from CDS_* environment variables (docs/configuration.md); `cds check` shows it.
"""


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cds.logs import configure
    from cds.server import serve_workers, server_options, tune_for_serving

    settings = settings_or_exit()
    metrics_dir = None
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if settings.metrics_address and args.workers > 1:
        from cds.metrics import prepare_workers

        # Before anything records a metric: the workers inherit the directory through the
        # environment and write their values there.
        metrics_dir = prepare_workers()
    from cds.app import create_app

    configure(settings.log_level)
    refusal = _cannot_serve(args, settings)
    if refusal:
        print(f"cannot start: {refusal}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)  # builds and cross-checks everything once, here
    except ConfigError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and settings.database_url is None:
        print(
            f"{args.workers} workers share {settings.feedback_db} (SQLite); several instances "
            "need CDS_DATABASE_URL",
            file=sys.stderr,
        )
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(
        f"cds {__version__} ({settings.mode}{workers}) on "
        f"http://{args.host}:{args.port}/cds-services"
    )
    # Several workers: each process builds the app from the environment; all shared state
    # (feedback, the JWT replay cache, snoozes) is in the store, none in a process.
    options = server_options(args.access_log, settings.max_connections)
    if settings.metrics_address:
        from cds.metrics import serve as serve_metrics

        serve_metrics(settings.metrics_address, metrics_dir)
        print(f"metrics on http://{settings.metrics_address}/metrics")
    if args.workers > 1:
        serve_workers(args.host, args.port, args.workers, options)
        if metrics_dir is not None and own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    else:
        tune_for_serving()
        uvicorn.run(app, host=args.host, port=args.port, **options)
    return 0


def _cannot_serve(args: argparse.Namespace, settings: Settings) -> str | None:
    """Why this instance must not start on its addresses (None: it may); warns of a
    development service listening beyond loopback."""
    from cds.server import port_is_free
    from cds.settings import host_port

    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if settings.mode == "development" and not loopback:
        print(
            f"warning: development mode (no client authentication) on {args.host}; "
            "use CDS_MODE=production with trusted issuers outside a test machine",
            file=sys.stderr,
        )
    if not port_is_free(args.host, args.port):
        # The workers share their port (SO_REUSEPORT): without this check a second instance
        # with other settings would start silently and take half the traffic.
        return f"{args.host}:{args.port} is already in use (another cds serve?)"
    if settings.metrics_address:
        metrics_host, metrics_port = host_port(settings.metrics_address)
        if metrics_port == args.port:
            return (
                f"CDS_METRICS_ADDRESS {settings.metrics_address} uses the hook port; metrics "
                "are served on their own port"
            )
        if not port_is_free(metrics_host, metrics_port):
            return f"CDS_METRICS_ADDRESS {settings.metrics_address} is in use"
    return None


def _where(settings: Settings) -> str:
    return (
        "PostgreSQL (CDS_DATABASE_URL)"
        if settings.database_url
        else f"SQLite {settings.feedback_db}"
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    try:
        store = open_configured(settings, require_schema=False)
        before = store.schema_version()
        after = store.migrate()
        store.close()
    except ConfigError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"database: {_where(settings)}: schema version {before} -> {after}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from cds.app import refuse_unreviewed
    from cds.services import load_knowledge

    settings = settings_or_exit()
    try:
        k = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
        if settings.mode == "production":
            refuse_unreviewed(k, settings.allow_unreviewed)
        if settings.database_url is not None:
            store = open_configured(settings)  # refuses a schema that `cds migrate` has not set
            version = store.schema_version()
            store.close()
            print(f"database: {_where(settings)}: schema version {version}, OK")
    except ConfigError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    vs = len(k.terminology.value_sets)
    print(f"configuration: mode={settings.mode}, cards={settings.cards_dir}")
    print(
        f"knowledge: {vs} value sets, {len(k.rules)} rules, {len(k.cards.cards)} card files, "
        f"{len(k.services)} services - cross-checked, OK"
    )
    states = [r.state for r in k.reviews.values()]
    print(
        f"clinician review: {states.count('reviewed')} of {len(states)} rules reviewed in their "
        f"current version, {states.count('stale')} stale ({_where_reviews(settings)})"
    )
    if args.verbose:
        print(settings.summary())
    return 0


def _where_reviews(settings: Settings) -> str:
    return str(settings.cards_dir / "reviews.yaml")


def cmd_feedback(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    if settings.database_url is None and not settings.feedback_db.exists():
        print(f"no feedback stored yet ({settings.feedback_db} does not exist)")
        return 0
    try:
        store = open_configured(settings)
    except ConfigError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    rows = store.list(service_id=args.service, limit=args.limit)
    store.close()
    if args.json:
        # json.dumps escapes every control character, so stored text cannot drive a terminal.
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, default=list))
        return 0
    if not rows:
        print("no feedback stored yet")
        return 0
    print(f"{'received':<26} {'service':<24} {'outcome':<11} {'card':<36} detail")
    for r in rows:
        detail = (
            ", ".join(r.accepted_suggestions)
            if r.outcome == "accepted"
            else (r.override_code or ("comment" if r.override_comment else "-"))
        )
        cells = (r.received_at[:26], r.service_id, r.outcome, r.card, detail)
        received, service, outcome, card, detail = (printable(c) for c in cells)
        print(f"{received:<26} {service:<24} {outcome:<11} {card:<36} {detail}")
    print(f"{len(rows)} item(s)")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from cds.services import load_knowledge
    from cds.tools.catalog import write_catalog

    settings = settings_or_exit()
    k = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
    written = write_catalog(k, Path(args.out), Path(args.fixtures))
    print(f"wrote {len(written)} pages to {args.out}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import logging

    from cds.tools.replay import main as replay_main

    # In-process replay runs the service here: its warnings (expected 412s, excluded resources
    # in the scenarios that test them) would drown the summary.
    logger = logging.getLogger("cds")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return replay_main(args)
    finally:
        logger.setLevel(level)


def cmd_validate(args: argparse.Namespace) -> int:
    """Full R4B validation: exit 1 if a resource is invalid, 2 if a file cannot be read."""
    from cds import jsonsafe
    from cds.tools.validation import findings

    invalid = total = 0
    for name in args.files:
        try:
            found = findings(jsonsafe.loads(Path(name).read_bytes()))
        except (OSError, ValueError) as exc:  # unreadable, not JSON, too deep, or not FHIR
            print(f"{name}: cannot validate: {exc}", file=sys.stderr)
            return 2
        if not found:
            print(f"{name}: no FHIR resources found")
        for f in found:
            total += 1
            if f.problems:
                invalid += 1
                print(f"{name}: {f.where} {f.label}: invalid")
                for problem in f.problems:
                    print(f"    {problem}")
            elif args.verbose:
                print(f"{name}: {f.where} {f.label}: valid")
    print(f"{total} resources, {invalid} invalid (fhir.resources R4B, narrative included)")
    return 1 if invalid else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cds", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"cds {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _service_commands(sub)
    _governance_commands(sub)
    _replay_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
    except ConfigError as exc:
        # Knowledge files or settings that do not fit together: the message names each
        # problem; a traceback would only bury it.
        print(f"cds {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `cds replay | head`: the reader has all it wanted; no traceback for that. Python
        # would report the pipe again when it flushes stdout at exit, so stdout goes quiet.
        # Exit 1, as Python does on EPIPE: the command did not finish its work.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())


def _service_commands(sub: Any) -> None:
    """Running the service and its store: serve, migrate, check, feedback."""
    p = sub.add_parser("serve", help="run the service (default 127.0.0.1:8080)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--access-log", action="store_true", help="also log each HTTP request line")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (one per core; shared state is in the store)",
    )
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser(
        "migrate", help="create or upgrade the database schema (idempotent; SQLite or PostgreSQL)"
    )
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("check", help="validate configuration and knowledge files; exit 1 if wrong")
    p.add_argument("-v", "--verbose", action="store_true", help="print the effective settings")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("feedback", help="list stored card feedback, newest first")
    p.add_argument("--service", help="only this service id")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(fn=cmd_feedback)


def _governance_commands(sub: Any) -> None:
    """For the CDS committee and clinical reviewers: report, review, catalog."""
    from cds.tools.report_command import command as report_command
    from cds.tools.review_site import command as review_command

    p = sub.add_parser(
        "report",
        help="override rates per rule for the CDS committee (text, --json or --html)",
        description="Cards issued per rule and variant, accepted, overridden (by reason) and "
        "without feedback, with the override rate = overridden / (accepted + overridden) and "
        "its 95%% Wilson interval; rules above --flag are flagged. Reads the store "
        "(CDS_FEEDBACK_DB or CDS_DATABASE_URL).",
    )
    p.add_argument("--since", type=day_arg, help="first day of cards issued (default: all kept)")
    p.add_argument("--until", type=day_arg, help="day after the last (default: tomorrow, UTC)")
    p.add_argument("--service", help="one service id")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument(
        "--flag",
        type=rate_arg,
        default=0.9,
        help="flag override rates above this (default 0.9)",
    )
    p.add_argument(
        "--min-cards",
        type=int,
        default=30,
        help="answered cards a rule needs before it is flagged (default 30)",
    )
    p.set_defaults(fn=report_command)

    p = sub.add_parser(
        "review",
        help="write the clinician review site, or sign a rule's current version",
        description="Without --sign: a static site (one page per rule: its logic, citations, "
        "review state and the cards it gives in every fixture scenario) in --out. With --sign: "
        "record in cards/reviews.yaml that NAME, in ROLE, reviewed RULE as it is now.",
    )
    p.add_argument("--out", default="review", help="folder for the site (default: review)")
    p.add_argument(
        "--fixtures",
        default=str(Path(__file__).resolve().parents[2] / "fixtures"),
        help="the scenario library (default: fixtures/ of the source checkout)",
    )
    p.add_argument("--sign", metavar="RULE", help="record a review of RULE's current version")
    p.add_argument("--by", metavar="NAME", help="with --sign: the reviewer")
    p.add_argument("--role", help="with --sign: one of the required roles in reviews.yaml")
    p.add_argument("--note", help="with --sign: what was checked, conditions")
    p.add_argument("--date", type=day_arg, help="with --sign: the review date (default: today)")
    p.set_defaults(fn=review_command)

    p = sub.add_parser("catalog", help="write a Markdown page per rule for clinician review")
    p.add_argument("--out", default="catalog", help="output folder (default ./catalog)")
    p.add_argument("--fixtures", default="fixtures", help="fixture library, for coverage")
    p.set_defaults(fn=cmd_catalog)


def _replay_commands(sub: Any) -> None:
    """Replaying scenarios and validating what an EHR sends: replay, validate."""
    p = sub.add_parser(
        "replay",
        help="replay fixture requests in-process or against a server and compare the cards",
    )
    p.add_argument("paths", nargs="*", default=["fixtures"], help="files or folders")
    p.add_argument("--url", help="base URL of a running service, e.g. http://127.0.0.1:8080")
    p.add_argument(
        "--fhir-server",
        help="a FHIR R4 server to load each scenario's patient into (batch of PUTs); the "
        "service then fetches everything from it (with --url, that service must allow it)",
    )
    p.add_argument("--update", action="store_true", help="rewrite expected files, showing diffs")
    p.add_argument(
        "--conformance",
        action="store_true",
        help="replay the official CDS Hooks examples: each must get a 200 or a clean 4xx",
    )
    p.add_argument(
        "--examples",
        metavar="DIR",
        help="with --conformance: the folder of example requests (default: "
        "../shared/cds-hooks/examples beside a source checkout)",
    )
    p.add_argument("--quiet", action="store_true", help="only the summary")
    p.set_defaults(fn=cmd_replay)

    p = sub.add_parser(
        "validate",
        help="fully validate the FHIR resources of CDS Hooks requests, Bundles or resources (R4B)",
    )
    p.add_argument("files", nargs="+", help="JSON files")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the valid resources")
    p.set_defaults(fn=cmd_validate)
