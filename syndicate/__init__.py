"""syndicate: press-release syndication — per-topic feeds and scheduled email digests."""

__version__ = "0.1.0"
