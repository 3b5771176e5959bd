"""Event files (the "history files" that backfill, calibrate and validate read): file readers,
churn labels and the event-time replay through the core."""
