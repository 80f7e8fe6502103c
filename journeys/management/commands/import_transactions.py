"""Import a shop's or CRM's order history: `manage.py import_transactions FILE.csv`.

Columns customer_id,date,amount and optionally order_id,channel (with a header row in any
order, or without one in that order). Thin: parses arguments, shows progress and calls
journeys.services.import_transactions.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from journeys.services import ImportFailed, import_transactions


class TqdmProgress:
    def __init__(self, stream):
        self.stream = stream
        self.bar = None

    def start(self, phase: str, total: int | None) -> None:
        self.finish()
        self.bar = tqdm(
            total=total, desc=phase, unit=" rows", unit_scale=True, file=self.stream, leave=True
        )

    def advance(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(rows)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Command(BaseCommand):
    help = "Import purchase history (customer_id,date,amount[,order_id,channel]) from a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file")
        parser.add_argument(
            "--date-format",
            default=None,
            help="strptime format of the date column, e.g. %%Y%%m%%d (default: ISO 8601 dates "
            "or date-times, also YYYYMMDD)",
        )
        parser.add_argument(
            "--no-points",
            action="store_true",
            help="Write the history only: award no points",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=20_000,
            help="Rows written per transaction (whole customers per batch; default 20000)",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        progress = None if options["no_progress"] else TqdmProgress(self.stderr._out)
        try:
            with open(options["file"], newline="", encoding="utf-8-sig") as handle:
                report = import_transactions(
                    lines=handle,
                    date_format=options["date_format"],
                    award_points=not options["no_points"],
                    batch_size=options["batch_size"],
                    progress=progress,
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{options['file']} is not UTF-8 text: {exc}") from exc
        except ImportFailed as exc:
            if progress:
                progress.finish()
            for line, message in exc.errors:
                self.stderr.write(f"line {line}: {message}")
            if exc.total > len(exc.errors):
                self.stderr.write(f"... and {exc.total - len(exc.errors)} more bad rows")
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.rows} rows: {report.created} events added, {report.duplicates} "
                f"already imported; {report.members_enrolled} members enrolled, "
                f"{report.points_awarded} points awarded, {report.transitions} stage moves."
            )
        )
