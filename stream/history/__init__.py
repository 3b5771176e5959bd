"""Event history: file readers, churn labels and the event-time replay through the core."""
