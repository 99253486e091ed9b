from nameko_like.timer import timer


class ReportService:
    name = "reports"

    # Every hour; eager=True also runs it once as soon as the service starts.
    @timer(interval=3600, eager=True)
    def send_report(self):
        return "report sent"
