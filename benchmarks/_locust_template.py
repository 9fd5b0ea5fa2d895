"""The locustfile ``python -m benchmarks locust export`` writes: one scenario's request
as an open-loop Locust user. Kept as text (the exporter fills the ``@...@`` fields)
so that the file a load tester copies to other machines needs nothing but Locust."""

from __future__ import annotations

__all__ = ["LOCUSTFILE"]

LOCUSTFILE = '''\
"""@SCENARIO@ for Locust, exported by `python -m benchmarks locust export`.

Open loop: each user sends its share of --bench-rate requests per second for
--bench-duration seconds on a fixed schedule (request n at start + n / rate), whether
or not earlier answers came back, then waits for the answers and stops. The latency
Locust records runs from each request's scheduled time, so a stalled server shows in
the tail instead of lowering the rate. Run one user per worker, with a --run-time
some seconds longer than --bench-duration (the last answers and reports):

    locust -f THIS_FILE --master --headless --expect-workers 2 --users 2 \\\\
        --spawn-rate 2 --run-time 45s --host URL --csv out/run --bench-rate 200 \\\\
        --bench-duration 30
    locust -f THIS_FILE --worker --master-host MASTER_HOST     # on each load machine

then `python -m benchmarks locust merge THIS_FILE.bench.json out/run` makes the
suite's JSON, Markdown and HTML report of it.
"""

import base64
import time
import uuid

import gevent
import locust.runners
from gevent.pool import Group
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL
from locust import User, constant, events, task
from locust.exception import StopUser

# Workers report every second (Locust: 3), so a short run's last requests reach the
# master before it ends.
locust.runners.WORKER_REPORT_INTERVAL = 1.0

SCENARIO = @SCENARIO_REPR@
PATH = @PATH@
METHOD = @METHOD@
BODY = base64.b64decode(@BODY@)
# The body never changes and the id header is not signed: one signature (computed at
# export with the run's secret) is valid for every request.
HEADERS = @HEADERS@
UNIQUE_HEADER = @UNIQUE@
REPEAT_LAG = @REPEAT_LAG@
RATE = @RATE@
DURATION = @DURATION@
CONNECTIONS = @CONNECTIONS@
DRAIN_SECONDS = 10


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument(
        "--bench-rate", type=float, default=RATE, help="requests/s offered over all users"
    )
    parser.add_argument(
        "--bench-duration", type=float, default=DURATION, help="seconds of sending"
    )


def delivery_number(n):
    """As benchmarks/_spec.py: with REPEAT_LAG, odd requests past the first 2 * lag
    repeat an earlier id (half the traffic is retries)."""
    if REPEAT_LAG and n % 2 == 1 and n > 2 * REPEAT_LAG:
        return n - 2 * REPEAT_LAG - 1
    return n


class OpenLoopSender(User):
    wait_time = constant(0)

    def on_start(self):
        url = URL(self.host.rstrip("/") + PATH)
        self.uri = url.request_uri
        self.http = HTTPClient.from_url(
            url, concurrency=CONNECTIONS, connection_timeout=10, network_timeout=10
        )
        # Unique across workers and machines without coordination.
        self.prefix = "locust-" + uuid.uuid4().hex[:16]
        self.sending = Group()

    def on_stop(self):
        # Requests already sent get their answer (or their timeout) counted.
        self.sending.join(timeout=DRAIN_SECONDS)

    @task
    def schedule(self):
        options = self.environment.parsed_options
        # One user per worker; the master passes --expect-workers (and the --bench-*
        # options) to every worker, not --users.
        users = max(1, getattr(options, "expect_workers", 1) or 1)
        rate = getattr(options, "bench_rate", RATE) / users
        total = max(1, round(rate * getattr(options, "bench_duration", DURATION)))
        start = time.perf_counter()
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            self.sending.spawn(self.send, n + 1, due)
        self.sending.join(timeout=DRAIN_SECONDS)
        raise StopUser()

    def send(self, n, due):
        headers = dict(HEADERS)
        if UNIQUE_HEADER:
            headers[UNIQUE_HEADER] = f"{self.prefix}-{delivery_number(n)}"
        exception = None
        length = 0
        try:
            response = self.http.request(METHOD, self.uri, body=BODY, headers=headers)
            length = len(response.read())
            if not 200 <= response.status_code < 300:
                exception = RuntimeError(f"HTTP {response.status_code}")
        except Exception as exc:  # every failure is a failed request in the stats
            exception = exc
        self.environment.events.request.fire(
            request_type=METHOD,
            name=SCENARIO,
            response_time=(time.perf_counter() - due) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )
'''
