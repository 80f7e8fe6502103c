"""`manage.py run_nightly [--as-of YYYY-MM-DD] [--kpi-days N]`: the nightly pipeline, by hand.

The same code as the beat task; waits for the run (on the workers when a broker is set, in
process otherwise) and prints what it wrote.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.models import ModelFit
from analytics.pipeline import backfill_kpis, run_pipeline


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--as-of: {text!r} is not a date (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = "Run the analytics pipeline as of a date (default: today in the program's timezone)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", default=None, help="YYYY-MM-DD")
        parser.add_argument(
            "--kpi-days",
            type=int,
            default=1,
            help="Also (re)compute the KPI snapshots of the N-1 days before, for trends",
        )
        parser.add_argument(
            "--kpis-only",
            action="store_true",
            help="Only the KPI snapshots (with --kpi-days), no member scoring",
        )
        parser.add_argument("--chunk-size", type=int, default=None, help="Member ids per task")

    def handle(self, *args, **options):
        as_of = _date(options["as_of"]) if options["as_of"] else None
        if options["kpi_days"] < 1:
            raise CommandError("--kpi-days must be at least 1.")
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        if options["kpis_only"]:
            rows = backfill_kpis(as_of=as_of, days=options["kpi_days"])
            self.stdout.write(self.style.SUCCESS(f"{rows} KPI snapshots written."))
            return
        try:
            run = run_pipeline(
                as_of=as_of,
                trigger="command",
                kpi_days=options["kpi_days"],
                per_chunk=options["chunk_size"],
            )
        except Exception as exc:
            raise CommandError(f"The run failed: {exc}") from exc
        seconds = run.duration.total_seconds() if run.duration else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Run {run.pk} as of {run.as_of}: {run.status}, {run.rows} rows, "
                f"{run.chunks} chunks, {seconds:.1f} s."
            )
        )
        for fit in ModelFit.objects.filter(run=run).order_by("model"):
            params = ", ".join(f"{name}={value:.4g}" for name, value in fit.params.items())
            ll = "n/a" if fit.log_likelihood is None else f"{fit.log_likelihood:.2f}"
            state = "converged" if fit.converged else fit.message
            self.stdout.write(
                f"  {fit.get_model_display()}: {params}; log-likelihood {ll}; "
                f"{fit.n_customers} customers, per {fit.time_unit}; {state}"
            )
