"""`manage.py pipeline_status`: the distributed pipeline at a glance.

    manage.py pipeline_status [--failures N]

Queue depths (crawl, embed, build) and unacknowledged tasks from Redis, the cycle in flight, the
Redis locks held (host crawls, gate turns, the builder) with their holders, and the tasks that
failed for good (count over 24 h, the last N). Reads only. Exit 1 when Redis cannot be reached or
distributed mode is off (the failures recorded in the database are still printed).
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.distributed.status import pipeline_status


class Command(BaseCommand):
    help = "Show queue depths, the cycle in flight, locks held and recent task failures."

    def add_arguments(self, parser):
        parser.add_argument("--failures", type=int, default=10, help="Show the last N failures.")

    def handle(self, *args, failures, **options):
        status = pipeline_status(failures=failures)
        for line in status.lines():
            self.stdout.write(line)
        if status.error:
            raise CommandError(f"redis: {status.error}")
