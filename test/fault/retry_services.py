"""The service of test_delayed_retry: a consumer whose jobs fail, then retry.

Each attempt appends ``attempt <id> <pid> <time>`` to the record dir (see
fault_services.record); whether it fails is decided from those records, so
the count holds across the processes that handle the job.
"""

import os

from kombu import Queue

from fault_services import Pingable, record
from nameko_like.messaging import consume
from nameko_like.retries import Retry

JOBS = Queue("retry-jobs", durable=True)
#: the one delay of the service's retries (no jitter): one delay queue
BACKOFF = 6.0


def _attempts_before(job_id):
    directory = os.environ["FAULT_RECORD_DIR"]
    count = 0
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as records:
            count += sum(1 for line in records if line.startswith(f"attempt {job_id} "))
    return count


class RetryWorker(Pingable):
    name = "retry_worker"

    @consume(JOBS, retry=Retry(on=OSError, attempts=3, backoff=BACKOFF, multiplier=1, jitter=0))
    def work(self, job):
        earlier = _attempts_before(job["id"])
        record("attempt", job["id"])
        if earlier < job["fail"]:
            raise OSError(f"attempt {earlier + 1} at {job['id']} failed")
        record("done", job["id"])
