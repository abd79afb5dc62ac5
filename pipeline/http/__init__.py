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
from pipeline.http.safety import UnsafeURL
from pipeline.robots import RobotsDisallowed, RobotsUnavailable

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
