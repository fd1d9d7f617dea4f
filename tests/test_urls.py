"""The API's routes are tried app by app, busiest first (``market/api_urls.py``): that order must not
decide which view answers, so no path may match the routes of two apps."""

import re

from django.urls import Resolver404, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from market import api_urls

SAMPLES = {"int": "123", "str": "abc", "slug": "abc-d", "path": "a/b"}


def _paths(patterns, prefix=""):
    for p in patterns:
        assert isinstance(p.pattern, RoutePattern), p  # the API is written with path() only
        route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES[m.group(1) or "str"], str(p.pattern))
        if isinstance(p, URLResolver):
            yield from _paths(p.url_patterns, prefix + route)
        else:
            yield prefix + route


def test_no_api_path_is_matched_by_the_routes_of_two_apps():
    apps = {
        include.urlconf_name.__name__: get_resolver(include.urlconf_name) for include in api_urls.urlpatterns
    }
    paths = {path for resolver in apps.values() for path in _paths(resolver.url_patterns)}
    assert len(paths) > 60
    for path in sorted(paths):
        matched = []
        for name, resolver in apps.items():
            try:
                resolver.resolve("/" + path)
            except Resolver404:
                continue
            matched.append(name)
        assert len(matched) == 1, (path, matched)
