"""`hotlead scorer` (run a worker) and `hotlead rules check FILE`."""

import argparse
import logging
import sys

from services.common.gc_tuning import tune_gc
from services.common.logging import configure_logging
from services.common.socket_reads import cap_socket_reads
from services.scorer.explain import describe_rules
from services.scorer.rules import load_rules
from services.scorer.settings import ScorerSettings


def _rules_check(args: argparse.Namespace) -> int:
    rules = load_rules(args.file)
    print("\n".join(describe_rules(rules)))
    return 0


def _run_scorer(args: argparse.Namespace) -> int:
    import faust

    from services.scorer.app import create_app

    settings = ScorerSettings()
    rules = load_rules(settings.scorer_rules_file)
    configure_logging(settings.scorer_log_level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    print(
        f"hotlead scorer: rules {rules.version}, web http://{settings.scorer_web_host}:"
        f"{settings.scorer_web_port}, store {settings.scorer_store}",
        file=sys.stderr,
    )
    # faust creates the data directory, but not its parents
    settings.scorer_datadir.mkdir(parents=True, exist_ok=True)
    scorer = create_app(settings, rules)

    class JsonLogWorker(faust.Worker):
        """faust's worker, logging JSON lines like every hotlead service."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            self.spinner = None
            configure_logging(settings.scorer_log_level)
            logging.getLogger("aiokafka").setLevel(logging.WARNING)

    worker = JsonLogWorker(scorer.app, loglevel=settings.scorer_log_level)
    tune_gc()
    cap_socket_reads()
    worker.execute_from_commandline()
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    scorer = commands.add_parser(
        "scorer", help="run a scorer worker (faust; settings from HOTLEAD_* variables)"
    )
    scorer.set_defaults(run=_run_scorer)
    rules = commands.add_parser("rules", help="check a rules file")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rules_commands.add_parser("check", help="validate a rules file and print what it means")
    check.add_argument("file", help="the rules file (YAML)")
    check.set_defaults(run=_rules_check)
