"""Share links: a video shown to someone without an account, by an expiring, revocable link."""
