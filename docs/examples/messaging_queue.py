from kombu import Exchange, Queue

from nameko_like.messaging import Publisher, consume
from nameko_like.rpc import rpc

jobs_exchange = Exchange("jobs", type="direct", durable=True)
jobs_queue = Queue("jobs", exchange=jobs_exchange, routing_key="job", durable=True)


class JobSubmitter:
    name = "submitter"

    publish = Publisher(exchange=jobs_exchange)

    @rpc
    def submit(self, job):
        # Returns once the broker has confirmed the message.
        self.publish(job, routing_key="job")


class JobWorker:
    name = "worker"

    # The queue is declared and bound when the service starts.
    @consume(jobs_queue)
    def run_job(self, job):
        return f"ran {job['task']}"
