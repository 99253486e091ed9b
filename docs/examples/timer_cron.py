from nameko_like.timer import timer


class ReportService:
    name = "reports"

    # 07:00 on weekdays, Stockholm time in summer and winter alike. However
    # many instances of the service run, one of them sends the report.
    @timer(cron="0 7 * * 1-5", timezone="Europe/Stockholm", once_per_tick=True)
    def morning_report(self):
        return "morning report sent"

    # Every five minutes (UTC), on every instance.
    @timer(cron="*/5 * * * *")
    def refresh_cache(self):
        return "cache refreshed"
