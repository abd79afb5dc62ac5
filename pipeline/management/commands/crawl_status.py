"""`manage.py crawl_status`: each store's last crawl and its host's politeness state.

    manage.py crawl_status [--store SLUG]

The same facts as the admin's store page, for a terminal or cron mail: last run (status, when,
counts, first error) and host (delay, robots.txt, parked until, consecutive failures, why).
Reads only; exit 2 for an unknown --store.
"""

from django.core.management.base import BaseCommand, CommandError

from catalog import selectors


class Command(BaseCommand):
    help = "Show each store's last crawl run and its host's politeness state."

    def add_arguments(self, parser):
        parser.add_argument("--store", help="Only this store slug.")

    def handle(self, *args, store, **options):
        stores = list(selectors.list_stores_to_crawl(slug=store))
        if store and not stores:
            raise CommandError(f"no store with slug {store!r}", returncode=2)
        for s in stores:
            self.stdout.write(self._store_line(s))
            self.stdout.write("  " + self._host_line(s))

    def _store_line(self, store):
        run = selectors.latest_crawl_run(store=store)
        if run is None:
            return f"{store.slug}: never crawled"
        when = run.finished_at or run.started_at
        line = (
            f"{store.slug}: {run.status} at {when:%Y-%m-%d %H:%M} UTC, {run.created} created, "
            f"{run.updated} updated, {run.failed} failed, {run.requests} requests"
        )
        return f"{line}; {run.errors[0]['reason'][:200]}" if run.errors else line

    def _host_line(self, store):
        host = selectors.host_for_store(store=store)
        if host is None:
            return "host: not contacted yet"
        robots = "robots.txt never fetched"
        if host.robots_fetched_at:
            robots = (
                f"robots.txt {host.robots_status or 'unreachable'} at "
                f"{host.robots_fetched_at:%Y-%m-%d %H:%M} UTC (asks {host.robots_delay:g}s)"
            )
        parked = f"{host.parked_until:%Y-%m-%d %H:%M} UTC" if host.parked_until else "no"
        line = (
            f"host {host.origin}: delay {host.current_delay:.2f}s, {robots}, parked until "
            f"{parked}, {host.consecutive_failures} failures in a row"
        )
        return f"{line}; {host.reason}" if host.reason else line
