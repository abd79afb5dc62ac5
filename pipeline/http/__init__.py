"""Polite HTTP for the crawler: `Fetcher` (robots, delays, back-off, caps) and its errors."""

from pipeline.http.client import Fetcher
from pipeline.http.results import (
    CrawlDelayTooLong,
    DeadlineExceeded,
    FetchResult,
    HostBlocked,
    HttpError,
    ResponseTooLarge,
    WrongContentType,
    user_agent,
)
from pipeline.http.robots import RobotsDisallowed, RobotsUnavailable
from pipeline.http.safety import UnsafeURL

__all__ = [
    "CrawlDelayTooLong",
    "DeadlineExceeded",
    "FetchResult",
    "Fetcher",
    "HostBlocked",
    "HttpError",
    "ResponseTooLarge",
    "RobotsDisallowed",
    "RobotsUnavailable",
    "UnsafeURL",
    "WrongContentType",
    "user_agent",
]
