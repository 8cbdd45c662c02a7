"""`daily_summary_job`: one day of `daily_summary`."""

from __future__ import annotations

import dagster as dg

from peebot_dagster.defs.summary.assets import daily_summary

daily_summary_job = dg.define_asset_job("daily_summary_job", selection=[daily_summary])
