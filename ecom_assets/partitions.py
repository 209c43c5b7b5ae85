"""Partitions: one dynamic partition per landing file (its name), and one per day of events."""

import dagster as dg

landing_files = dg.DynamicPartitionsDefinition(name="landing_files")

# Sessions and what is computed per day. The first day covers both real exports' spans (RetailRocket
# 2015, REES46 2019) and the generator's; silver events dated before it belong to no session, and
# the sessions' coverage check says so. end_offset=1: today's partition exists while it fills up.
FIRST_EVENT_DAY = "2015-01-01"
event_days = dg.DailyPartitionsDefinition(start_date=FIRST_EVENT_DAY, end_offset=1)
