"""``engagement web``: the read-only live page for customer-success teams and its JSON API."""
