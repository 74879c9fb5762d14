"""Runtime: Ray connection, search clock, driver, backends and ``build_search``."""
from raynas.runtime.records import CandidateRecord, SearchListener, SearchSummary
from raynas.runtime.search import Search, build_search

__all__ = ["CandidateRecord", "Search", "SearchListener", "SearchSummary", "build_search"]
